import BerthBus
import BerthWire

/// Everything `berth-edge` can be told, with a default for each.
public struct EdgeConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8787
    /// Every router's frontend endpoint: the edge follows each one's directory and merges them.
    public var routers = ["tcp://127.0.0.1:7700"]
    /// The router's events-in endpoint, where traffic events are published.
    public var events = "tcp://127.0.0.1:7702"
    /// This edge's name in traffic events.
    public var name = "edge"
    /// Deadline for a request that does not set `x-berth-timeout-ms`.
    public var timeout: Duration = .seconds(30)
    /// Largest request body read whole (a Worker's); more is answered with 413.
    public var maxBodyBytes = 32 << 20
    /// Largest request body that streams (declarative routes, over `Streaming.threshold` or of unknown length);
    /// nil: no limit.
    public var maxStreamedBodyBytes: Int?
    public var heartbeatInterval: Duration = .seconds(1)
    /// A client connection with no request in the mesh and no progress for this long is closed: an idle kept-alive
    /// one, or a client that sends its request too slowly to ever finish it.
    public var idleTimeout: Duration = .seconds(60)
    /// A client gets this long to send a request's whole head, however slowly its bytes trickle in (nginx's
    /// client_header_timeout is 60 s); then it gets 408 and the connection closes.
    public var headerTimeout: Duration = .seconds(30)
    /// Request bodies held at once over all connections; a body that would pass it gets 503 with Retry-After.
    public var maxBufferedBytes = 256 << 20
    public var heartbeatLiveness = 3
    /// Requests that may wait per container class when every instance is full; more get 503.
    public var queueLimit = 1_024
    /// Largest frame accepted from a sidecar.
    public var maxMessageSize: Int64 = 64 << 20
    /// CURVE on every bus socket (links to routers and sidecars, events); nil: none.
    public var security: BusSecurity?

    /// Set when this edge is a sidecar's egress listener: the instance whose app's requests it sends, which events
    /// and the bus name as their source.
    public var egressOf: Endpoint?
    /// Link to the routers, and follow their directory, only once the first request comes: a sidecar's egress
    /// listener, whose app may never call, then costs the routers nothing.
    public var followsRoutersFromFirstRequest = false
    /// CONNECT is read and handed to the Worker with the client's side of the tunnel as its body, as a forward proxy
    /// does (a sidecar's egress listener); otherwise it is refused with 501.
    public var tunnels = false
    /// Where its spans go besides the event stream (`--otlp-endpoint`): every traffic event it publishes.
    public var spans: (any SpanSink)?

    public init() {}

    /// Who the requests this edge sends come from: `edge/<name>`, or the instance it is the egress listener of.
    var source: Endpoint { egressOf ?? Endpoint(className: "edge", instanceID: name) }
    var trafficKind: TrafficKind { egressOf == nil ? .edge : .egress }
    /// The topic of this edge's traffic events: an egress listener's are its instance's.
    var trafficTopic: String { egressOf.map { "traffic.\($0.className).\($0.instanceID)" } ?? "traffic.edge.\(name)" }
}
