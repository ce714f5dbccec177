import BerthBus

/// Everything `berth-router` can be told, with a default for each.
///
/// Each endpoint may be a comma-separated list, e.g. `tcp://127.0.0.1:7701,ipc:///run/berth/backend`: the router
/// binds every one.
public struct RouterConfiguration: Sendable {
    /// ROUTER socket that edges connect to, for the directory.
    public var frontend = "tcp://127.0.0.1:7700"
    /// ROUTER socket that sidecars connect to, to register and heartbeat.
    public var backend = "tcp://127.0.0.1:7701"
    /// XSUB socket that publishers of events connect to.
    public var eventsIn = "tcp://127.0.0.1:7702"
    /// XPUB socket that subscribers (`berth tap`, dashboards) connect to.
    public var eventsOut = "tcp://127.0.0.1:7703"
    /// How often peers are expected to say they are alive.
    public var heartbeatInterval: Duration = .seconds(1)
    /// Heartbeats a peer may miss before it counts as dead.
    public var heartbeatLiveness = 3
    /// Largest frame accepted from a peer: directory messages only, never a body.
    public var maxMessageSize: Int64 = 1 << 20
    /// CURVE on every socket, admitting only the keys the security's folder lists; nil: none.
    public var security: BusSecurity?

    public init() {}

    var deadPeerAfter: Duration { heartbeatInterval * heartbeatLiveness }
}
