import BerthBus
import BerthWire
import Synchronization

/// Sends requests into the mesh and hands back their answers.
///
/// For a Worker's task: one hop to the bus thread per request; the answer, its metrics and its traffic event are
/// dealt with there when it comes back. Requests on declarative routes do not come through here: the edge's
/// server sends those from the bus thread itself.
struct MeshClient: Sendable {
    let bus: BusLoop<EdgeBus>
    let configuration: EdgeConfiguration
    let ids: RequestIDs
    /// The Worker takes answers that stream (`Worker.streamsBodies`); otherwise every answer comes whole.
    var streamsAnswers = false

    /// Sends `request` and waits for its answer; cancelling the calling task stops the wait. A body that streams is
    /// sent as the sidecar grants credit.
    func send(_ request: EdgeRequest, to target: Target, port: Int?) async -> EdgeResponse {
        let id = ids.next()
        guard let body = request.body.stream else { return await answer(request, id: id, to: target, port: port, upload: nil) }
        // The body goes beside the wait, and on after the answer's head if the answer streams; it stops when the
        // exchange ends, whole or not, which closes `upload`.
        let upload = CreditGate(initial: 0)
        Task { [bus] in
            let end = await BodyPump.run(body, through: upload) { frames, final in
                bus.execute { $0.sendPiece(id, body: frames, final: final) }
            }
            // A body that cannot be read to its end must not reach the app as if whole.
            if case .failed(let reason) = end { bus.execute { $0.cancel(id, reason: "the request's body failed: \(reason)") } }
        }
        return await answer(request, id: id, to: target, port: port, upload: upload)
    }

    private func answer(_ request: EdgeRequest, id: UInt64, to target: Target, port: Int?, upload: CreditGate?) async -> EdgeResponse {
        let answer = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                var exchange = Exchange(
                    request, id: id, to: target, port: port, configuration: configuration, ids: ids,
                    reply: .callback { continuation.resume(returning: $0) }, streamsAnswer: streamsAnswers
                )
                if let upload {
                    // A WebSocket a Worker passes on: its body is the client's side of the socket.
                    if HTTPMapping.isWebSocketUpgrade(method: request.method, headers: request.headers) {
                        exchange.upgrades(through: upload)
                    } else {
                        exchange.streamsBody(through: upload)
                    }
                }
                let body = request.body.framesForBus
                if !bus.execute({ [exchange] in $0.send(exchange, body: body) }) {
                    upload?.close()
                    continuation.resume(returning: EdgeBus.failure(id, .internal, "the edge is shutting down"))
                }
            }
        } onCancel: {
            bus.execute { $0.cancel(id) }
        }
        return answer.edgeResponse
    }
}

/// One request on its way through the mesh: what the bus thread needs to finish it when the answer is in.
struct Exchange: Sendable {
    /// Who waits for the answer.
    enum Reply: Sendable {
        /// A connection of the edge's own server, on the bus thread: request `exchange` of connection `token`.
        case connection(token: Int, exchange: UInt64)
        /// A Worker's task, called on the bus thread exactly once.
        case callback(@Sendable (MeshAnswer) -> Void)
    }

    private(set) var request: Request
    let target: Target
    /// Request body bytes: the whole body's, or what streamed in so far.
    var bytesIn: Int
    let started: ContinuousClock.Instant
    let reply: Reply
    /// This exchange's span; the request carries it as its parent span, and the app as `traceparent`.
    let span: Span
    let kind: TrafficKind
    /// A Worker's body that streams: the sidecar's credit goes here, where the Worker's task waits for it.
    private(set) var upload: CreditGate?

    /// The exchange for `request`: its deadline from `x-berth-timeout-ms` (taken off) or the edge's default; its span
    /// a child of the request's `traceparent`, or of the Worker's request it is sent for, or a new trace's root.
    /// `streamsAnswer`: whoever waits takes an answer that streams (the edge's own connections, a Worker that streams
    /// bodies); otherwise the answer comes whole.
    init(
        _ request: EdgeRequest, id: UInt64, to target: Target, port: Int?, configuration: EdgeConfiguration, ids: RequestIDs,
        reply: Reply, streamsAnswer: Bool
    ) {
        var headers = request.headers
        var timeout = configuration.timeout.milliseconds
        if let timeoutIndex = headers.firstIndex(where: { $0.name.caseInsensitiveEquals(Failures.timeoutHeader) }) {
            if let asked = Int64(headers[timeoutIndex].value), asked > 0 { timeout = asked }
            headers.remove(at: timeoutIndex)
        }
        span = Span(headers: &headers, inherited: TraceContext.current, ids: ids.traces)
        var meshRequest = Request(
            id: id, target: target, port: UInt32(clamping: port ?? 0), method: request.method, path: request.path,
            query: request.query, headers: headers, timeoutMilliseconds: UInt32(clamping: timeout),
            traceID: span.traceID, source: configuration.source,
            parentSpanID: span.spanID, traceFlags: UInt32(span.flags), xRequestID: span.xRequestID
        )
        if streamsAnswer { meshRequest.streamWindow = UInt32(Streaming.window) }
        self.request = meshRequest
        self.target = target
        bytesIn = request.body.count
        started = .now
        self.reply = reply
        kind = configuration.trafficKind
    }

    /// The body streams in after the request, as the sidecar grants credit: from the edge's server, or from a
    /// Worker's task, which sends as `gate` lets it.
    mutating func streamsBody(through gate: CreditGate? = nil) {
        request.bodyStreams = true
        bytesIn = 0
        upload = gate
    }

    /// A WebSocket: both ways stream the new protocol's bytes.
    mutating func upgrades(through gate: CreditGate? = nil) {
        streamsBody(through: gate)
        request.upgrade = true
    }

    /// `bytesOut`: the body the client got, the mesh's own failure text included.
    func event(answer: MeshAnswer, bytesOut: Int, latency: Duration) -> TrafficEvent {
        event(response: answer.response, status: answer.status, bytesOut: bytesOut, latency: latency)
    }

    func event(response: Response, status: Int, bytesOut: Int, latency: Duration) -> TrafficEvent {
        var event = TrafficEvent(
            timeMicroseconds: WallClock.nowMicroseconds(), requestID: request.id,
            traceID: request.traceID, source: request.source,
            destination: response.servedBy ?? Endpoint(className: target.className, instanceID: target.instanceName ?? "", port: request.port),
            method: request.method, path: request.path, status: UInt32(clamping: status),
            bytesIn: UInt64(bytesIn), bytesOut: UInt64(bytesOut),
            latencyMicroseconds: latency.wholeMicroseconds,
            kind: kind, error: response.error,
            spanID: span.spanID, parentSpanID: span.parentSpanID, xRequestID: span.xRequestID
        )
        event.streamed = request.bodyStreams || response.bodyStreams
        return event
    }
}

extension MeshAnswer {
    /// The status the client gets: the app's, or the one `Failures` gives the mesh's error.
    var status: Int { response.error.map { Failures.status(for: $0.code) } ?? Int(response.status) }

    /// What the client gets: the app's answer, in the frames it came in or as they come, or the mesh's failure as
    /// `Failures` words it.
    var edgeResponse: EdgeResponse {
        if let error = response.error { return Failures.response(for: error) }
        let length = feed == nil ? nil : response.headers.first { $0.name.caseInsensitiveEquals("content-length") }.flatMap { Int($0.value) }
        let body = feed.map { Body(stream: BodyStream(feed: $0, length: length)) } ?? Body(frames: body)
        var result = EdgeResponse(status: Int(response.status), headers: response.headers, body: body)
        result.servedBy = response.servedBy
        return result
    }
}

/// Request ids, unique within this edge process, and the trace and span ids of its exchanges. Ids start at random,
/// so that a sidecar's late answer to an edge that restarted matches nothing.
final class RequestIDs: Sendable {
    private let counter = Atomic<UInt64>(UInt64.random(in: 0...UInt64.max >> 1))
    let traces = TraceIDs()

    func next() -> UInt64 {
        counter.wrappingAdd(1, ordering: .relaxed).newValue
    }
}
