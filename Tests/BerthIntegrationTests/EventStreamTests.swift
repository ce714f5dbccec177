import AsyncHTTPClient
import BerthBus
import BerthTap
import BerthWire
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// The event stream, container logs over the bus, and Prometheus metrics, watched as a user would.
@Suite(.serialized)
struct EventStreamTests {
    static func startMesh(_ mesh: TestMesh, owned: Bool = false, metrics: Bool = false) async throws {
        try mesh.startRouter(metrics: metrics)
        try mesh.addInstance(className: "ContainerA", id: "a-0", owned: owned, metrics: metrics)
        try mesh.startEdge(routes: ["/a/=ContainerA"], metrics: metrics)
        #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok }, "\(mesh.logs)")
    }

    /// Runs `body` with a subscription to `topics`, giving up after `timeout`.
    /// `endpoint`: the events-out endpoints to follow (the mesh's first router's unless given).
    static func withSubscription<T: Sendable>(
        _ mesh: TestMesh, topics: [String] = [""], timeout: Duration = .seconds(20), endpoint: String? = nil,
        _ body: @escaping @Sendable (AsyncThrowingStream<TapItem, any Error>) async throws -> T
    ) async throws -> T {
        let configuration = TapConfiguration(endpoint: endpoint ?? mesh.eventsOut, topics: topics)
        let subscriber = TapSubscriber(configuration: configuration, logger: Logger(label: "test"))
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await subscriber.withEvents(body) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            return try #require(first, "timed out waiting for events")
        }
    }

    /// A subscriber that follows both router replicas sees each event once while both run, and keeps seeing events
    /// after the first router is killed.
    @Test func aSubscriberFollowingEveryRouterSeesEachEventOnceAndOutlivesOne() async throws {
        try await withMesh { mesh in
            try await mesh.startInstances(1, routers: 2)
            let both = "\(mesh.eventsOut),\(mesh.replicaEndpoints.eventsOut)"
            let counts: [String: Int] = try await Self.withSubscription(mesh, topics: ["traffic."], timeout: .seconds(40), endpoint: both) { items in
                // Subscriptions reach the publishers through the routers: requests go on until their events come.
                let sending = Task {
                    var index = 0
                    while !Task.isCancelled {
                        _ = try? await mesh.get("/a/instance", headers: [("x-request-id", "warm-\(index)")])
                        index += 1
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                var counts: [String: Int] = [:]
                var phase = 0
                for try await item in items {
                    guard case .event(let tapped) = item, case .traffic(let event) = tapped.event else { continue }
                    let key = "\(event.xRequestID) \(event.kind)"
                    counts[key, default: 0] += 1
                    if phase == 0 {
                        // Both routers pass events on: twenty requests, each counted, then the first router dies.
                        phase = 1
                        sending.cancel()
                        Task {
                            for index in 0..<20 { _ = try await mesh.get("/a/instance", headers: [("x-request-id", "once-\(index)")]) }
                            _ = try await mesh.get("/a/instance", headers: [("x-request-id", "marker")])
                        }
                    } else if phase == 1 && event.xRequestID == "marker" {
                        phase = 2
                        mesh.killRouter()
                        Task {
                            for index in 0..<200 {
                                _ = try? await mesh.get("/a/instance", headers: [("x-request-id", "after-\(index)")])
                                try await Task.sleep(for: .milliseconds(100))
                            }
                        }
                    } else if phase == 2 && event.xRequestID.hasPrefix("after-") {
                        return counts
                    }
                }
                return counts
            }
            let once = counts.filter { $0.key.hasPrefix("once-") }
            #expect(once.count == 40, "each of 20 requests has an edge and a sidecar event: \(once.keys.sorted())")
            #expect(once.values.allSatisfy { $0 == 1 }, "an event came twice: \(once.filter { $0.value > 1 })")
            #expect(counts.keys.contains { $0.hasPrefix("after-") }, "no event after the first router died")
        }
    }

    /// Publishers encode an event only for a topic someone subscribes to; they learn it from the router, so a
    /// restarted router must hand its subscribers' subscriptions on again.
    @Test func eventsFlowAgainAfterTheRouterRestarts() async throws {
        try await withMesh { mesh in
            try await Self.startMesh(mesh)
            let seenAfterRestart = try await Self.withSubscription(mesh, topics: ["traffic."]) { items in
                /// A request every 50 ms, its x-request-id `PREFIX-N`, until cancelled.
                func keepSending(_ prefix: String) -> Task<Void, any Error> {
                    Task {
                        for index in 0... {
                            _ = try? await mesh.get("/a/instance", headers: [("x-request-id", "\(prefix)-\(index)")])
                            try await Task.sleep(for: .milliseconds(50))
                        }
                    }
                }
                let sending = keepSending("before")
                var sendingAfter: Task<Void, any Error>?
                defer {
                    sending.cancel()
                    sendingAfter?.cancel()
                }
                for try await item in items {
                    guard case .event(let tapped) = item, case .traffic(let event) = tapped.event else { continue }
                    if sendingAfter == nil && event.xRequestID.hasPrefix("before-") {
                        sending.cancel()
                        mesh.killRouter()
                        try mesh.startRouter()
                        sendingAfter = keepSending("after")
                    }
                    if event.xRequestID.hasPrefix("after-") && event.kind == .sidecar { return true }
                }
                return false
            }
            #expect(seenAfterRestart, "\(mesh.logs)")
        }
    }

    @Test func everyExchangeYieldsItsTrafficEventsWithTheBytesActuallySent() async throws {
        try await withMesh { mesh in
            try await Self.startMesh(mesh)
            let appPort = mesh.instances[0].appPort
            let count = 20
            let events = try await Self.withSubscription(mesh, topics: ["traffic."]) { items in
                // A new subscription takes a moment to reach the publishers: send marked requests until one shows.
                let warmUp = Task {
                    for index in 0... {
                        _ = try? await mesh.get("/a/instance", headers: [("x-request-id", "warm-up-\(index)")])
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                var seen: [TrafficEvent] = []
                var sending: Task<Void, any Error>?
                for try await item in items {
                    guard case .event(let tapped) = item, case .traffic(let event) = tapped.event else { continue }
                    if event.xRequestID.hasPrefix("warm-up"), sending == nil {
                        warmUp.cancel()
                        sending = Task {
                            try? await warmUp.value
                            for index in 1...count {
                                let body = ByteBuffer(repeating: UInt8(index), count: index * 50)
                                let (response, _) = try await mesh.send("/a/bytes/\(index * 1_000)", method: .POST,
                                                                        headers: [("x-request-id", "request-\(index)")], body: body)
                                #expect(response.status == .ok)
                            }
                        }
                    }
                    if event.xRequestID.hasPrefix("request-") { seen.append(event) }
                    if seen.count == 2 * count { break }
                }
                try await sending?.value
                return seen
            }
            for index in 1...count {
                let matching = events.filter { $0.xRequestID == "request-\(index)" }
                let edge = matching.filter { $0.kind == .edge }
                let sidecar = matching.filter { $0.kind == .sidecar }
                #expect(edge.count == 1 && sidecar.count == 1, "request-\(index): \(matching)")
                for event in matching {
                    #expect(event.status == 200)
                    #expect(event.bytesIn == UInt64(index * 50), "request body bytes of request-\(index)")
                    #expect(event.bytesOut == UInt64(index * 1_000), "response body bytes of request-\(index)")
                    #expect(event.method == "POST")
                }
                #expect(sidecar.first?.destination == Endpoint(className: "ContainerA", instanceID: "a-0", port: UInt32(appPort)))
                #expect(sidecar.first?.path == "/bytes/\(index * 1_000)")
                #expect(edge.first?.source.className == "edge")
            }
        }
    }

    @Test func slowLateAndVanishingSubscribersNeverHoldUpARequest() async throws {
        try await withMesh { mesh in
            try await Self.startMesh(mesh)
            // A subscriber that never reads, with room for one message.
            var options = SocketOptions()
            options.receiveHighWaterMark = 1
            options.subscriptions = [""]
            let stuck = try Socket(.sub, options: options)
            try stuck.connect(mesh.eventsOut)
            var vanishing: Socket? = try Socket(.sub, options: options)
            try vanishing?.connect(mesh.eventsOut)
            var late: Socket?

            var failures: [String] = []
            for round in 0..<10 {
                if round == 3 { vanishing = nil }
                if round == 5 {
                    late = try Socket(.sub, options: options)
                    try late?.connect(mesh.eventsOut)
                }
                try await withThrowingTaskGroup(of: String?.self) { group in
                    for index in 0..<30 {
                        group.addTask {
                            let (response, body) = try await mesh.send("/a/bytes/4096", method: .GET, headers: [("x-request-id", "r\(round)-\(index)")])
                            return response.status == .ok && body.readableBytes == 4_096 ? nil : "\(response.status)"
                        }
                    }
                    for try await failure in group { if let failure { failures.append(failure) } }
                }
            }
            #expect(failures.isEmpty, "\(failures.count) of 300 requests failed: \(failures.prefix(5))")
            withExtendedLifetime((stuck, late)) {}
        }
    }

    @Test func anAppsLogLineReachesBerthLogsWithItsInstanceName() async throws {
        try await withMesh { mesh in
            try await Self.startMesh(mesh, owned: true)
            let marker = "marker-\(UUID().uuidString.prefix(8))"
            let logs = try ChildProcess(name: "berth-logs", executable: Paths.executable("berth"), arguments: [
                "logs", "--events-out", mesh.eventsOut, "ContainerA/a-0",
            ])
            defer { logs.stop() }
            let deadline = ContinuousClock.now + .seconds(15)
            while !logs.output.contains(marker) && ContinuousClock.now < deadline {
                _ = try await mesh.get("/a/log?line=\(marker)")
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(logs.output.contains("ContainerA/a-0 | \(marker)"), "berth logs printed:\n\(logs.output)\n\(mesh.logs)")
            // Started just after the mesh, it gets the app's first line too: the sidecar kept it for a subscriber.
            #expect(logs.output.contains("ContainerA/a-0 | listening on"), "berth logs printed:\n\(logs.output)")
        }
    }

    @Test func metricsParseAsPrometheusTextAndCountTheRequestsSent() async throws {
        try await withMesh { mesh in
            try await Self.startMesh(mesh, metrics: true)
            let ports = try [
                ("edge", #require(mesh.edgeMetricsPort)), ("router", #require(mesh.routerMetricsPort)),
                ("sidecar", #require(mesh.instances[0].metricsPort)),
            ]
            let counters = [
                "edge": #"berth_edge_requests_total{class="ContainerA",status="200"}"#,
                "sidecar": #"berth_sidecar_requests_total{class="ContainerA",instance="a-0",status="200"}"#,
            ]
            func scrape() async throws -> [String: [String: Double]] {
                var all: [String: [String: Double]] = [:]
                for (name, port) in ports {
                    let (response, body) = try await mesh.send("/metrics", method: .GET, port: port)
                    #expect(response.status == .ok)
                    #expect(response.headers["content-type"].first?.hasPrefix("text/plain") == true)
                    all[name] = try PrometheusText.parse(String(buffer: body))
                }
                return all
            }
            let before = try await scrape()
            for _ in 0..<25 { _ = try await mesh.get("/a/instance") }
            let after = try await scrape()
            for (process, series) in counters {
                let grown = (after[process]?[series] ?? 0) - (before[process]?[series] ?? 0)
                #expect(grown == 25, "\(process): \(series) grew by \(grown); it has \(after[process]?.keys.sorted().joined(separator: "\n") ?? "")")
            }
            #expect(after["edge"]?.keys.contains { $0.hasPrefix("berth_edge_request_duration_seconds_bucket") } == true)
            #expect(after["router"]?[#"berth_router_live_instances{class="ContainerA"}"#] == 1)
        }
    }
}

/// A strict reader of the Prometheus text exposition format: every line is a comment or a sample.
enum PrometheusText {
    struct Malformed: Error, CustomStringConvertible {
        let line: String
        var description: String { "not Prometheus text format: \(line)" }
    }

    static func parse(_ text: String) throws -> [String: Double] {
        let sample = #/^([a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})?) (-?[0-9.e+-]+|\+Inf|-Inf|NaN)( -?[0-9]+)?$/#
        let comment = #/^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$/#
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("#") {
                guard line.wholeMatch(of: comment) != nil else { throw Malformed(line: String(line)) }
                continue
            }
            guard let match = line.wholeMatch(of: sample) else { throw Malformed(line: String(line)) }
            samples[String(match.1)] = Double(match.5) ?? .nan
        }
        return samples
    }
}
