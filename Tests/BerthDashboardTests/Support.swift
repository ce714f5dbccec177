import AsyncHTTPClient
import BerthDashboard
import BerthTap
import BerthWire
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

let testLogger = Logger(label: "berth.dashboard.test")

/// Runs a `DashboardService` on a free port, following `eventsOut`, for the duration of `body`; then shuts it down
/// gracefully and waits until it has stopped.
func withDashboard<Result: Sendable>(
    eventsOut: String,
    configure: (inout DashboardConfiguration) -> Void = { _ in },
    _ body: (Int) async throws -> Result
) async throws -> Result {
    var configuration = DashboardConfiguration()
    configuration.port = 0
    configuration.eventsOut = eventsOut
    configuration.statsInterval = .milliseconds(100)
    configure(&configuration)
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let service = DashboardService(configuration: configuration, logger: testLogger) { port in
        portContinuation.yield(port)
        portContinuation.finish()
    }
    let group = ServiceGroup(configuration: .init(services: [.init(service: service)], logger: testLogger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw TestFailure("the dashboard never listened") }
            let result = try await body(port)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            tasks.cancelAll()
            throw error
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `GET` or another method on the dashboard; the status and the body as text.
func request(_ port: Int, _ path: String, method: HTTPMethod = .GET) async throws -> (status: Int, headers: [String: String], body: String) {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    request.method = method
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
    let body = try await response.body.collect(upTo: 16 << 20)
    var headers: [String: String] = [:]
    for header in response.headers { headers[header.name.lowercased()] = header.value }
    return (Int(response.status.code), headers, String(buffer: body))
}

func stats(_ port: Int) async throws -> StatsSnapshot {
    let (_, _, body) = try await request(port, "/stats")
    return try JSONDecoder().decode(StatsSnapshot.self, from: Data(body.utf8))
}

struct Health: Decodable {
    var status: String
    var events: UInt64
    var clients: Int
    var dropped: UInt64
}

func health(_ port: Int) async throws -> Health {
    let (_, _, body) = try await request(port, "/health")
    return try JSONDecoder().decode(Health.self, from: Data(body.utf8))
}

/// Polls `condition` until it holds. The suites' time limits stop a test whose condition never comes true.
func eventually(_ condition: () async throws -> Bool) async throws {
    while try await !condition() {
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// One message of a server-sent event stream.
struct ServerSentEvent: Equatable {
    /// `nil` for the default type, `message`.
    var event: String?
    var data: String
}

/// Reads a `text/event-stream` response message by message, as a browser's EventSource does.
struct EventStreamReader {
    private var iterator: HTTPClientResponse.Body.AsyncIterator
    private var buffer: [UInt8] = []
    let contentType: String?

    /// Opens `GET /events` (or `path`); returns once the response head has arrived.
    static func open(port: Int, path: String = "/events") async throws -> EventStreamReader {
        let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(600))
        guard response.status == .ok else { throw TestFailure("GET /events answered \(response.status)") }
        return EventStreamReader(iterator: response.body.makeAsyncIterator(), contentType: response.headers.first(name: "content-type"))
    }

    private init(iterator: HTTPClientResponse.Body.AsyncIterator, contentType: String?) {
        self.iterator = iterator
        self.contentType = contentType
    }

    /// The next message with data; comments and `retry:` lines are skipped. `nil` when the stream ended.
    mutating func next() async throws -> ServerSentEvent? {
        var event: String?
        var data: [String] = []
        while let line = try await nextLine() {
            if line.isEmpty {
                if !data.isEmpty { return ServerSentEvent(event: event, data: data.joined(separator: "\n")) }
                event = nil
                continue
            }
            if line.hasPrefix(":") { continue }
            let (field, value) = line.firstIndex(of: ":").map { colon in
                var value = line[line.index(after: colon)...]
                if value.hasPrefix(" ") { value = value.dropFirst() }
                return (String(line[..<colon]), String(value))
            } ?? (line, "")
            switch field {
            case "event": event = value
            case "data": data.append(value)
            default: break
            }
        }
        return nil
    }

    /// The next message of the default type (an event), skipping `stats` and others.
    mutating func nextEvent() async throws -> String? {
        while let message = try await next() {
            if message.event == nil { return message.data }
        }
        return nil
    }

    /// The next `stats` message, decoded.
    mutating func nextStats() async throws -> StatsSnapshot? {
        while let message = try await next() {
            if message.event == "stats" { return try JSONDecoder().decode(StatsSnapshot.self, from: Data(message.data.utf8)) }
        }
        return nil
    }

    private mutating func nextLine() async throws -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            guard let chunk = try await iterator.next() else { return nil }
            buffer.append(contentsOf: chunk.readableBytesView)
        }
    }
}

// MARK: - Events

/// Traffic as the demo makes it: for each `/send`, the edge fetches from an instance of A and posts to one of B,
/// and both the edge and the serving sidecar report each exchange. Request `index` gives different instances,
/// sizes and latencies.
func demoTraffic(_ index: Int, startingAt time: UInt64 = 1_735_787_045_000_000) -> [TappedEvent] {
    let edge = Endpoint(className: "edge", instanceID: "edge")
    let a = Endpoint(className: "ContainerA", instanceID: "a-\(index % 3)", port: 8080)
    let b = Endpoint(className: "ContainerB", instanceID: "b-\((index / 3 + index) % 3)", port: 3000)
    let t = time + UInt64(index) * 250_000
    let payload = UInt64(104 + index % 10)
    let answer = UInt64(180 + index % 10)
    let aLatency = UInt64(700 + (index * 137) % 900)
    let bLatency = UInt64(1_400 + (index * 251) % 2_200)
    func traffic(_ kind: TrafficKind, _ destination: Endpoint, method: String, path: String, in bytesIn: UInt64, out bytesOut: UInt64, latency: UInt64, at time: UInt64, id: UInt64) -> TappedEvent {
        let topic = kind == .edge ? "traffic.edge.edge" : "traffic.\(destination.className).\(destination.instanceID)"
        return TappedEvent(topic: topic, event: .traffic(TrafficEvent(
            timeMicroseconds: time, requestID: id, traceID: "trace-\(index)", source: edge, destination: destination,
            method: method, path: path, status: 200, bytesIn: bytesIn, bytesOut: bytesOut, latencyMicroseconds: latency, kind: kind
        )))
    }
    let id = UInt64(index * 2)
    return [
        traffic(.sidecar, a, method: "GET", path: "/get-payload", in: 0, out: payload, latency: aLatency, at: t + aLatency, id: id),
        traffic(.edge, a, method: "GET", path: "/get-payload", in: 0, out: payload, latency: aLatency + 420, at: t + aLatency + 420, id: id),
        traffic(.sidecar, b, method: "POST", path: "/receive", in: payload, out: answer, latency: bLatency, at: t + aLatency + 900 + bLatency, id: id + 1),
        traffic(.edge, b, method: "POST", path: "/receive", in: payload, out: answer, latency: bLatency + 510, at: t + aLatency + 1_400 + bLatency, id: id + 1),
    ]
}

/// A lifecycle event for `ContainerX/x-i`.
func lifecycle(_ className: String, _ instance: String, port: UInt32, _ state: LifecycleState, pid: UInt32 = 4_242, at time: UInt64 = 1_735_787_044_000_000) -> TappedEvent {
    TappedEvent(
        topic: "lifecycle.\(className).\(instance)",
        event: .lifecycle(LifecycleEvent(timeMicroseconds: time, container: Endpoint(className: className, instanceID: instance, port: port), state: state, pid: pid))
    )
}

/// Every instance of the demo healthy.
func demoLifecycle() -> [TappedEvent] {
    (0..<3).map { lifecycle("ContainerA", "a-\($0)", port: 8080, .healthy, pid: UInt32(15_340 + $0)) }
        + (0..<3).map { lifecycle("ContainerB", "b-\($0)", port: 3000, .healthy, pid: UInt32(15_390 + $0)) }
}
