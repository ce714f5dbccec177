import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The edge's own HTTP/1.1, as a client on a bare TCP connection sees it.
@Suite(.serialized)
struct EdgeHTTPTests {
    /// Sends `request` on a new connection and reads until the edge closes it, or until `timeout` passes.
    static func exchange(port: Int, _ request: [UInt8], timeout: Int = 5) throws -> (answer: String, closed: Bool) {
        let fd = try connected(port: port)
        defer { close(fd) }
        var wait = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        send(fd, request)
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return (String(decoding: answer, as: UTF8.self), true) }
            if count < 0 { return (String(decoding: answer, as: UTF8.self), false) }
            answer.append(contentsOf: buffer[..<count])
        }
    }

    fileprivate static func send(_ fd: Int32, _ request: [UInt8]) {
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { break }
            sent += count
        }
    }

    static func connected(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw PortTimeout(port: port)
        }
        return fd
    }

    /// `berth-edge` answers declarative routes on the event loop; `streaming-edge` runs a Worker in a task per request.
    @Test(arguments: ["berth-edge", "streaming-edge"])
    func clientsThatGoAwayMidRequestCostNothingElse(edge: String) async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance(metrics: true, edgeExecutable: edge)
            let edgeMetrics = try #require(mesh.edgeMetricsPort)
            let inFlight = Self.edgeInFlight

            // Five clients ask for a slow answer and hang up long before it comes, once the mesh has their requests.
            var hungUp: [Int32] = []
            for _ in 0..<5 {
                let fd = try Self.connected(port: mesh.edgePort)
                Self.send(fd, Array("GET /a/slow/1500 HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
                hungUp.append(fd)
            }
            #expect(try await mesh.waitUntil("/metrics", port: edgeMetrics, accept: inFlight(5)), "the five requests should reach the mesh")
            for fd in hungUp { close(fd) }

            // Others are served at once, and the edge stopped waiting for the five: each is counted as gone.
            let started = ContinuousClock.now
            let (response, _) = try await mesh.get("/a/instance")
            #expect(response.status == .ok)
            #expect(started.duration(to: .now) < .seconds(1))
            let metricsPort = try #require(mesh.edgeMetricsPort)
            #expect(try await mesh.waitUntil("/metrics", port: metricsPort) { _, text in
                text.contains(#"berth_edge_requests_total{class="ContainerA",status="500"} 5"#)
            }, "the edge should count the five requests whose clients went away")

            // Their answers arrive after the clients left, and are dropped without harm.
            #expect(try await mesh.waitUntil("/metrics", port: edgeMetrics, accept: inFlight(0)), "the edge should wait for none of the five")
            let (after, body) = try await mesh.get("/a/echo")
            #expect(after.status == .ok, "\(body)")
        }
    }

    /// Whether the edge's `berth_edge_in_flight` gauge (requests it has in the mesh) reads `count`, for `waitUntil`.
    static func edgeInFlight(_ count: Double) -> (HTTPClientResponse, String) -> Bool {
        { _, text in
            text.split(separator: "\n").contains { $0.hasPrefix("berth_edge_in_flight ") && Double($0.split(separator: " ")[1]) == count }
        }
    }

    /// A client that pipelines more than the edge holds while its first request is open, then hangs up: the edge
    /// reads no more from it, so only the hang-up says it is gone; it must still cancel the request at once.
    @Test func aClientThatHangsUpWithMoreQueuedThanTheEdgeHoldsIsNoticed() async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance(metrics: true)
            let metricsPort = try #require(mesh.edgeMetricsPort)

            let fd = try Self.connected(port: mesh.edgePort)
            let queued = String(repeating: "GET /a/instance HTTP/1.1\r\nHost: x\r\nX-Filler: \(String(repeating: "f", count: 200))\r\n\r\n", count: 500)
            Self.send(fd, Array(("GET /a/slow/5000 HTTP/1.1\r\nHost: x\r\n\r\n" + queued).utf8))
            #expect(try await mesh.waitUntil("/metrics", port: metricsPort, accept: Self.edgeInFlight(1)), "the slow request should reach the mesh")
            close(fd)

            #expect(try await mesh.waitUntil("/metrics", port: metricsPort, timeout: .seconds(3)) { _, text in
                text.contains(#"berth_edge_requests_total{class="ContainerA",status="500"} 1"#)
            }, "the slow request should be cancelled when its client hangs up, not answered 5 s later")
            let (after, _) = try await mesh.get("/a/instance")
            #expect(after.status == .ok)
        }
    }

    @Test func aBodyOverTheLimitIs413AndTheConnectionCloses() async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance(edgeArguments: ["--max-body", "1000"])

            let request = Array("POST /a/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".utf8) + [UInt8](repeating: 65, count: 100_000)
            let (answer, closed) = try Self.exchange(port: mesh.edgePort, request)
            #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer)")
            #expect(answer.contains("x-berth-error: too-large"), "\(answer)")
            #expect(answer.contains("connection: close"), "\(answer)")
            #expect(answer.contains("over the 1000-byte limit"), "\(answer)")
            #expect(closed, "the edge should close the connection after a 413")

            let (within, body) = try await mesh.send("/a/echo", method: .POST, body: .init(repeating: 66, count: 1_000))
            #expect(within.status == .ok, "a body at the limit should pass: \(String(buffer: body))")
            #expect(String(buffer: body).contains("\"bodyLength\": 1000"), "\(String(buffer: body))")
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrderAndConnectionCloseIsHonoured() async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance()

            let requests = "GET /a/slow/200 HTTP/1.1\r\nHost: x\r\n\r\n"
                + "HEAD /a/echo HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /a/status/204 HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /a/instance HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let (answer, closed) = try Self.exchange(port: mesh.edgePort, Array(requests.utf8))
            let statuses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { "HTTP/1.1 " + ($0.components(separatedBy: "\r\n").first ?? "") }
            #expect(statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 204 No Content", "HTTP/1.1 200 OK"], "\(answer)")
            #expect(answer.contains("slow\n"), "the first answer comes first: \(answer)")
            #expect(answer.hasSuffix("\r\n\r\na-0"), "the last answer ends the connection: \(answer)")
            #expect(answer.lowercased().contains("connection: close"), "\(answer)")
            #expect(closed)

            let (garbage, garbageClosed) = try Self.exchange(port: mesh.edgePort, Array("NOT HTTP\r\n\r\n".utf8))
            #expect(garbage.hasPrefix("HTTP/1.1 400"), "\(garbage)")
            #expect(garbageClosed)
            let (after, _) = try await mesh.get("/a/instance")
            #expect(after.status == .ok, "the edge keeps serving after garbage")
        }
    }

    /// One client connection driven step by step: send, then read until the answer so far holds what is expected.
    final class Conversation {
        let fd: Int32
        private(set) var received: [UInt8] = []
        private(set) var closed = false

        init(port: Int) throws {
            fd = try EdgeHTTPTests.connected(port: port)
            var wait = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        func send(_ text: String) { EdgeHTTPTests.send(fd, Array(text.utf8)) }

        var text: String { String(decoding: received, as: UTF8.self) }

        /// Reads until `text` contains `expected` (true), or the connection closes or `timeout` passes (false).
        func read(until expected: String, timeout: Duration = .seconds(5)) -> Bool {
            let deadline = ContinuousClock.now + timeout
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while !text.contains(expected) {
                guard !closed, ContinuousClock.now < deadline else { return false }
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count == 0 { closed = true }
                if count > 0 { received.append(contentsOf: buffer[..<count]) }
            }
            return true
        }

        /// Reads until the edge closes the connection; false when it stays open past `timeout`.
        func readToEnd(timeout: Duration = .seconds(5)) -> Bool {
            _ = read(until: "\u{0}never", timeout: timeout)
            return closed
        }
    }

    @Test func aClientThatWaitsToSendItsBodyIsToldToGoOnUnlessTheBodyIsTooLarge() async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance(edgeArguments: ["--max-body", "1000"])

            let waiting = try Conversation(port: mesh.edgePort)
            waiting.send("POST /a/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
            #expect(waiting.read(until: "HTTP/1.1 100 Continue\r\n\r\n"), "\(waiting.text)")
            waiting.send("hello")
            #expect(waiting.read(until: "\"bodyLength\": 5"), "\(waiting.text)")
            #expect(waiting.text.contains("HTTP/1.1 200 OK"), "\(waiting.text)")

            let tooLarge = try Conversation(port: mesh.edgePort)
            tooLarge.send("POST /a/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
            #expect(tooLarge.readToEnd(), "the edge closes after its 413: \(tooLarge.text)")
            #expect(tooLarge.text.hasPrefix("HTTP/1.1 413"), "a 413 at once, no 100 first: \(tooLarge.text)")
        }
    }

    @Test func chunkedBodiesAndHTTP10ClientsAreServed() async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance()

            let chunked = try Conversation(port: mesh.edgePort)
            chunked.send("POST /a/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
            #expect(chunked.read(until: "\"bodyLength\": 11"), "\(chunked.text)")
            #expect(!chunked.text.contains("transfer-encoding"), "the app gets a length, not a coding: \(chunked.text)")

            let (plain, plainClosed) = try Self.exchange(port: mesh.edgePort, Array("GET /a/instance HTTP/1.0\r\n\r\n".utf8))
            #expect(plain.hasPrefix("HTTP/1.0 200 OK\r\n"), "\(plain)")
            #expect(plain.hasSuffix("\r\n\r\na-0"), "\(plain)")
            #expect(plainClosed, "HTTP/1.0 closes after the answer unless asked to keep the connection")

            let kept = try Conversation(port: mesh.edgePort)
            kept.send("GET /a/instance HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            #expect(kept.read(until: "a-0"), "\(kept.text)")
            #expect(kept.text.lowercased().contains("connection: keep-alive"), "\(kept.text)")
            kept.send("GET /a/status/404 HTTP/1.0\r\n\r\n")
            #expect(kept.readToEnd(), "the second request did not ask to keep it: \(kept.text)")
            #expect(kept.text.contains("HTTP/1.0 404"), "\(kept.text)")
        }
    }

    @Test(arguments: [
        ("POST /a/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "both Content-Length and Transfer-Encoding"),
        ("POST /a/echo HTTP/1.1\r\nHost: x\r\n\nContent-Length: 5\r\n\r\nhello", "bare CR or LF"),
        ("POST /a/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "conflicting Content-Length"),
        ("GET /a/echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n X-Folded: 2\r\n\r\n", "folds a header"),
        ("GET /a/echo\u{1}x HTTP/1.1\r\nHost: x\r\n\r\n", "space or a control byte"),
        ("GET /a/echo HTTP/1.x\r\nHost: x\r\n\r\n", "HTTP/1.0 or HTTP/1.1"),
    ])
    func requestsThatCouldBeReadTwoWaysAreRefusedWithWhy(request: String, why: String) async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            let (answer, closed) = try Self.exchange(port: mesh.edgePort, Array(request.utf8))
            #expect(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(answer)")
            #expect(answer.contains("x-berth-error: bad-request"), "\(answer)")
            #expect(answer.contains(why), "\(answer)")
            #expect(closed)
        }
    }

    @Test func aHeadOverItsLimitIs431() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            let request = "GET /a/echo HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 70_000) + "\r\n\r\n"
            let (answer, closed) = try Self.exchange(port: mesh.edgePort, Array(request.utf8))
            #expect(answer.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "\(answer.prefix(300))")
            #expect(answer.contains("the head of the request is over 65536 bytes"), "\(answer.prefix(300))")
            #expect(closed)
        }
    }

    /// Idle kept-alive connections and clients too slow to finish a request are closed; a request waiting on a slow
    /// app is not idle.
    @Test func connectionsThatMakeNoProgressAreClosedButSlowAnswersAreWaitedFor() async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance(edgeArguments: ["--idle-timeout", "300ms"])

            let slowApp = try Conversation(port: mesh.edgePort)
            slowApp.send("GET /a/slow/900 HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(slowApp.read(until: "slow\n"), "an answer slower than the idle timeout still comes: \(slowApp.text)")

            let started = ContinuousClock.now
            #expect(slowApp.readToEnd(timeout: .seconds(3)), "the kept-alive connection, idle now, is closed")
            #expect(started.duration(to: .now) >= .milliseconds(250))

            let slowClient = try Conversation(port: mesh.edgePort)
            slowClient.send("GET /a/instance HTTP/1.1\r\nHo")
            #expect(slowClient.readToEnd(timeout: .seconds(3)), "a request never finished is not waited for forever")
            #expect(slowClient.text.isEmpty, "\(slowClient.text)")
        }
    }

    /// Many more connections than the edge has threads, each with several requests in turn: all answered, each
    /// with its own answer.
    @Test func manyClientsAtOnceAreEachAnsweredRightly() async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance()

            // All connections open and each with a request in flight at once; then the next round on each.
            let conversations = try (0..<200).map { _ in try Conversation(port: mesh.edgePort) }
            var problems: [String] = []
            for round in 0..<3 {
                for (client, conversation) in conversations.enumerated() {
                    let body = "client \(client) round \(round)"
                    conversation.send("POST /a/echo?c=\(client)&r=\(round) HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                }
                for (client, conversation) in conversations.enumerated() {
                    let answer = "\"query\": \"c=\(client)&r=\(round)\""
                    if !conversation.read(until: answer, timeout: .seconds(20)) {
                        problems.append("client \(client) round \(round): \(conversation.text.suffix(300))")
                    }
                }
            }
            let answered = conversations.map { $0.text.components(separatedBy: "HTTP/1.1 200 OK").count - 1 }
            #expect(answered.allSatisfy { $0 == 3 }, "answers per client: \(answered)")
            #expect(problems.isEmpty, "\(problems.prefix(5))")
        }
    }
}
