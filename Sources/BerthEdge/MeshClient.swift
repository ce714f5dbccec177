import BerthBus
import BerthMetrics
import CoreMetrics
import BerthWire
import Foundation
import Logging
import Synchronization

/// Sends requests into the mesh from Swift concurrency and waits for their answers.
struct MeshClient: Sendable {
    let bus: BusLoop<EdgeBus>
    let configuration: EdgeConfiguration
    let logger: Logger
    let ids = RequestIDs()
    let metrics = MetricsCache()

    func send(_ request: EdgeRequest, to target: Target, port: Int?) async -> EdgeResponse {
        var headers = request.headers
        var timeout = configuration.timeout.milliseconds
        if let index = headers.firstIndex(where: { $0.name.caseInsensitiveEquals(Failures.timeoutHeader) }) {
            if let asked = Int64(headers[index].value), asked > 0 { timeout = asked }
            headers.remove(at: index)
        }
        let id = ids.next()
        let wire = Request(
            id: id, target: target, port: UInt32(clamping: port ?? 0), method: request.method, path: request.path,
            query: request.query, headers: headers, timeoutMilliseconds: UInt32(clamping: timeout),
            traceID: request.header("x-request-id") ?? ids.traceID(for: id),
            source: Endpoint(className: "edge", instanceID: configuration.name)
        )
        let started = ContinuousClock.now
        let body = request.body.frames
        let answer = await send(wire, body: body)
        let response = answer.response
        var result = EdgeResponse(status: Int(response.status), headers: response.headers, body: Body(frames: answer.body))
        result.meshError = response.error
        result.servedBy = response.servedBy
        if let error = response.error { result = Failures.response(for: error) }

        let latency = started.duration(to: .now)
        metrics.counter("berth_edge_requests_total", [("class", target.className), ("status", String(result.status))]).increment()
        metrics.timer("berth_edge_request_duration_seconds", [("class", target.className)]).record(latency)
        let event = TrafficEvent(
            timeMicroseconds: UInt64(Date().timeIntervalSince1970 * 1_000_000), requestID: response.id,
            traceID: wire.traceID, source: wire.source,
            destination: response.servedBy ?? Endpoint(className: target.className, instanceID: target.instanceName ?? "", port: wire.port),
            method: wire.method, path: wire.path, status: UInt32(result.status),
            bytesIn: UInt64(request.body.count), bytesOut: UInt64(answer.body.byteCount),
            latencyMicroseconds: UInt64(latency.components.seconds * 1_000_000 + latency.components.attoseconds / 1_000_000_000_000),
            kind: .edge, error: response.error
        )
        let topic = "traffic.edge.\(configuration.name)"
        bus.execute { $0.publish(topic: topic, event: .traffic(event)) }
        return result
    }

    private func send(_ request: Request, body: [Frame]) async -> MeshAnswer {
        let id = request.id
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if !bus.execute({ $0.send(request, body: body, continuation: continuation) }) {
                    continuation.resume(returning: EdgeBus.failure(id, .internal, "the edge is shutting down"))
                }
            }
        } onCancel: {
            bus.execute { $0.cancel(id) }
        }
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
