import AsyncHTTPClient
import BerthBus
import BerthWire
import Foundation
import NIOCore
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Answers that skip the router: a sidecar linked to the edge's reply endpoint sends the answer there, and tells
/// the router only which requests it answered (`Delivered`).
@Suite(.serialized) struct DirectReplyTests {
    /// Once the link is up, an answer reaches the client while the router is frozen; the note that follows closes
    /// the request at the router when it wakes.
    @Test func anAnswerReachesTheClientWhileTheRouterIsFrozen() async throws {
        try await withMesh { mesh in
            // A long heartbeat, so that the edge does not give up on the frozen router during the test. The first
            // answers come through the router while the sidecar's link to the edge connects.
            try await mesh.startOneInstance(metrics: true, instanceMetrics: true, edgeArguments: ["--heartbeat", "3s"])
            let routerMetrics = try #require(mesh.routerMetricsPort)
            let sidecarMetrics = try #require(mesh.instance("a-0")?.metricsPort)
            var direct = 0.0
            let deadline = ContinuousClock.now + .seconds(5)
            while direct == 0 && ContinuousClock.now < deadline {
                _ = try await mesh.get("/a/echo")
                let (_, text) = try await mesh.send("/metrics", method: .GET, port: sidecarMetrics)
                direct = Self.value(of: "berth_sidecar_direct_answers_total", in: String(buffer: text))
            }
            #expect(direct > 0, "answers should start going straight to the edge")

            let answer = Task { try await mesh.get("/a/slow/800") }
            #expect(try await mesh.waitUntil("/metrics", port: routerMetrics, accept: EdgeHTTPTests.routerInFlight(1)))
            let router = try #require(mesh.router)
            router.signal(SIGSTOP)
            let (response, body) = try await answer.value
            router.signal(SIGCONT)
            #expect(response.status == .ok, "the answer should skip the frozen router: \(body)")
            #expect(body == "slow\n")
            #expect(try await mesh.waitUntil("/metrics", port: routerMetrics, accept: EdgeHTTPTests.routerInFlight(0)),
                    "the sidecar's note should close the request at the router")
        }
    }

    static func value(of metric: String, in text: String) -> Double {
        text.split(separator: "\n").first { $0.hasPrefix(metric + "{") || $0.hasPrefix(metric + " ") }
            .flatMap { Double($0.split(separator: " ").last!) } ?? 0
    }

    /// A sidecar answers through the router when a request names an endpoint it will not use (another transport)
    /// or cannot reach (no such file): every answer comes back, and a refused endpoint is reported.
    @Test(arguments: ["inproc://berth-edge", "udp://127.0.0.1:9", "ipc:///nonexistent/berth-test/edge.sock"])
    func anUnusableReplyEndpointFallsBackToTheRouter(_ endpoint: String) async throws {
        try await withLoneSidecar(heartbeat: "200ms") { router, sidecar, identity in
            for id in UInt64(1)...3 {
                let request = Request(
                    id: id, target: Target(className: "ContainerA"), method: "GET", path: "/echo", timeoutMilliseconds: 5_000,
                    replyTo: endpoint, replyID: 1_000 + id
                )
                try router.send(.request(request), to: identity)
                let answer = try await router.receive { if case .response(let response) = $0, response.id == id { true } else { false } }
                guard case .response(let response)? = answer?.0 else {
                    Issue.record("no answer through the router for request \(id) with reply_to \(endpoint):\n\(sidecar.output)")
                    return
                }
                #expect(response.status == 200)
            }
            if !endpoint.hasPrefix("ipc://") {
                #expect(sidecar.output.contains("cannot link to an edge's reply endpoint"))
            }
        }
    }

    /// An edge that cannot bind its automatic endpoint says so and takes every answer through the router.
    @Test func anEdgeWithoutAReplyEndpointStillGetsEveryAnswer() async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance(edgeEnvironment: ["XDG_RUNTIME_DIR": "/nonexistent/berth-test"])
            for _ in 0..<20 {
                let (response, body) = try await mesh.get("/a/echo")
                #expect(response.status == .ok, "\(body)")
            }
            let log = try String(contentsOf: try #require(mesh.edge).logURL, encoding: .utf8)
            #expect(log.contains("cannot bind an endpoint for direct answers"))
        }
    }

    /// Whatever arrives on the reply endpoint that is not an answer to a waiting request is dropped with a warning;
    /// a forged answer for an id nobody waits for changes nothing.
    @Test func garbageOnTheReplyEndpointIsRejected() async throws {
        try await withMesh { mesh in
            let endpoint = "ipc://\(FileManager.default.temporaryDirectory.path)/berth-test-replies-\(mesh.edgePort).sock"
            try await mesh.startOneInstance(edgeArguments: ["--reply-endpoint", endpoint])

            var options = SocketOptions()
            options.immediate = true
            let intruder = try Socket(.dealer, options: options)
            try intruder.connect(endpoint)
            let messages: [[Frame]] = [
                [Frame(Array("not protobuf".utf8))],
                [Frame(Envelope.request(Request(id: 1, target: Target(className: "ContainerA"), method: "GET", path: "/")).encoded())],
                [Frame(Envelope.response(Response(id: 42, status: 200)).encoded()), Frame(Array("forged".utf8))],
            ]
            var sent = 0
            let deadline = ContinuousClock.now + .seconds(5)
            while sent < messages.count && ContinuousClock.now < deadline {
                if try intruder.send(messages[sent]) { sent += 1 } else { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(sent == messages.count, "the intruder should reach the edge's reply endpoint")

            for _ in 0..<10 {
                let (response, body) = try await mesh.get("/a/echo")
                #expect(response.status == .ok, "\(body)")
                #expect(!body.contains("forged"))
            }
            let log = try String(contentsOf: try #require(mesh.edge).logURL, encoding: .utf8)
            #expect(log.contains("rejected malformed envelope"))
            #expect(log.contains("sidecars send responses only"))
        }
    }
}
