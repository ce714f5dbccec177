import AsyncHTTPClient
import Foundation
import Glibc
import NIOHTTP1
import Testing

/// Strangers on the bus written in Python from Proto/berth.proto alone (`Apps/python_peer.py`, pyzmq and classes
/// `protoc --python_out` made): an edge that reads the router's directory and sends a sidecar a request itself, and
/// a sidecar that registers with the router and answers the real edge's requests. What a stranger gets wrong is
/// answered with what was wrong.
@Suite(.serialized)
struct PythonPeerTests {
    static func peer(_ generated: URL, _ arguments: [String], name: String) throws -> ChildProcess {
        try ChildProcess(name: name, executable: PythonSubscriberTests.python, arguments: [
            Paths.packageRoot.appendingPathComponent("Tests/BerthIntegrationTests/Apps/python_peer.py").path, generated.path,
        ] + arguments)
    }

    @Test func aPythonEdgeFindsAnInstanceAndSendsItARequest() async throws {
        let generated = try await PythonSubscriberTests.generatePython()
        defer { try? FileManager.default.removeItem(at: generated) }
        try await withMesh { mesh in
            try await mesh.startOneInstance()
            let edge = try Self.peer(generated, ["edge", mesh.frontend, "ContainerA", "/echo", "hello from python"], name: "python-edge")
            #expect(await edge.waitForExit(timeout: .seconds(30)) == 0, "\(edge.output)")
            let lines = PythonSubscriberTests.lines(edge.output)
            let answer = try #require(lines.first { $0["status"] != nil }, "\(edge.output)")
            #expect(answer["status"] as? Int == 200 && answer["served_by"] as? String == "a-0", "\(answer)")
            let body = try #require(answer["body"] as? String)
            #expect(body.contains("\"method\": \"POST\"") && body.contains("\"bodyLength\": 17") && body.contains("x-from"), "\(body)")
            let refused = try #require(lines.first { $0["refused"] != nil }?["refused"] as? String, "\(edge.output)")
            #expect(refused.contains("could not read your message") || refused.contains("target"), "\(refused)")
        }
    }

    @Test func aPythonSidecarRegistersAndServesTheEdge() async throws {
        let generated = try await PythonSubscriberTests.generatePython()
        defer { try? FileManager.default.removeItem(at: generated) }
        try await withMesh { mesh in
            try mesh.startRouter()
            let sidecar = try Self.peer(generated, ["sidecar", mesh.backend, "Py", "py-0"], name: "python-sidecar")
            defer { sidecar.stop() }
            try mesh.startEdge(routes: ["/py/=Py"])
            let served = try await mesh.waitUntil("/py/hello", accept: { response, body in response.status == .ok && body.contains("py-0") })
            #expect(served, "\(sidecar.output)\n\(mesh.logs)")
            let (_, body) = try await mesh.get("/py/some/path?q=1")
            #expect(body.contains("\"path\": \"/some/path\"") && body.contains("\"method\": \"GET\""), "\(body)")
            // Leaving: its DISCONNECT takes it out of the directory, and the edge says so rather than hang.
            sidecar.signal(SIGTERM)
            let gone = try await mesh.waitUntil("/py/hello", accept: { response, _ in response.status.code >= 500 })
            #expect(gone, "\(mesh.logs)")
        }
    }

    /// A sidecar of another protocol version is told why it is refused, in a Disconnect, not left to time out.
    @Test func aSidecarOfAnotherProtocolVersionIsToldWhy() async throws {
        let generated = try await PythonSubscriberTests.generatePython()
        defer { try? FileManager.default.removeItem(at: generated) }
        try await withMesh { mesh in
            try mesh.startRouter()
            let old = try Self.peer(generated, ["old-sidecar", mesh.backend, "Py", "py-old"], name: "python-old-sidecar")
            #expect(await old.waitForExit(timeout: .seconds(20)) == 0, "\(old.output)")
            let answer = try #require(PythonSubscriberTests.lines(old.output).first, "\(old.output)")
            #expect(answer["answer"] as? String == "disconnect", "\(answer)")
            #expect((answer["reason"] as? String)?.contains("protocol_version 1 is not supported") == true, "\(answer)")
        }
    }
}
