import Foundation
import Testing
import BerthBus
import BerthWire

/// The test plays the router: a real ROUTER socket that a real sidecar registers with, driven message by message.
final class FakeRouter {
    let endpoint: String
    private let socket: Socket

    init() throws {
        endpoint = "tcp://127.0.0.1:\(freePort())"
        var options = SocketOptions()
        options.routerMandatory = true
        socket = try Socket(.router, options: options)
        try socket.bind(endpoint)
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
        let frames = try await receive(timeout: timeout) { frames in Self.envelope(frames).map(accept) ?? false }
        return frames.flatMap { frames in Self.envelope(frames).map { ($0, frames) } }
    }

    /// The identity of the sidecar that sends READY.
    func waitForReady(timeout: Duration = .seconds(5)) async throws -> [UInt8]? {
        try await receive(timeout: timeout) { if case .ready = $0 { true } else { false } }?.1[0].bytes
    }

    func send(_ frames: [Frame], to identity: [UInt8]) throws {
        _ = try socket.send([Frame(identity)] + frames)
    }

    func send(_ envelope: Envelope, body: [Frame] = [], to identity: [UInt8]) throws {
        try send([Frame(envelope.encoded())] + body, to: identity)
    }

    static func envelope(_ frames: [Frame]) -> Envelope? {
        frames.count >= 2 ? try? frames[1].withUnsafeBytes { try Envelope(decoding: $0) } : nil
    }
}

/// Runs `body` with an echo app, a real sidecar for it, and a fake router the sidecar has registered with.
func withLoneSidecar(
    heartbeat: String, arguments: [String] = [], _ body: (_ router: FakeRouter, _ sidecar: ChildProcess, _ identity: [UInt8]) async throws -> Void
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
    let identity = try #require(try await router.waitForReady(), "the sidecar never sent READY:\n\(sidecar.output)")
    try await body(router, sidecar, identity)
}
