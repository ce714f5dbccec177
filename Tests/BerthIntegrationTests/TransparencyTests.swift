import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// What a client sees through the edge is what it sees from the app directly.
@Suite(.serialized)
struct TransparencyTests {
    /// One exchange as a client sees it, less what differs by nature (the Date header).
    struct Seen: Equatable, CustomStringConvertible {
        var status: UInt
        var headers: [String]
        var body: [UInt8]

        var description: String { "\(status) \(headers) body \(body.count) bytes" }
    }

    static func seen(_ response: HTTPClientResponse, _ body: ByteBuffer) -> Seen {
        Seen(
            status: response.status.code,
            headers: response.headers.filter { $0.name.lowercased() != "date" }.map { "\($0.name.lowercased()): \($0.value)" },
            body: Array(body.readableBytesView)
        )
    }

    /// The echo app's answer less the `traceparent` it lists among the headers it got, and how many it listed: the one
    /// header the mesh adds on purpose (W3C Trace Context, the span of the app's sidecar). Its length goes too (a HEAD
    /// has only the length). Other answers are unchanged.
    static func withoutTraceparent(_ seen: Seen, path: String) -> (Seen, traceparents: Int) {
        guard path.hasPrefix("/echo") else { return (seen, 0) }
        var changed = seen
        changed.headers = seen.headers.filter { !$0.hasPrefix("content-length:") }
        guard let echo = try? JSONSerialization.jsonObject(with: Data(seen.body)) as? [String: Any],
              let headers = echo["headers"] as? [[String]],
              let body = try? JSONSerialization.data(withJSONObject: echo.merging(["headers": headers.filter { $0.first != "traceparent" }]) { $1 }, options: .sortedKeys)
        else { return (changed, 0) }
        changed.body = Array(body)
        return (changed, headers.count { $0.first == "traceparent" })
    }

    static func randomBytes(_ count: Int) -> ByteBuffer {
        var generator = SystemRandomNumberGenerator()
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        for _ in 0..<(count / 8) { buffer.writeInteger(generator.next() as UInt64) }
        while buffer.readableBytes < count { buffer.writeInteger(UInt8.random(in: 0...255)) }
        return buffer
    }

    @Test func requestsAndResponsesCrossTheMeshUnchanged() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            let index = try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            let appPort = mesh.instances[index].appPort
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok }, "mesh never came up:\n\(mesh.logs)")

            let headers = [("X-Multi", "1"), ("X-Multi", "2"), ("X-Odd", "a, b;c=\"d\" \u{7e}"), ("X-Mixed-Case", "Value With Spaces")]
            var cases: [(path: String, method: HTTPMethod, body: ByteBuffer?)] = []
            for method in [HTTPMethod.GET, .HEAD, .POST, .PUT, .DELETE, .PATCH] {
                cases.append(("/echo?a=1&b=two%20words&a=3&empty=", method, method == .GET || method == .HEAD ? nil : ByteBuffer(string: "{\"k\":1}")))
            }
            cases.append(("/echo", .POST, ByteBuffer()))
            cases.append(("/echo", .POST, Self.randomBytes(1_024)))
            cases.append(("/echo", .PUT, Self.randomBytes(8 << 20)))
            cases.append(("/bytes/1024", .GET, nil))
            cases.append(("/bytes/8388608", .GET, nil))
            for status in [200, 201, 204, 404, 500] { cases.append(("/status/\(status)", .GET, nil)) }
            cases.append(("/redirect", .GET, nil))

            for (path, method, body) in cases {
                let (directResponse, directBody) = try await mesh.send(path, method: method, headers: headers, body: body, port: appPort)
                let (meshResponse, meshBody) = try await mesh.send("/a" + path, method: method, headers: headers, body: body)
                let (direct, _) = Self.withoutTraceparent(Self.seen(directResponse, directBody), path: path)
                let (throughMesh, traceparents) = Self.withoutTraceparent(Self.seen(meshResponse, meshBody), path: path)
                #expect(direct == throughMesh, "\(method) \(path) with \(body?.readableBytes ?? 0)-byte body:\n direct \(direct)\n mesh   \(throughMesh)")
                if path.hasPrefix("/echo") && method != .HEAD { #expect(traceparents == 1, "\(method) \(path): the app gets one traceparent") }
            }
        }
    }

    /// The sidecar writes a request body as the app takes it; an app that answers before it read them all
    /// gets its answer relayed, and the connection, with the rest of the body unsent, is not used again.
    @Test func anAnswerBeforeTheWholeBodyIsRelayedAndItsConnectionNotReused() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok }, "mesh never came up:\n\(mesh.logs)")

            let big = ByteBuffer(repeating: 0x62, count: 8 << 20)
            for round in 0..<3 {
                let (early, earlyBody) = try await mesh.send("/a/early", method: .POST, body: big)
                #expect(early.status == .payloadTooLarge, "round \(round): \(early.status) \(String(buffer: earlyBody))")
                let (next, nextBody) = try await mesh.send(
                    "/a/echo", method: .POST, headers: [("x-berth-timeout-ms", "3000")], body: ByteBuffer(string: "after"))
                #expect(next.status == .ok, "round \(round): \(next.status) \(String(buffer: nextBody))\n\(mesh.logs)")
                #expect(String(buffer: nextBody).contains("\"bodyLength\": 5"), "round \(round): \(String(buffer: nextBody))")
            }
        }
    }

    /// However the app frames its answer (a length, chunks, the end of the connection, after a 100), the client gets
    /// it whole; an answer that is not HTTP is a 502 that says what was wrong, and the next request is served.
    @Test func answersFramedAnyWayArriveWholeAndGarbageIs502() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok }, "mesh never came up:\n\(mesh.logs)")

            let pattern = (0..<300_000).map { UInt8(truncatingIfNeeded: $0) }
            let (chunked, chunkedBody) = try await mesh.send("/a/chunked/300000", method: .GET)
            #expect(chunked.status == .ok)
            #expect(Array(chunkedBody.readableBytesView) == pattern, "\(chunkedBody.readableBytes) bytes")
            let (unframed, unframedBody) = try await mesh.get("/a/raw/unframed")
            #expect(unframed.status == .ok && unframedBody == "until the connection ends\n", "\(unframed.status) \(unframedBody)")
            let (interim, interimBody) = try await mesh.get("/a/raw/continue")
            #expect(interim.status == .ok && interimBody == "after\n", "\(interim.status) \(interimBody)")

            for (path, reason) in [("/a/raw/garbage", "does not start with an HTTP/1.x status line"), ("/a/raw/conflict", "conflicting Content-Length")] {
                let (response, body) = try await mesh.get(path)
                #expect(response.status == .badGateway, "\(path): \(response.status) \(body)")
                #expect(response.headers["x-berth-error"] == ["app-failed"], "\(path)")
                #expect(body.contains(reason), "\(path): \(body)")
            }
            let (after, afterBody) = try await mesh.get("/a/echo")
            #expect(after.status == .ok, "\(afterBody)")
        }
    }

    @Test func theRoutePrefixIsStrippedAndTheInstanceHeaderIsNotForwarded() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerB", id: "b-0")
            try mesh.startEdge(routes: ["/b/=ContainerB", "/b/deep/=ContainerB@b-0"])
            #expect(try await mesh.waitUntil("/b/instance") { response, _ in response.status == .ok })

            let (_, plain) = try await mesh.get("/b/echo", headers: [("x-berth-instance", "b-0"), ("x-berth-timeout-ms", "5000")])
            #expect(plain.contains("\"path\": \"/echo\""), "\(plain)")
            #expect(!plain.contains("x-berth"), "Berth's own headers reached the app: \(plain)")
            let (_, deep) = try await mesh.get("/b/deep/echo")
            #expect(deep.contains("\"path\": \"/echo\""), "the longest prefix should win: \(deep)")
        }
    }
}
