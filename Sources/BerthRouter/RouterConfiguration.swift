/// Everything `berth-router` can be told, with a default for each.
///
/// Each endpoint may be a comma-separated list, e.g. `tcp://127.0.0.1:7701,ipc:///run/berth/backend`: sidecars in
/// their own network namespace reach the router over `ipc://`, which crosses namespaces through the filesystem.
public struct RouterConfiguration: Sendable {
    /// ROUTER socket that edges connect to.
    public var frontend = "tcp://127.0.0.1:7700"
    /// ROUTER socket that sidecars connect to.
    public var backend = "tcp://127.0.0.1:7701"
    /// XSUB socket that publishers of events connect to.
    public var eventsIn = "tcp://127.0.0.1:7702"
    /// XPUB socket that subscribers (`berth tap`, dashboards) connect to.
    public var eventsOut = "tcp://127.0.0.1:7703"
    /// How often peers are expected to say they are alive.
    public var heartbeatInterval: Duration = .seconds(1)
    /// Heartbeats a peer may miss before it counts as dead.
    public var heartbeatLiveness = 3
    /// Requests that may wait per class when every instance is at capacity; more get 503.
    public var queueLimit = 1_024
    /// Deadline for requests that do not carry one.
    public var defaultTimeout: Duration = .seconds(30)
    /// Largest frame accepted from a peer.
    public var maxMessageSize: Int64 = 64 << 20

    public init() {}

    var deadPeerAfter: Duration { heartbeatInterval * heartbeatLiveness }
}
