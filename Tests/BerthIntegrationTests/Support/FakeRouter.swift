import Foundation
import Testing
import BerthBus
import BerthWire

/// A real ROUTER socket the test drives message by message, playing a router or an edge.
class ScriptedPeer {
    let socket: Socket

    init() throws {
        var options = SocketOptions()
        options.routerMandatory = true
        socket = try Socket(.router, options: options)
    }

    /// The first message `accept` takes within `timeout`; the others are dropped.
    func receive(timeout: Duration = .seconds(5), until accept: ([Frame]) -> Bool) async throws -> [Frame]? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let frames = try socket.receive() {
                if accept(frames) { return frames }
            } else {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        return nil
    }

    /// The first envelope `accept` takes within `timeout`, with its frames (identity, envelope, body...).
    func receive(timeout: Duration = .seconds(5), until accept: @escaping (Envelope) -> Bool) async throws -> (Envelope, [Frame])? {
        let frames = try await receive(timeout: timeout) { frames in FakeRouter.envelope(frames).map(accept) ?? false }
        return frames.flatMap { frames in FakeRouter.envelope(frames).map { ($0, frames) } }
    }

    func send(_ frames: [Frame], to identity: [UInt8]) throws {
        _ = try socket.send([Frame(identity)] + frames)
    }

    func send(_ envelope: Envelope, body: [Frame] = [], to identity: [UInt8]) throws {
        try send([Frame(envelope.encoded())] + body, to: identity)
    }
}

/// The test plays the router: a real sidecar registers with it, a real edge follows it.
final class FakeRouter: ScriptedPeer {
    let endpoint: String

    override init() throws {
        endpoint = "tcp://127.0.0.1:\(freePort())"
        try super.init()
        try socket.bind(endpoint)
    }

    /// The identity of the sidecar that sends READY.
    func waitForReady(timeout: Duration = .seconds(5)) async throws -> [UInt8]? {
        try await waitForReadyMessage(timeout: timeout)?.identity
    }

    /// The identity and READY of the sidecar that registers.
    func waitForReadyMessage(timeout: Duration = .seconds(5)) async throws -> (identity: [UInt8], ready: Ready)? {
        guard let (envelope, frames) = try await receive(timeout: timeout, until: { if case .ready = $0 { true } else { false } }),
              case .ready(let ready) = envelope
        else { return nil }
        return (frames[0].bytes, ready)
    }

    static func envelope(_ frames: [Frame]) -> Envelope? {
        frames.count >= 2 ? try? frames[1].withUnsafeBytes { try Envelope(decoding: $0) } : nil
    }
}

/// The test plays an edge: a real ROUTER socket linked to a real sidecar's endpoint, as an edge links to each
/// sidecar it sends requests to, driven message by message. The sidecar is `sidecarID` on it.
final class FakeEdge: ScriptedPeer {
    let sidecarID: [UInt8] = Array("S".utf8)

    /// Links to the sidecar that registers with `router`, and waits until it answers a heartbeat.
    static func linked(to router: FakeRouter, timeout: Duration = .seconds(5)) async throws -> FakeEdge? {
        guard let (_, ready) = try await router.waitForReadyMessage(timeout: timeout) else { return nil }
        let edge = try FakeEdge(endpoint: ready.endpoint)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            _ = try? edge.socket.send([Frame(edge.sidecarID), Frame(Envelope.heartbeat(Heartbeat()).encoded())])
            if try await edge.receive(timeout: .milliseconds(100), until: { if case .heartbeat = $0 { true } else { false } }) != nil {
                return edge
            }
        }
        return nil
    }

    init(endpoint: String) throws {
        try super.init()
        try socket.connect(endpoint, routingID: sidecarID)
    }
}

/// Runs `body` with an echo app, a real sidecar for it registered with a fake router, and a fake edge linked to it.
func withLoneSidecar(
    heartbeat: String, arguments: [String] = [], _ body: (_ edge: FakeEdge, _ sidecar: ChildProcess, _ identity: [UInt8]) async throws -> Void
) async throws {
    let appPort = freePort()
    let app = try ChildProcess(name: "app", executable: URL(fileURLWithPath: "/usr/bin/env"),
                               arguments: ["python3", Paths.echoApp.path, String(appPort)])
    defer { app.stop() }
    try awaitPort(appPort)
    let router = try FakeRouter()
    let sidecar = try ChildProcess(name: "sidecar", executable: Paths.executable("berth-sidecar"), arguments: [
        "--router", router.endpoint, "--events", "tcp://127.0.0.1:\(freePort())", "--class", "ContainerA", "--instance", "a-0",
        "--port", String(appPort), "--heartbeat", heartbeat, "--log-level", "debug",
    ] + arguments)
    defer { sidecar.stop() }
    let edge = try #require(try await FakeEdge.linked(to: router), "the sidecar never registered and answered on its link:\n\(sidecar.output)")
    try await body(edge, sidecar, edge.sidecarID)
}
