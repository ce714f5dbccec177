import BerthBus
import BerthTap
import BerthWire

/// A real XPUB socket on its own bus thread, standing in for the router's events-out.
///
/// XPUB hands up the subscriptions its peers send, so a test waits for the subscriber's subscriptions to arrive
/// (the cure for ZeroMQ's slow joiner) instead of sleeping: anything published after that reaches the subscriber.
public final class TestPublisher: BusLoopBody {
    private let socket: Socket
    public let sockets: [Socket]
    private var subscriptions: Set<String> = []
    private var waiting: [(topics: Set<String>, continuation: CheckedContinuation<Void, Never>)] = []

    init() throws(BusError) {
        var options = SocketOptions()
        // The tests publish bursts; none may be lost before it reaches the subscriber.
        options.sendHighWaterMark = 100_000
        socket = try Socket(.xpub, options: options)
        try socket.bind("tcp://127.0.0.1:*")
        sockets = [socket]
    }

    var endpoint: String { socket.lastEndpoint }

    public func received(_ frames: [Frame], on index: Int) {
        // A subscription message: one byte, 1 to subscribe or 0 to unsubscribe, then the prefix.
        guard let bytes = frames.first?.bytes, let action = bytes.first else { return }
        let topic = String(decoding: bytes.dropFirst(), as: UTF8.self)
        if action == 1 { subscriptions.insert(topic) } else { subscriptions.remove(topic) }
        resumeWaiting()
    }

    func wait(for topics: Set<String>, _ continuation: CheckedContinuation<Void, Never>) {
        waiting.append((topics, continuation))
        resumeWaiting()
    }

    /// Sends without waiting; a message the socket will not take is lost, and the test that needed it fails.
    func send(_ frames: [Frame]) {
        _ = try? socket.send(frames)
    }

    private func resumeWaiting() {
        waiting.removeAll { entry in
            guard entry.topics.isSubset(of: subscriptions) else { return false }
            entry.continuation.resume()
            return true
        }
    }
}

/// The test's handle on a `TestPublisher` running on its bus thread.
public struct Publisher: Sendable {
    let loop: BusLoop<TestPublisher>

    /// Runs a publisher for the duration of `body`.
    public static func with<Result: Sendable>(_ body: (Publisher) async throws -> Result) async throws -> Result {
        let loop = BusLoop(name: "test-publisher") { try TestPublisher() }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await loop.run() }
            defer { loop.stop() }
            return try await body(Publisher(loop: loop))
        }
    }

    /// The endpoint it bound, with the port the OS picked.
    public func endpoint() async -> String {
        await withCheckedContinuation { continuation in
            loop.execute { continuation.resume(returning: $0.endpoint) }
        }
    }

    /// Returns once subscriptions to all of `topics` have arrived.
    public func waitForSubscriptions(_ topics: Set<String> = [""]) async {
        await withCheckedContinuation { continuation in
            loop.execute { $0.wait(for: topics, continuation) }
        }
    }

    /// Sends raw frames, malformed ones included.
    public func send(_ frames: [Frame]) {
        loop.execute { $0.send(frames) }
    }

    public func publish(_ tapped: TappedEvent) {
        send([Frame(tapped.topic), Frame(tapped.event.encoded())])
    }

    public func publish(_ events: [TappedEvent]) {
        for event in events { publish(event) }
    }
}
