import BerthBus
import BerthWire
import Logging
import Synchronization

/// Sends requests into the mesh and hands back their answers.
///
/// One hop to the bus thread per request: the request goes out there, and the answer, its metrics and its traffic
/// event are all dealt with there when it comes back.
struct MeshClient: Sendable {
    let bus: BusLoop<EdgeBus>
    let configuration: EdgeConfiguration
    let logger: Logger
    let ids = RequestIDs()

    /// Sends `request` and calls `completion` exactly once with the answer, usually on the bus thread: turn it into
    /// the client's response (`MeshAnswer.edgeResponse`, which copies the body) after leaving that thread.
    /// - Returns: the request's id, for `cancel(_:)`.
    @discardableResult
    func send(
        _ request: EdgeRequest, to target: Target, port: Int?, completion: @escaping @Sendable (MeshAnswer) -> Void
    ) -> UInt64 {
        let id = ids.next()
        send(request, id: id, to: target, port: port, completion: completion)
        return id
    }

    /// Sends `request` and waits for its answer; cancelling the calling task stops the wait.
    func send(_ request: EdgeRequest, to target: Target, port: Int?) async -> EdgeResponse {
        let id = ids.next()
        let answer = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                send(request, id: id, to: target, port: port) { continuation.resume(returning: $0) }
            }
        } onCancel: {
            cancel(id)
        }
        return answer.edgeResponse
    }

    /// The client went away: the request's completion is called at once and the router's answer is dropped.
    func cancel(_ id: UInt64) {
        bus.execute { $0.cancel(id) }
    }

    private func send(
        _ request: EdgeRequest, id: UInt64, to target: Target, port: Int?, completion: @escaping @Sendable (MeshAnswer) -> Void
    ) {
        var headers = request.headers
        var timeout = configuration.timeout.milliseconds
        var traceID: String?
        var timeoutIndex: Int?
        for index in headers.indices {
            let name = headers[index].name
            if timeoutIndex == nil && name.caseInsensitiveEquals(Failures.timeoutHeader) {
                timeoutIndex = index
            } else if traceID == nil && name.caseInsensitiveEquals("x-request-id") {
                traceID = headers[index].value
            }
        }
        if let timeoutIndex {
            if let asked = Int64(headers[timeoutIndex].value), asked > 0 { timeout = asked }
            headers.remove(at: timeoutIndex)
        }
        let wire = Request(
            id: id, target: target, port: UInt32(clamping: port ?? 0), method: request.method, path: request.path,
            query: request.query, headers: headers, timeoutMilliseconds: UInt32(clamping: timeout),
            traceID: traceID ?? ids.traceID(for: id),
            source: Endpoint(className: "edge", instanceID: configuration.name)
        )
        let exchange = Exchange(request: wire, target: target, bytesIn: request.body.count, started: .now, completion: completion)
        let body = request.body.frames
        if !bus.execute({ $0.send(exchange, body: body) }) {
            completion(EdgeBus.failure(id, .internal, "the edge is shutting down"))
        }
    }
}

/// One request on its way through the mesh: what the bus thread needs to finish it when the answer is in.
struct Exchange: Sendable {
    let request: Request
    let target: Target
    let bytesIn: Int
    let started: ContinuousClock.Instant
    let completion: @Sendable (MeshAnswer) -> Void

    func event(answer: MeshAnswer, latency: Duration) -> TrafficEvent {
        TrafficEvent(
            timeMicroseconds: WallClock.nowMicroseconds(), requestID: request.id,
            traceID: request.traceID, source: request.source,
            destination: answer.response.servedBy ?? Endpoint(className: target.className, instanceID: target.instanceName ?? "", port: request.port),
            method: request.method, path: request.path, status: UInt32(clamping: answer.status),
            bytesIn: UInt64(bytesIn), bytesOut: UInt64(answer.body.byteCount),
            latencyMicroseconds: latency.wholeMicroseconds,
            kind: .edge, error: answer.response.error
        )
    }
}

extension MeshAnswer {
    /// The status the client gets: the app's, or the one `Failures` gives the mesh's error.
    var status: Int { response.error.map { Failures.status(for: $0.code) } ?? Int(response.status) }

    /// What the client gets: the app's answer, or the mesh's failure as `Failures` words it. It copies the body out
    /// of the bus's frames, so it belongs on the thread that writes the response, not on the bus thread.
    var edgeResponse: EdgeResponse {
        if let error = response.error { return Failures.response(for: error) }
        var result = EdgeResponse(status: Int(response.status), headers: response.headers, body: Body(frames: body))
        result.servedBy = response.servedBy
        return result
    }
}

/// Request ids, unique within this edge process, and trace ids, unique across edges.
final class RequestIDs: Sendable {
    private let counter = Atomic<UInt64>(0)
    private let nonce = String(UInt64.random(in: 1...UInt64.max), radix: 16)

    func next() -> UInt64 {
        counter.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// For a request that brought no `x-request-id`: follows it through every event of the exchange.
    func traceID(for id: UInt64) -> String {
        nonce + "-" + String(id, radix: 16)
    }
}
