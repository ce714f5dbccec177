import AsyncHTTPClient
import BerthTap
import BerthWire
import Foundation
import NIOHTTP1
import Testing

/// WebSockets (RFC 6455) through edge → sidecar → app, by a declarative route or passed on by a Worker's task, with
/// Python's `websockets` on both ends: messages both ways, a 16 MiB one, ping and pong, close codes from either side,
/// and 1011 when the instance dies.
@Suite(.serialized)
struct WebSocketTests {
    /// A WebSocket goes by a declarative route, or through a Worker's task that passes it on (`streaming-edge`).
    enum Via: String, CaseIterable, Sendable {
        case route, worker
    }

    /// An edge sending `/w/` to the echo app, by a route or through a Worker.
    static func startEdge(_ mesh: TestMesh, via: Via) throws {
        try mesh.startEdge(routes: ["/w/=Sockets"], executable: via == .route ? "berth-edge" : "streaming-edge")
    }

    /// A router, one instance of the echo app, and an edge sending `/w/` to it.
    static func start(_ mesh: TestMesh, via: Via = .route) async throws {
        try mesh.startRouter()
        try mesh.addInstance(className: "Sockets", id: "w-0", script: Paths.webSocketApp)
        try startEdge(mesh, via: via)
        guard try await mesh.waitUntil("/w/", accept: { response, _ in response.status.code == 200 }) else { throw MeshNotUp(logs: mesh.logs) }
    }

    /// Starts `ws_client.py` on `scenario` against the edge.
    static func client(_ mesh: TestMesh, _ scenario: String) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Paths.webSocketClient.path, "ws://127.0.0.1:\(mesh.edgePort)/w/echo", scenario]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return (process, output)
    }

    /// What the client printed last, as JSON.
    static func outcome(_ process: Process, _ output: Pipe) throws -> [String: Any] {
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let last = text.split(separator: "\n").last.map(String.init) ?? ""
        let json = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        return try #require(json, "the client said: \(text)")
    }

    @Test(arguments: Via.allCases) func messagesBigMessagesPingAndAClientCloseGoThrough(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            let (process, output) = try Self.client(mesh, "echo")
            let seen = try Self.outcome(process, output)
            #expect(seen["text"] as? String == "hello, mesh")
            #expect(seen["binary"] as? [Int] == [0, 1, 2, 255])
            #expect(seen["big"] as? [Int] == [16 << 20, 1], "a 16 MiB message comes back whole (its length, and 1: the same bytes)")
            #expect(seen["pong"] as? Bool == true)
            #expect(seen["close"] as? [AnyHashable] == [1000, "done"])
        }
    }

    @Test(arguments: Via.allCases) func theAppsCloseCodeReachesTheClient(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            let (process, output) = try Self.client(mesh, "server-close")
            #expect(try Self.outcome(process, output)["close"] as? [AnyHashable] == [4000, "bye"])
        }
    }

    /// Holds a WebSocket open until it is echoed once, then runs `kill`; returns the close code the client heard.
    static func closeCode(_ mesh: TestMesh, after kill: () -> Void) throws -> [AnyHashable]? {
        let (process, output) = try Self.client(mesh, "wait-close")
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("open") {
            let more = output.fileHandleForReading.availableData
            if more.isEmpty { break }
            seen.append(more)
        }
        kill()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let last = text.split(separator: "\n").last.map(String.init) ?? ""
        let json = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        return json?["close"] as? [AnyHashable]
    }

    @Test(arguments: Via.allCases) func aSidecarThatDiesClosesTheSocketWith1011(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            let code = try Self.closeCode(mesh) { mesh.instances[0].sidecar!.stop() }
            #expect(code?.first == 1011 as AnyHashable, "\(String(describing: code))")
        }
    }

    @Test(arguments: Via.allCases) func anAppThatDiesClosesTheSocketWith1011(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            let code = try Self.closeCode(mesh) { mesh.instances[0].app!.stop() }
            #expect(code?.first == 1011 as AnyHashable, "\(String(describing: code))")
        }
    }

    /// `sleep_after` counts from a WebSocket's last message: messages every second keep a 2 s timer from running out,
    /// and once they stop the app sleeps, which closes the socket with 1011.
    @Test(arguments: Via.allCases) func messagesRenewTheSleepAfterTimer(via: Via) async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "Sockets", id: "w-0", owned: true, script: Paths.webSocketApp, sidecarArguments: ["--sleep-after", "2s"])
            try Self.startEdge(mesh, via: via)
            guard try await mesh.waitUntil("/w/", accept: { response, _ in response.status.code == 200 }) else { throw MeshNotUp(logs: mesh.logs) }
            let (process, output) = try Self.client(mesh, "idle-after-chat")
            let seen = try Self.outcome(process, output)
            #expect(seen["echoed"] as? Int == 4, "the app stayed up while messages came: \(seen)")
            #expect((seen["close"] as? [AnyHashable])?.first == 1011 as AnyHashable, "\(seen)")
        }
    }

    /// A WebSocket gets one traffic event at its close, with its messages each way.
    @Test(arguments: Via.allCases) func aWebSocketGetsOneEventWithItsMessages(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            let event: TrafficEvent = try await EventStreamTests.withSubscription(mesh, topics: ["traffic.edge"]) { items in
                // Subscriptions reach the publishers through the router: sockets open and close until events come.
                let sockets = Task {
                    while !Task.isCancelled {
                        // Not `outcome`: the last client may be cut off when the mesh stops, and that is no failure.
                        let (process, output) = try Self.client(mesh, "server-close")
                        _ = output.fileHandleForReading.readDataToEndOfFile()
                        process.waitUntilExit()
                    }
                }
                defer { sockets.cancel() }
                for try await item in items {
                    // Through a Worker, the socket's exchange with the sidecar has the messages; the client's request to the
                    // Worker is the span above it.
                    guard case .event(let tapped) = item, case .traffic(let event) = tapped.event, event.status == 101,
                          event.source.className != EventNames.clientClass else { continue }
                    return event
                }
                throw CancellationError()
            }
            #expect(event.streamed && !event.inProgress)
            #expect(event.messagesIn == 1 && event.messagesOut == 0, "\(event)")
            #expect(event.bytesIn > 0 && event.bytesOut > 0)
        }
    }
}
