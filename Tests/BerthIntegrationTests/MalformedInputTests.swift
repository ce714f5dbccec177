import AsyncHTTPClient
import BerthBus
import BerthWire
import Foundation
import NIOHTTP1
import Testing

/// Garbage sent straight to the router's and a sidecar's sockets is rejected and logged; the process keeps serving.
@Suite(.serialized)
struct MalformedInputTests {
    static let garbage: [[Frame]] = [
        [Frame([0xff, 0xfe, 0x00, 0x13, 0x37])],
        [Frame(Array(Envelope.request(Request(id: 1, target: Target(className: "ContainerA"), method: "GET", path: "/")).encoded().prefix(7)))],
        [Frame([])],
        [Frame(Envelope.heartbeat(Heartbeat()).encoded()), Frame([1, 2, 3])],
        [Frame(Envelope.request(Request(id: 2, target: Target(className: ""), method: "GET", path: "/")).encoded())],
        [Frame(Envelope.request(Request(id: 3, target: Target(className: "A"), method: "GET", path: "no-slash")).encoded())],
        [Frame(Envelope.response(Response(id: 99, status: 200)).encoded())],
        [Frame(Envelope.ready(Ready(className: "A", instanceID: "x", ports: [1], capacity: 0, heartbeatMilliseconds: 1, endpoint: "tcp://127.0.0.1:1")).encoded())],
        (0..<50).map { _ in Frame((0..<64).map { _ in UInt8.random(in: 0...255) }) },
    ]

    @Test func theRouterRejectsMalformedFramesOnBothSidesAndKeepsServing() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok })

            for endpoint in [mesh.frontend, mesh.backend] {
                let attacker = try Socket(.dealer)
                try attacker.connect(endpoint)
                for message in Self.garbage { _ = try attacker.send(message) }
                for _ in 0..<200 { _ = try attacker.send([Frame((0..<Int.random(in: 1...300)).map { _ in UInt8.random(in: 0...255) })]) }
            }
            // Each side is still served after the garbage: the mesh answers, and the router said what it rejected.
            for _ in 0..<20 {
                let (response, body) = try await mesh.get("/a/instance")
                #expect(response.status == .ok, "\(body)")
            }
            #expect(mesh.router?.isRunning == true)
            let log = mesh.router?.output ?? ""
            #expect(log.contains("rejected malformed envelope"), "the router should log what it rejected:\n\(log.suffix(2_000))")
            #expect(log.contains("malformed Envelope") || log.contains("has no kind"), "\(log.suffix(2_000))")
        }
    }

    /// The test plays the router: a real ROUTER socket that a real sidecar registers with.
    @Test func aSidecarRejectsMalformedFramesAndKeepsServing() async throws {
        try await withLoneSidecar(heartbeat: "300ms") { edge, sidecar, identity in
            for message in Self.garbage {
                try edge.send(message, to: identity)
            }
            let request = Request(id: 42, target: Target(className: "ContainerA"), method: "POST", path: "/echo", query: "x=1",
                                  headers: [Header("content-type", "text/plain")], timeoutMilliseconds: 5_000)
            try edge.send(.request(request), body: [Frame("hello")], to: identity)
            let answer = try await edge.receive { if case .response(let response) = $0, response.id == 42 { true } else { false } }
            let (envelope, frames) = try #require(answer, "the sidecar stopped serving after garbage:\n\(sidecar.output)")
            guard case .response(let response) = envelope else { Issue.record("not a response"); return }
            #expect(response.status == 200)
            let body = String(decoding: frames.dropFirst(2).flatMap(\.bytes), as: UTF8.self)
            #expect(body.contains("\"bodyLength\": 5"), "\(body)")
            #expect(sidecar.isRunning)
            #expect(sidecar.output.contains("rejected malformed envelope"), "\(sidecar.output.suffix(2_000))")
        }
    }

    /// A header or target on the bus that would read as two requests to the app (a CR LF in a value, a space in the
    /// path) is refused with a 400 that says why; the app never sees it.
    @Test func aSidecarRefusesARequestThatWouldReadAsTwo() async throws {
        try await withLoneSidecar(heartbeat: "300ms") { edge, sidecar, identity in
            let smuggling = [
                Request(id: 1, target: Target(className: "ContainerA"), method: "GET", path: "/echo",
                        headers: [Header("x-a", "1\r\nContent-Length: 40")], timeoutMilliseconds: 5_000),
                Request(id: 2, target: Target(className: "ContainerA"), method: "GET", path: "/echo HTTP/1.1\r\nX-B: 2", timeoutMilliseconds: 5_000),
            ]
            for request in smuggling {
                try edge.send(.request(request), body: [], to: identity)
                let answer = try await edge.receive { if case .response(let response) = $0, response.id == request.id { true } else { false } }
                guard case .response(let response)? = answer?.0 else {
                    Issue.record("no answer to request \(request.id):\n\(sidecar.output)")
                    continue
                }
                #expect(response.error?.code == .badRequest, "\(response)")
                #expect(response.error?.message.contains("CR") == true || response.error?.message.contains("space") == true, "\(response)")
            }
            let fine = Request(id: 3, target: Target(className: "ContainerA"), method: "GET", path: "/echo", timeoutMilliseconds: 5_000)
            try edge.send(.request(fine), body: [], to: identity)
            let answer = try await edge.receive { if case .response(let response) = $0, response.id == 3 { true } else { false } }
            guard case .response(let response)? = answer?.0 else {
                Issue.record("no answer:\n\(sidecar.output)")
                return
            }
            #expect(response.status == 200)
        }
    }
}
