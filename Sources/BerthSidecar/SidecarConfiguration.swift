import BerthBus
import BerthWire

/// Everything `berth-sidecar` can be told, with a default for each.
public struct SidecarConfiguration: Sendable {
    /// Every router's backend endpoint: the sidecar registers with each.
    public var routers = ["tcp://127.0.0.1:7701"]
    /// Where this sidecar binds the socket edges send requests to; nil: an ipc:// file every process on this machine
    /// reaches (`LocalEndpoint`). A tcp:// endpoint must name an address edges can reach; port `*` lets the OS choose.
    public var busEndpoint: String?
    /// The router's events-in endpoint, where traffic events are published.
    public var events = "tcp://127.0.0.1:7702"
    /// The container class this instance belongs to.
    public var className = "ContainerA"
    /// This instance's id, unique within its class.
    public var instanceID = "a-0"
    /// The host the app listens on.
    public var appHost = "127.0.0.1"
    /// The app's configured port: requests that name no port go here.
    public var port = 8080
    /// Other ports the app listens on, which requests may name.
    public var extraPorts: [Int] = []
    /// Requests handled at once; more are refused as saturated, and edges try another instance or queue them.
    public var capacity = 64
    public var heartbeatInterval: Duration = .seconds(1)
    public var heartbeatLiveness = 3
    /// Largest response body taken from the app; a larger one is answered with 502.
    public var maxBodyBytes = 64 << 20
    /// Largest frame accepted from an edge.
    public var maxMessageSize: Int64 = 64 << 20
    /// How long to wait for the app's TCP connection to open.
    public var connectTimeout: Duration = .seconds(2)
    /// CURVE on every bus socket: the edges' link is a server that admits the security's keys; nil: none.
    public var security: BusSecurity?
    /// How long SIGTERM waits for in-flight requests before the sidecar exits anyway.
    public var drainTimeout: Duration = .seconds(10)

    /// Where its spans go besides the event stream (`--otlp-endpoint`): every traffic event it publishes.
    public var spans: (any SpanSink)?

    /// The app this sidecar starts and owns; nil when the app is run by someone else.
    public var app: AppConfiguration?
    /// Runs the app in a network namespace of its own (`AppNetwork.isolated()`), where it listens on `port` whatever
    /// the other instances do; the sidecar stays in this one. Needs root or CAP_SYS_ADMIN.
    public var appNetworkNamespace = false

    public init() {}

    var ports: [UInt32] { ([port] + extraPorts).map { UInt32($0) } }
    var endpoint: Endpoint { Endpoint(className: className, instanceID: instanceID, port: UInt32(port)) }
}
