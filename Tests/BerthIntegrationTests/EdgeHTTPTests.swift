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

    private static func send(_ fd: Int32, _ request: [UInt8]) {
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { break }
            sent += count
        }
    }

    private static func connected(port: Int) throws -> Int32 {
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

    /// `berth-edge` answers declarative routes on the event loop; `demo-edge` runs a Worker in a task per request.
    @Test(arguments: ["berth-edge", "demo-edge"])
    func clientsThatGoAwayMidRequestCostNothingElse(edge: String) async throws {
        try await withMesh { mesh in
            try mesh.startRouter(metrics: true)
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"], metrics: true, executable: edge)
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok })
            let routerMetrics = try #require(mesh.routerMetricsPort)
            /// Whether the router's `berth_router_in_flight` gauge reads `count`.
            func inFlight(_ count: Double) -> (HTTPClientResponse, String) -> Bool {
                { _, text in
                    text.split(separator: "\n").contains { $0.hasPrefix("berth_router_in_flight ") && Double($0.split(separator: " ")[1]) == count }
                }
            }

            // Five clients ask for a slow answer and hang up long before it comes, once the mesh has their requests.
            var hungUp: [Int32] = []
            for _ in 0..<5 {
                let fd = try Self.connected(port: mesh.edgePort)
                Self.send(fd, Array("GET /a/slow/1500 HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
                hungUp.append(fd)
            }
            #expect(try await mesh.waitUntil("/metrics", port: routerMetrics, accept: inFlight(5)), "the five requests should reach the app")
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
            #expect(try await mesh.waitUntil("/metrics", port: routerMetrics, accept: inFlight(0)), "the app should answer the five")
            let (after, body) = try await mesh.get("/a/echo")
            #expect(after.status == .ok, "\(body)")
        }
    }

    @Test func aBodyOverTheLimitIs413AndTheConnectionCloses() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"], arguments: ["--max-body", "1000"])
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok })

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
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok })

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
}
