import BerthBus
import BerthWire

/// The trace a request belongs to, as the edge carries it from hop to hop (W3C Trace Context).
///
/// A Worker's task runs with the span of the client's request as `TraceContext.current`, so every request it sends
/// into the mesh is a child of that span with no code in the Worker.
public struct TraceContext: Sendable, Hashable {
    /// The trace, with the span that is the parent of whatever is sent next.
    public var parent: TraceParent
    /// The client's `x-request-id`, passed on with the trace; empty when it sent none.
    public var xRequestID: String

    public init(parent: TraceParent, xRequestID: String = "") {
        self.parent = parent
        self.xRequestID = xRequestID
    }

    /// The span of the request a Worker is handling, for the requests it sends.
    @TaskLocal public static var current: TraceContext?

    /// The header that names a request to a person, kept from hop to hop.
    public static let requestIDHeader = "x-request-id"
}

/// One exchange's span: its id, its parent's, and the trace they are in.
struct Span: Sendable {
    var traceID: String
    var spanID: String
    /// Empty for a trace's root.
    var parentSpanID: String
    var flags: UInt8
    var xRequestID: String

    /// The span of a request whose headers are `headers`: a child of the `traceparent` among them, else of `inherited`
    /// (a Worker's sub-request), else the root of a new trace. `headers` are left to carry this span onward: their
    /// `traceparent` names it, and an `x-request-id` inherited from the client is added when they had none.
    init(headers: inout [Header], inherited: TraceContext?, ids: TraceIDs) {
        var parent: TraceParent?
        var traceIndex: Int?
        var xRequestID: String?
        for index in headers.indices {
            let name = headers[index].name
            if traceIndex == nil && name.caseInsensitiveEquals(TraceParent.header) {
                traceIndex = index
                parent = TraceParent(parsing: headers[index].value)
            } else if xRequestID == nil && name.caseInsensitiveEquals(TraceContext.requestIDHeader) {
                xRequestID = headers[index].value
            }
        }
        if parent == nil, let inherited { parent = inherited.parent }
        if xRequestID == nil, let inherited, !inherited.xRequestID.isEmpty {
            xRequestID = inherited.xRequestID
            headers.append(Header(TraceContext.requestIDHeader, inherited.xRequestID))
        }
        spanID = ids.spanID()
        if let parent {
            traceID = parent.traceID
            parentSpanID = parent.spanID
            flags = parent.flags
        } else {
            traceID = ids.traceID()
            parentSpanID = ""
            flags = 1
        }
        self.xRequestID = xRequestID ?? ""
        let onward = Header(TraceParent.header, TraceParent(traceID: traceID, spanID: spanID, flags: flags).value)
        if let traceIndex { headers[traceIndex] = onward } else { headers.append(onward) }
    }

    /// What a Worker's task carries for the requests it sends: this span as their parent.
    var context: TraceContext {
        TraceContext(parent: TraceParent(traceID: traceID, spanID: spanID, flags: flags), xRequestID: xRequestID)
    }
}

/// The span of a request a Worker handles, and the event that reports it when its answer is out.
struct WorkerSpan: Sendable {
    let id: UInt64
    let span: Span
    let request: EdgeRequest
    let started: ContinuousClock.Instant
    let edge: Endpoint

    /// The Worker sees `request` with this span in its `traceparent`, as an app sees its sidecar's: a Worker that
    /// forwards the request as it came makes a child of this span, not a sibling.
    init(_ request: EdgeRequest, ids: RequestIDs, configuration: EdgeConfiguration) {
        var request = request
        span = Span(headers: &request.headers, inherited: nil, ids: ids.traces)
        id = ids.next()
        self.request = request
        started = .now
        edge = configuration.source
    }

    /// The client's request to the edge, the parent of every request the Worker sent: its bytes are those read of a
    /// body that streamed.
    func event(_ response: EdgeResponse) -> TrafficEvent {
        var event = TrafficEvent(
            timeMicroseconds: WallClock.nowMicroseconds(), requestID: id, traceID: span.traceID,
            source: Endpoint(className: EventNames.clientClass), destination: edge,
            method: request.method, path: request.path, status: UInt32(clamping: response.status),
            bytesIn: UInt64(request.body.count), bytesOut: UInt64(response.body.count),
            latencyMicroseconds: started.duration(to: .now).wholeMicroseconds, kind: .edge, error: response.meshError,
            spanID: span.spanID, parentSpanID: span.parentSpanID, xRequestID: span.xRequestID
        )
        event.streamed = request.body.isStream || response.body.isStream
        return event
    }

    /// The span of a Worker's request; none on a sidecar's egress listener, whose calls are spans of their own.
    static func make(_ request: EdgeRequest, ids: RequestIDs, configuration: EdgeConfiguration) -> WorkerSpan? {
        configuration.egressOf == nil ? WorkerSpan(request, ids: ids, configuration: configuration) : nil
    }

    /// Runs `body` (the Worker) on `request` as `span` shows it, with `span` as the parent of every request it sends.
    static func run<T: Sendable>(
        _ span: WorkerSpan?, _ request: EdgeRequest, _ body: (EdgeRequest) async throws -> T
    ) async rethrows -> T {
        guard let span else { return try await body(request) }
        return try await TraceContext.$current.withValue(span.span.context) { try await body(span.request) }
    }
}

extension Environment {
    /// Sends `request` out of the mesh with `send`, as a span of the current trace: `send` gets the request with its
    /// `traceparent`, and the exchange is published as a traffic event to `destination`.
    public func outside(
        _ request: EdgeRequest, to destination: Endpoint, send: (EdgeRequest) async -> EdgeResponse
    ) async -> EdgeResponse {
        var request = request
        let span = Span(headers: &request.headers, inherited: TraceContext.current, ids: mesh.ids.traces)
        let started = ContinuousClock.now
        var response = await send(request)
        let configuration = mesh.configuration
        let mesh = mesh
        // The exchange is over when its answer's body is: an answer that streams is published at its end.
        response.body = response.body.observingEnd { [request, response] bytesOut, failure in
            var event = TrafficEvent(
                timeMicroseconds: WallClock.nowMicroseconds(), requestID: mesh.ids.next(), traceID: span.traceID,
                source: configuration.source, destination: destination,
                method: request.method, path: request.path, status: UInt32(clamping: response.status),
                bytesIn: UInt64(request.body.count), bytesOut: UInt64(bytesOut),
                latencyMicroseconds: started.duration(to: .now).wholeMicroseconds, kind: configuration.trafficKind,
                error: response.meshError ?? failure.map { MeshError(code: .appFailed, message: $0, component: "sidecar") },
                spanID: span.spanID, parentSpanID: span.parentSpanID, xRequestID: span.xRequestID
            )
            event.streamed = request.body.isStream || response.body.isStream
            mesh.bus.execute { [event] in $0.publishTraffic(event) }
        }
        return response
    }
}
