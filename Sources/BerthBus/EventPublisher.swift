import CoreMetrics

/// The publishing end of the event stream, on a bus thread: an XPUB connected to every router's events-in (a
/// comma-separated list), so that each router's subscribers see every event.
///
/// The router passes its subscribers' subscriptions upstream, so this socket hears which topic prefixes anyone
/// wants, and an event that nobody would receive is never encoded. Publishing never blocks: at the high-water mark
/// an event is dropped and counted in `berth_events_dropped_total`.
public final class EventPublisher {
    public let socket: Socket
    /// Topic prefixes someone subscribes to; the empty prefix means everything.
    private var prefixes: Set<[UInt8]> = []
    /// The answer of `wants` per topic, until the subscriptions change: a process publishes on a few topics only.
    private var wanted: [String: Bool] = [:]
    private let droppedCounter = Counter(label: "berth_events_dropped_total")

    public init(connectingTo endpoint: String, highWaterMark: Int32 = 10_000) throws(BusError) {
        var options = SocketOptions()
        options.sendHighWaterMark = highWaterMark
        socket = try Socket(.xpub, options: options)
        for one in endpoint.split(separator: ",") { try socket.connect(String(one)) }
    }

    /// Whether anyone subscribes to a prefix of `topic`.
    public func wants(_ topic: String) -> Bool {
        if let known = wanted[topic] { return known }
        let bytes = Array(topic.utf8)
        let answer = prefixes.contains { bytes.starts(with: $0) }
        wanted[topic] = answer
        return answer
    }

    /// Publishes `payload()` on `topic`, calling it only when someone listens.
    public func publish(topic: String, _ payload: () -> [UInt8]) {
        guard wants(topic) else { return }
        do {
            if try socket.send([Frame(topic), Frame(payload())]) { return }
        } catch {}
        droppedCounter.increment()
    }

    /// A message the socket received: a subscription (1 + prefix) or an unsubscription (0 + prefix).
    public func received(_ frames: [Frame]) {
        guard frames.count == 1, let message = frames.first?.bytes, let kind = message.first, kind <= 1 else { return }
        let prefix = Array(message.dropFirst())
        if kind == 1 { prefixes.insert(prefix) } else { prefixes.remove(prefix) }
        wanted.removeAll(keepingCapacity: true)
    }
}
