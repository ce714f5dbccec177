import BerthBus
import BerthWire
import Logging

/// One event taken off the event stream, with the topic it was published under.
public struct TappedEvent: Sendable, Hashable {
    /// The topic frame, e.g. `traffic.ContainerA.a-0`.
    public var topic: String
    public var event: Event

    public init(topic: String, event: Event) {
        self.topic = topic
        self.event = event
    }
}

/// A message on the event stream that the tap could not use. The stream goes on after it.
public struct MalformedEvent: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The message did not have exactly two frames, [topic, Event].
        case wrongFrameCount(Int)
        /// The topic frame is not UTF-8.
        case invalidTopic
        /// The Event frame could not be decoded.
        case undecodable(WireError)
        /// libzmq refused the message (more frames than the bus accepts, say).
        case receiveFailed(BusError)
    }

    public var code: Code
    /// The topic, when there was one and it was readable.
    public var topic: String?
    /// Malformed messages seen so far by this subscription, this one included.
    public var count: Int

    public init(code: Code, topic: String?, count: Int) {
        self.code = code
        self.topic = topic
        self.count = count
    }

    public var description: String {
        let what = switch code {
        case .wrongFrameCount(let frames): "\(frames) frames instead of 2 (topic, Event)"
        case .invalidTopic: "a topic that is not UTF-8"
        case .undecodable(let error): "an Event that does not decode: \(error.message)"
        case .receiveFailed(let error): "a message libzmq refused: \(error)"
        }
        let topic = topic.map { " on topic \"\($0)\"" } ?? ""
        return "malformed event\(topic): \(what) (\(count) malformed so far)"
    }
}

/// What a subscription yields: an event, or a warning about messages it had to skip.
public enum TapItem: Sendable, Equatable {
    case event(TappedEvent)
    /// A message that was not a valid [topic, Event] pair; it was skipped.
    case malformed(MalformedEvent)
    /// The consumer fell behind and this many events were dropped since the last report.
    case dropped(Int)
}

/// Where and what a `TapSubscriber` listens to.
public struct TapConfiguration: Sendable {
    /// The routers' events-out endpoints (XPUB), comma-separated, e.g. `tcp://10.0.0.5:7703,tcp://10.0.0.6:7703`:
    /// every router of a mesh proxies every event, so following them all keeps the stream while any one lives, and
    /// the copies that come from the others are dropped (`DuplicateFilter`).
    public var endpoint: String
    /// ZeroMQ subscription prefixes; `[""]` is everything.
    public var topics: [String]
    /// Events held for a slow consumer before newer ones are dropped (and reported as `.dropped`).
    public var bufferLimit: Int
    /// The mesh's CURVE settings, when it has them: the subscriber proves its key to the router.
    public var security: BusSecurity?

    public init(endpoint: String = "tcp://127.0.0.1:7703", topics: [String] = [""], bufferLimit: Int = 10_000, security: BusSecurity? = nil) {
        self.endpoint = endpoint
        self.topics = topics.isEmpty ? [""] : topics
        self.bufferLimit = bufferLimit
        self.security = security
    }
}

/// Subscribes to the mesh's event stream: a SUB socket on its own bus thread, connected to every router's events-out.
///
/// ```swift
/// let tap = TapSubscriber(configuration: TapConfiguration(topics: ["traffic."]), logger: logger)
/// try await tap.withEvents { items in
///     for try await item in items { … }
/// }
/// ```
public struct TapSubscriber: Sendable {
    public let configuration: TapConfiguration
    private let logger: Logger

    public init(configuration: TapConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Connects, subscribes, and hands `body` the items as they arrive, in order.
    ///
    /// The socket's thread runs exactly as long as `body`: it stops when `body` returns or throws, and when the
    /// calling task is cancelled (the sequence then ends). A failure to set up the socket (a bad endpoint, say)
    /// is thrown by the sequence.
    public func withEvents<Result: Sendable>(
        _ body: (AsyncThrowingStream<TapItem, any Error>) async throws -> Result
    ) async throws -> Result {
        let (items, continuation) = AsyncThrowingStream.makeStream(
            of: TapItem.self,
            bufferingPolicy: .bufferingOldest(configuration.bufferLimit)
        )
        let configuration = configuration
        let logger = logger
        let loop = BusLoop(name: "berth-tap") {
            try TapLoopBody(configuration: configuration, logger: logger, output: continuation)
        }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await loop.run()
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            defer { loop.stop() }
            return try await body(items)
        }
    }
}

/// The tap's side of the bus thread: the SUB socket and the counters that go with it.
final class TapLoopBody: BusLoopBody {
    private let subscriber: Socket
    private let output: AsyncThrowingStream<TapItem, any Error>.Continuation
    private let logger: Logger
    private var malformed = 0
    private var dropped = 0
    /// With more than one router, each event comes once per router: the later copies are dropped.
    private var duplicates: DuplicateFilter?
    let sockets: [Socket]

    init(configuration: TapConfiguration, logger: Logger, output: AsyncThrowingStream<TapItem, any Error>.Continuation) throws(BusError) {
        var options = SocketOptions()
        options.subscriptions = configuration.topics.isEmpty ? [""] : configuration.topics
        // Retried every 100 ms, not backing off to a second: a tap started before the mesh is connected, and its
        // subscription with every publisher, moments after the router binds, before the first apps start.
        options.reconnectIntervalMax = options.reconnectInterval
        options.curve = configuration.security?.toRouter
        subscriber = try Socket(.sub, options: options)
        Authenticator.running()?.watch(subscriber)
        let endpoints = configuration.endpoint.split(separator: ",").map { String($0) }
        for endpoint in endpoints { try subscriber.connect(endpoint) }
        duplicates = endpoints.count > 1 ? DuplicateFilter() : nil
        sockets = [subscriber]
        self.output = output
        self.logger = logger
        logger.debug("tap connected", metadata: ["berth.endpoint": "\(configuration.endpoint)", "berth.topics": "\(configuration.topics)"])
    }

    func received(_ frames: [Frame], on index: Int) {
        let topic = frames.first.flatMap { frame in frame.withUnsafeBytes { String(validating: $0, as: UTF8.self) } }
        guard frames.count == 2 else {
            return reject(.wrongFrameCount(frames.count), topic: topic)
        }
        guard let topic else {
            return reject(.invalidTopic, topic: nil)
        }
        if duplicates != nil {
            let new = frames[0].withUnsafeBytes { topic in frames[1].withUnsafeBytes { duplicates!.isNew(topic: topic, payload: $0) } }
            guard new else { return }
        }
        let event: Event
        do {
            event = try frames[1].withUnsafeBytes { bytes throws(WireError) in try Event(decoding: bytes) }
        } catch {
            return reject(.undecodable(error), topic: topic)
        }
        emit(.event(TappedEvent(topic: topic, event: event)))
    }

    func receiveFailed(_ error: BusError, on index: Int) {
        reject(.receiveFailed(error), topic: nil)
    }

    private func reject(_ code: MalformedEvent.Code, topic: String?) {
        malformed += 1
        let warning = MalformedEvent(code: code, topic: topic, count: malformed)
        logger.debug("malformed event", metadata: ["berth.error": "\(warning)"])
        emit(.malformed(warning))
    }

    /// Hands an item to the consumer; while it cannot keep up, items are counted and reported when it can.
    private func emit(_ item: TapItem) {
        if dropped > 0 {
            guard case .enqueued = output.yield(.dropped(dropped)) else {
                dropped += 1
                return
            }
            dropped = 0
        }
        if case .dropped = output.yield(item) { dropped += 1 }
    }
}
