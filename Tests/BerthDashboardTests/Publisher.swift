import BerthBus
import BerthTap
import BerthWire

/// A real XPUB socket on its own bus thread, standing in for the router's events-out (as in BerthTapTests).
///
/// XPUB hands up the subscriptions its peers send, so a test waits for the dashboard's subscription to arrive
/// instead of sleeping: anything published after that reaches it.
final class TestPublisher: BusLoopBody {
    private let socket: Socket
    let sockets: [Socket]
    private var subscriptions: Set<String> = []
    private var waiting: [(topics: Set<String>, continuation: CheckedContinuation<Void, Never>)] = []

    init() throws(BusError) {
        var options = SocketOptions()
        // The tests publish bursts; none may be lost before it reaches the dashboard's SUB socket.
        options.sendHighWaterMark = 100_000
        socket = try Socket(.xpub, options: options)
        try socket.bind("tcp://127.0.0.1:*")
        sockets = [socket]
    }

    var endpoint: String { socket.lastEndpoint }

    func received(_ frames: [Frame], on index: Int) {
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

    func send(_ frames: [Frame]) {
        do {
            guard try socket.send(frames) else { fatalError("the test publisher's queue is full") }
        } catch {
            fatalError("the test publisher cannot send: \(error)")
        }
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
struct Publisher: Sendable {
    let loop: BusLoop<TestPublisher>

    /// Runs a publisher for the duration of `body`.
    static func with<Result: Sendable>(_ body: (Publisher) async throws -> Result) async throws -> Result {
        let loop = BusLoop(name: "test-publisher") { try TestPublisher() }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await loop.run() }
            defer { loop.stop() }
            return try await body(Publisher(loop: loop))
        }
    }

    /// The endpoint it bound, with the port the OS picked.
    func endpoint() async -> String {
        await withCheckedContinuation { continuation in
            loop.execute { continuation.resume(returning: $0.endpoint) }
        }
    }

    /// Returns once subscriptions to all of `topics` have arrived.
    func waitForSubscriptions(_ topics: Set<String> = [""]) async {
        await withCheckedContinuation { continuation in
            loop.execute { $0.wait(for: topics, continuation) }
        }
    }

    func publish(_ tapped: TappedEvent) {
        loop.execute { $0.send([Frame(tapped.topic), Frame(tapped.event.encoded())]) }
    }

    func publish(_ events: [TappedEvent]) {
        for event in events { publish(event) }
    }
}
