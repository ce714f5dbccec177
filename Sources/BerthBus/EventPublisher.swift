import CoreMetrics

/// The publishing end of the event stream, on a bus thread: an XPUB connected to every router's events-in (a
/// comma-separated list), so that each router's subscribers see every event.
///
/// The router passes subscriptions upstream, so this socket hears which topic prefixes anyone wants, and an event
/// that nobody would receive is never encoded. Publishing never blocks: at the high-water mark an event is dropped
/// and counted in `berth_events_dropped_total`.
///
/// A process's first events (an app starting, its first requests) are published before any subscription can have
/// reached it: the connection to the router, and the router's subscriptions on it, take a moment. So for its first
/// `startupWindow` (10 s unless told), the publisher keeps what nobody has subscribed to yet, up to `backlogLimit` events, and sends
/// each when a subscription for its topic arrives. After that window, an event nobody wants is not even encoded.
public final class EventPublisher {
    public let socket: Socket
    /// Topic prefixes someone subscribes to; the empty prefix means everything.
    private var prefixes: Set<[UInt8]> = []
    /// The answer of `wants` per topic, until the subscriptions change: a process publishes on a few topics only.
    private var wanted: [String: Bool] = [:]
    private let droppedCounter = Counter(label: "berth_events_dropped_total")
    /// Events kept until a subscription for them arrives, oldest first; nil once the startup window is over.
    private var backlog: [(topic: String, payload: [UInt8])]? = []
    private let backlogUntil: ContinuousClock.Instant

    /// How long after start events nobody subscribes to yet are kept for the first subscriber: long enough for a
    /// subscriber that was waiting for the router to connect and its subscription to come through, short enough
    /// that one who comes later does not get a burst of old events.
    public static let defaultStartupWindow = Duration.seconds(10)
    /// At most this many events are kept; later ones are dropped and counted.
    public static let backlogLimit = 1_000
    /// Milliseconds the last events get to reach the router after the socket is closed, when the executable ends
    /// with `Context.terminate(waitingAtMost:)`: an app's STOPPING and EXITED are published as the sidecar stops.
    public static let linger: Int32 = 500

    public init(
        connectingTo endpoint: String, highWaterMark: Int32 = 10_000, startupWindow: Duration = defaultStartupWindow,
        security: BusSecurity? = nil
    ) throws(BusError) {
        var options = SocketOptions()
        options.curve = security?.toRouter
        options.sendHighWaterMark = highWaterMark
        options.linger = Self.linger
        socket = try Socket(.xpub, options: options)
        Authenticator.running()?.watch(socket)
        for one in endpoint.split(separator: ",") { try socket.connect(String(one)) }
        backlogUntil = .now + startupWindow
    }

    /// Whether anyone subscribes to a prefix of `topic`.
    public func wants(_ topic: String) -> Bool {
        if let known = wanted[topic] { return known }
        let bytes = Array(topic.utf8)
        let answer = prefixes.contains { bytes.starts(with: $0) }
        wanted[topic] = answer
        return answer
    }

    /// Publishes `payload()` on `topic`, calling it only when someone listens or the event is kept for later.
    public func publish(topic: String, _ payload: () -> [UInt8]) {
        if wants(topic) { return send(topic, payload()) }
        guard backlog != nil else { return }
        guard ContinuousClock.now < backlogUntil else {
            backlog = nil
            return
        }
        guard backlog!.count < Self.backlogLimit else { return droppedCounter.increment() }
        backlog!.append((topic, payload()))
    }

    /// A message the socket received: a subscription (1 + prefix) or an unsubscription (0 + prefix).
    public func received(_ frames: [Frame]) {
        guard frames.count == 1, let message = frames.first?.bytes, let kind = message.first, kind <= 1 else { return }
        let prefix = Array(message.dropFirst())
        if kind == 1 { prefixes.insert(prefix) } else { prefixes.remove(prefix) }
        wanted.removeAll(keepingCapacity: true)
        if kind == 1 { sendKept() }
    }

    /// Sends, in order, what was kept and is now wanted.
    private func sendKept() {
        guard let kept = backlog, !kept.isEmpty else { return }
        guard ContinuousClock.now < backlogUntil else {
            backlog = nil
            return
        }
        var left: [(topic: String, payload: [UInt8])] = []
        for event in kept {
            if wants(event.topic) { send(event.topic, event.payload) } else { left.append(event) }
        }
        backlog = left
    }

    private func send(_ topic: String, _ payload: [UInt8]) {
        do {
            if try socket.send([Frame(topic), Frame(payload)]) { return }
        } catch {}
        droppedCounter.increment()
    }
}
