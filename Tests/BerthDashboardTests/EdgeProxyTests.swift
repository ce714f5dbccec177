import BerthDashboard
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import BerthTestSupport
import Testing

@Suite(.timeLimit(.minutes(1)))
struct EdgeProxyTests {
    @Test func sendIsForwardedToTheEdge() async throws {
        try await withEdge { edgePort in
            try await Publisher.with { publisher in
                try await withDashboard(eventsOut: await publisher.endpoint(), configure: { $0.edge = "http://127.0.0.1:\(edgePort)" }) { port in
                    let sent = try await request(port, "/send?path=/send", method: .POST)
                    #expect(sent.status == 200)
                    #expect(sent.body == "GET /send")
                    #expect(sent.headers["x-berth-path"] == "ContainerA/a-0:8080 -> ContainerB/b-1:3000")

                    let other = try await request(port, "/send?path=%2Fa%2Fget-payload%3Fn%3D1", method: .POST)
                    #expect(other.body == "GET /a/get-payload?n=1")

                    let failed = try await request(port, "/send?path=/fail", method: .POST)
                    #expect(failed.status == 503)
                    #expect(failed.headers["x-berth-error"] == "no-instance")
                }
            }
        }
    }

    @Test func onlyPathsOnTheEdgeAreFetched() async throws {
        try await Publisher.with { publisher in
            try await withDashboard(eventsOut: await publisher.endpoint(), configure: { $0.edge = "http://127.0.0.1:1" }) { port in
                #expect(try await request(port, "/send?path=//elsewhere.example/", method: .POST).status == 400)
                #expect(try await request(port, "/send?path=elsewhere", method: .POST).status == 400)
                // Nothing listens on port 1.
                let unreachable = try await request(port, "/send", method: .POST)
                #expect(unreachable.status == 502)
                #expect(unreachable.body.contains("could not fetch http://127.0.0.1:1/send"))
            }
        }
    }

    /// A stand-in edge on a free port that answers with the method and target it was asked for.
    private func withEdge(_ body: (Int) async throws -> Void) async throws {
        let router = Router()
        router.get("/fail") { _, _ in
            Response(status: .serviceUnavailable, headers: [HTTPField.Name("x-berth-error")!: "no-instance"], body: .init(byteBuffer: ByteBuffer(string: "no instance")))
        }
        router.get("**") { request, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain", HTTPField.Name("x-berth-path")!: "ContainerA/a-0:8080 -> ContainerB/b-1:3000"],
                body: .init(byteBuffer: ByteBuffer(string: "\(request.method) \(request.uri)"))
            )
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: testLogger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            defer { group.cancelAll() }
            var iterator = ports.makeAsyncIterator()
            try await body(try #require(await iterator.next()))
        }
    }
}
