/// Swift values for the messages of `Proto/berth.proto`.
///
/// These are the only types the rest of Berth sees; the protobuf-c structs never leave this module.

/// One HTTP header, in the order it was sent. Repeated names are repeated headers.
public struct Header: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension String {
    /// ASCII case-insensitive equality, as header names compare; without lower-cased copies.
    public func caseInsensitiveEquals(_ other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        // Over the two strings' own bytes: walking `utf8` views compiles to ~800 instructions per header name.
        var this = self, other = other
        return this.withUTF8 { a in
            other.withUTF8 { b in
                for index in a.indices where a[index] != b[index] && a[index].asciiLowercased != b[index].asciiLowercased {
                    return false
                }
                return true
            }
        }
    }
}

extension UInt8 {
    fileprivate var asciiLowercased: UInt8 { self &- UInt8(ascii: "A") < 26 ? self | 0x20 : self }
}

/// Which container instance a request is for.
public struct Target: Sendable, Hashable {
    /// The container class, e.g. `ContainerA`.
    public var className: String
    /// A sticky name, or `nil` for any instance (least loaded).
    public var instanceName: String?

    public init(className: String, instanceName: String? = nil) {
        self.className = className
        self.instanceName = instanceName
    }
}

/// A place in the mesh: a container instance and port, or the edge.
public struct Endpoint: Sendable, Hashable {
    public var className: String
    public var instanceID: String
    public var port: UInt32

    public init(className: String = "", instanceID: String = "", port: UInt32 = 0) {
        self.className = className
        self.instanceID = instanceID
        self.port = port
    }
}

public struct Ready: Sendable, Hashable {
    /// 2: requests go from edges straight to sidecars, which say where in `endpoint`.
    public static let currentProtocolVersion: UInt32 = 2

    public var protocolVersion: UInt32
    public var className: String
    public var instanceID: String
    /// The app's configured port first, then the other ports it listens on.
    public var ports: [UInt32]
    public var capacity: UInt32
    public var heartbeatMilliseconds: UInt32
    /// Where edges send this instance requests: the endpoint its sidecar binds.
    public var endpoint: String
    /// The CURVE public key of `endpoint` (Z85); empty when the mesh does not use CURVE.
    public var curvePublicKey: String

    public init(
        protocolVersion: UInt32 = Ready.currentProtocolVersion,
        className: String,
        instanceID: String,
        ports: [UInt32],
        capacity: UInt32,
        heartbeatMilliseconds: UInt32,
        endpoint: String,
        curvePublicKey: String = ""
    ) {
        self.protocolVersion = protocolVersion
        self.className = className
        self.instanceID = instanceID
        self.ports = ports
        self.capacity = capacity
        self.heartbeatMilliseconds = heartbeatMilliseconds
        self.endpoint = endpoint
        self.curvePublicKey = curvePublicKey
    }
}

/// A router's whole directory, as of `sequence` (the Clone pattern's snapshot).
public struct Directory: Sendable, Hashable {
    public var epoch: UInt64
    public var sequence: UInt64
    public var instances: [Ready]

    public init(epoch: UInt64, sequence: UInt64, instances: [Ready]) {
        self.epoch = epoch
        self.sequence = sequence
        self.instances = instances
    }
}

/// One numbered change to a router's directory.
public struct DirectoryUpdate: Sendable, Hashable {
    public var epoch: UInt64
    public var sequence: UInt64
    public var instance: Ready
    /// The instance left; otherwise it joined or changed.
    public var removed: Bool

    public init(epoch: UInt64, sequence: UInt64, instance: Ready, removed: Bool) {
        self.epoch = epoch
        self.sequence = sequence
        self.instance = instance
        self.removed = removed
    }
}

public struct Heartbeat: Sendable, Hashable {
    public var inFlight: UInt32

    public init(inFlight: UInt32 = 0) {
        self.inFlight = inFlight
    }
}

public struct Disconnect: Sendable, Hashable {
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }
}

/// An HTTP request travelling over the bus. The body travels in its own frames, never in here.
public struct Request: Sendable, Hashable {
    public var id: UInt64
    public var target: Target
    /// 0: the container's configured port.
    public var port: UInt32
    public var method: String
    public var path: String
    /// Without the `?`; empty when there is none.
    public var query: String
    public var headers: [Header]
    /// Time left to answer when sent, in milliseconds; 0 means no deadline.
    public var timeoutMilliseconds: UInt32
    /// The W3C trace id (32 hex digits).
    public var traceID: String
    public var attempt: UInt32
    public var source: Endpoint
    /// The span of the sender's exchange (16 hex digits): the receiver's span is its child.
    public var parentSpanID: String
    /// `traceparent`'s flags (bit 0: sampled).
    public var traceFlags: UInt32
    /// The client's `x-request-id`, for events; empty when it sent none.
    public var xRequestID: String
    /// The body follows in `StreamData` messages, as the sidecar grants credit.
    public var bodyStreams: Bool = false
    /// Bytes of a streamed answer the sidecar may send before a `Credit`; 0: the answer comes in one message.
    public var streamWindow: UInt32 = 0
    /// An Upgrade (WebSocket): both bodies stream the new protocol's bytes until either side closes.
    public var upgrade = false

    public init(
        id: UInt64,
        target: Target,
        port: UInt32 = 0,
        method: String,
        path: String,
        query: String = "",
        headers: [Header] = [],
        timeoutMilliseconds: UInt32 = 0,
        traceID: String = "",
        attempt: UInt32 = 0,
        source: Endpoint = Endpoint(),
        parentSpanID: String = "",
        traceFlags: UInt32 = 0,
        xRequestID: String = ""
    ) {
        self.id = id
        self.target = target
        self.port = port
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.timeoutMilliseconds = timeoutMilliseconds
        self.traceID = traceID
        self.attempt = attempt
        self.source = source
        self.parentSpanID = parentSpanID
        self.traceFlags = traceFlags
        self.xRequestID = xRequestID
    }
}

extension Request {
    /// RFC 9110's idempotent methods: such a request may be sent again after its first try was lost.
    public var isIdempotent: Bool {
        switch method {
        case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE": true
        default: false
        }
    }
}

/// Why Berth, not the app, answered a request. Maps one to one onto `berth.ErrorCode`.
public enum ErrorCode: Int32, Sendable, Hashable, CaseIterable {
    case none = 0
    case appUnreachable = 1
    case appFailed = 2
    case noInstance = 3
    case saturated = 4
    case deadlineExceeded = 5
    case tooLarge = 6
    case badRequest = 7
    case instanceLost = 8
    case routerUnreachable = 9
    case `internal` = 10
    case appUnavailable = 11

    /// A short name for headers and metrics, e.g. `app-unreachable`.
    public var name: String {
        switch self {
        case .none: "none"
        case .appUnreachable: "app-unreachable"
        case .appFailed: "app-failed"
        case .noInstance: "no-instance"
        case .saturated: "saturated"
        case .deadlineExceeded: "deadline-exceeded"
        case .tooLarge: "too-large"
        case .badRequest: "bad-request"
        case .instanceLost: "instance-lost"
        case .routerUnreachable: "router-unreachable"
        case .internal: "internal"
        case .appUnavailable: "app-unavailable"
        }
    }
}

/// A failure inside the mesh, carried to the client.
public struct MeshError: Sendable, Hashable {
    public var code: ErrorCode
    /// One line that says what failed and why.
    public var message: String
    /// `edge`, `router`, `sidecar` or `app`.
    public var component: String

    public init(code: ErrorCode, message: String, component: String) {
        self.code = code
        self.message = message
        self.component = component
    }
}

public struct Response: Sendable, Hashable {
    public var id: UInt64
    public var status: UInt32
    public var headers: [Header]
    public var error: MeshError?
    public var servedBy: Endpoint?
    /// Requests the serving sidecar still works on, this one done.
    public var inFlight: UInt32
    /// The body follows in `StreamData` messages.
    public var bodyStreams: Bool = false

    public init(
        id: UInt64, status: UInt32, headers: [Header] = [], error: MeshError? = nil, servedBy: Endpoint? = nil, inFlight: UInt32 = 0
    ) {
        self.id = id
        self.status = status
        self.headers = headers
        self.error = error
        self.servedBy = servedBy
        self.inFlight = inFlight
    }
}

/// A piece of a streamed body; its bytes are the frames after the envelope.
public struct StreamData: Sendable, Hashable {
    public var id: UInt64
    /// The last piece.
    public var final: Bool
    /// The stream failed: the body is cut short (set with `final`).
    public var error: MeshError?

    public init(id: UInt64, final: Bool = false, error: MeshError? = nil) {
        self.id = id
        self.final = final || error != nil
        self.error = error
    }
}

/// More window for a streamed body: `bytes` more may be sent.
public struct Credit: Sendable, Hashable {
    public var id: UInt64
    public var bytes: UInt64

    public init(id: UInt64, bytes: UInt64) {
        self.id = id
        self.bytes = bytes
    }
}

/// From an edge: the exchange is over (its client went away).
public struct StreamCancel: Sendable, Hashable {
    public var id: UInt64
    public var reason: String

    public init(id: UInt64, reason: String) {
        self.id = id
        self.reason = reason
    }
}

/// The one frame of protobuf in every bus message.
public enum Envelope: Sendable, Hashable {
    case ready(Ready)
    case heartbeat(Heartbeat)
    case disconnect(Disconnect)
    case request(Request)
    case response(Response)
    /// From an edge to a router: send the directory and its changes.
    case directoryRequest
    case directory(Directory)
    case directoryUpdate(DirectoryUpdate)
    case streamData(StreamData)
    case credit(Credit)
    case streamCancel(StreamCancel)
}

// MARK: - Events

public enum TrafficKind: Int32, Sendable, Hashable {
    case unspecified = 0
    case edge = 1
    case sidecar = 2
    /// A sidecar's egress listener: a call its app made through it.
    case egress = 3
}

public struct TrafficEvent: Sendable, Hashable {
    public var timeMicroseconds: UInt64
    public var requestID: UInt64
    public var traceID: String
    public var source: Endpoint
    public var destination: Endpoint
    public var method: String
    public var path: String
    public var status: UInt32
    public var bytesIn: UInt64
    public var bytesOut: UInt64
    public var latencyMicroseconds: UInt64
    public var kind: TrafficKind
    public var error: MeshError?
    /// This exchange's span (16 hex digits) in the trace `traceID` names, and its parent's (empty for a root).
    public var spanID: String
    public var parentSpanID: String
    public var xRequestID: String
    /// A streamed exchange still going: bytes and latency so far.
    public var inProgress = false
    /// The body went as a stream.
    public var streamed = false
    /// A WebSocket's messages from the client, and to it.
    public var messagesIn: UInt64 = 0
    public var messagesOut: UInt64 = 0

    public init(
        timeMicroseconds: UInt64,
        requestID: UInt64,
        traceID: String = "",
        source: Endpoint,
        destination: Endpoint,
        method: String,
        path: String,
        status: UInt32,
        bytesIn: UInt64,
        bytesOut: UInt64,
        latencyMicroseconds: UInt64,
        kind: TrafficKind,
        error: MeshError? = nil,
        spanID: String = "",
        parentSpanID: String = "",
        xRequestID: String = ""
    ) {
        self.timeMicroseconds = timeMicroseconds
        self.requestID = requestID
        self.traceID = traceID
        self.source = source
        self.destination = destination
        self.method = method
        self.path = path
        self.status = status
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.latencyMicroseconds = latencyMicroseconds
        self.kind = kind
        self.error = error
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.xRequestID = xRequestID
    }
}

public enum LifecycleState: Int32, Sendable, Hashable {
    case unspecified = 0
    case starting = 1
    case healthy = 2
    case stopping = 3
    case sleeping = 4
    case exited = 5
    case restarting = 6
    /// An edge set the instance aside (outlier detection).
    case ejected = 7
    /// An edge picks the instance again.
    case returned = 8
}

public struct LifecycleEvent: Sendable, Hashable {
    public var timeMicroseconds: UInt64
    public var container: Endpoint
    public var state: LifecycleState
    public var exitCode: Int32
    public var restarts: UInt32
    public var pid: UInt32
    public var message: String

    public init(
        timeMicroseconds: UInt64,
        container: Endpoint,
        state: LifecycleState,
        exitCode: Int32 = 0,
        restarts: UInt32 = 0,
        pid: UInt32 = 0,
        message: String = ""
    ) {
        self.timeMicroseconds = timeMicroseconds
        self.container = container
        self.state = state
        self.exitCode = exitCode
        self.restarts = restarts
        self.pid = pid
        self.message = message
    }
}

public enum LogStream: Int32, Sendable, Hashable {
    case stdout = 0
    case stderr = 1
}

public struct LogLine: Sendable, Hashable {
    public var timeMicroseconds: UInt64
    public var container: Endpoint
    public var stream: LogStream
    public var line: String

    public init(timeMicroseconds: UInt64, container: Endpoint, stream: LogStream, line: String) {
        self.timeMicroseconds = timeMicroseconds
        self.container = container
        self.stream = stream
        self.line = line
    }
}

/// One message of the event stream (after its topic frame).
public enum Event: Sendable, Hashable {
    case traffic(TrafficEvent)
    case lifecycle(LifecycleEvent)
    case log(LogLine)
}
