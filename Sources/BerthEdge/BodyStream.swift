import BerthBus
import BerthWire
import DequeModule
import NIOCore
import Synchronization

/// Why a body that streams could not be read.
public struct BodyError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// `collect(upTo:)` met more bytes than it was allowed.
        case tooLarge
        /// A body that streams is read once; this one was read already.
        case readTwice
        /// The body was cut where it came from: the instance was lost, the client went away, the sender broke the
        /// stream's rules. It is not whole.
        case cut
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// The pieces of one body that streams, read once: a Worker's own async sequence, or what comes in from the mesh or a
/// client (`BodyFeed`). Whoever holds the last reference to a feed's stream and has not read it to its end gives it
/// up: its sender is told to stop.
final class BodyStream: Sendable {
    private enum Source: Sendable {
        /// Makes the reader of a Worker's sequence, once.
        case sequence(@Sendable () -> any PieceReader)
        case feed(BodyFeed)
    }

    private let source: Source
    /// The length the body is known to have, if it says one.
    let length: Int?
    private let taken = Atomic<Bool>(false)
    /// Bytes handed out so far.
    private let transferred = Atomic<Int>(0)

    init<Pieces: AsyncSequence & Sendable>(_ pieces: Pieces, length: Int?) where Pieces.Element == ByteBuffer {
        source = .sequence { SequenceReader(pieces.makeAsyncIterator()) }
        self.length = length
    }

    init(feed: BodyFeed, length: Int?) {
        source = .feed(feed)
        self.length = length
    }

    deinit {
        if case .feed(let feed) = source { feed.readerGone() }
    }

    var bytesTransferred: Int { transferred.load(ordering: .relaxed) }

    /// The one reader of this stream; the second to ask gets an error on its first read.
    func reader() -> Reader {
        guard !taken.exchange(true, ordering: .acquiringAndReleasing) else { return Reader(stream: self, kind: .refused) }
        switch source {
        case .sequence(let make): return Reader(stream: self, kind: .sequence(make()))
        case .feed(let feed): return Reader(stream: self, kind: .feed(feed))
        }
    }

    /// Reads the stream's pieces in order, as frames (`nextFrames`, no copy of what came off the bus) or as buffers.
    struct Reader {
        enum Kind {
            case sequence(any PieceReader)
            case feed(BodyFeed)
            case refused
        }

        /// Kept alive while it is read, so that the feed is not given up under its reader.
        let stream: BodyStream
        let kind: Kind

        func nextFrames() async throws -> [Frame]? {
            let frames: [Frame]?
            switch kind {
            case .sequence(let reader): frames = try await reader.next().map { [Frame($0)] }
            case .feed(let feed): frames = try await feed.next()
            case .refused: throw BodyError(.readTwice, "the body streams and was read already; a body that streams is read once")
            }
            if let frames { stream.transferred.add(frames.byteCount, ordering: .relaxed) }
            return frames
        }

        func next() async throws -> ByteBuffer? {
            if case .sequence(let reader) = kind {
                let buffer = try await reader.next()
                if let buffer { stream.transferred.add(buffer.readableBytes, ordering: .relaxed) }
                return buffer
            }
            return try await nextFrames().map { ByteBuffer(frames: $0) }
        }
    }
}

/// Reads a Worker's async sequence of buffers.
protocol PieceReader: AnyObject {
    func next() async throws -> ByteBuffer?
}

private final class SequenceReader<Iterator: AsyncIteratorProtocol>: PieceReader where Iterator.Element == ByteBuffer {
    private var iterator: Iterator

    init(_ iterator: Iterator) { self.iterator = iterator }

    func next() async throws -> ByteBuffer? {
        // Empty buffers say nothing: skipped, so that an empty piece always means the end.
        while let buffer = try await iterator.next() {
            if buffer.readableBytes > 0 { return buffer }
        }
        return nil
    }
}

/// A body that streams in on the edge's bus thread (an answer from a sidecar, an upload from a client) for a task that
/// reads it. The bus thread pushes what arrives; the reader takes it, and what it took is granted back to the sender
/// as credit, so the feed holds at most one window (`Streaming.window`) however slowly it is read.
final class BodyFeed: Sendable {
    /// What `push` made of a piece.
    enum Pushed: Equatable {
        case taken
        /// Nobody reads the body any more: the sender should stop.
        case readerGone
        /// The piece broke the stream's rules (more than was granted): the body is cut.
        case refused(String)
    }

    private struct State {
        var pieces: Deque<[Frame]> = []
        var credit: CreditReceiver
        var ended = false
        var failure: BodyError?
        var readerGone = false
    }

    private let state: Mutex<State>
    private let arrived = Signal()
    private let grant: @Sendable (Int) -> Void
    private let abandon: @Sendable () -> Void

    /// `grant`: called with bytes of credit for the sender, from the reader's task; `abandon`: called once if the
    /// reader gives the body up before its end. The sender may send `initialGrant` bytes before it hears a grant;
    /// with none, its first grant comes when the body is first read, so a body nobody reads holds nothing.
    init(window: Int = Streaming.window, initialGrant: Int, grant: @escaping @Sendable (Int) -> Void, abandon: @escaping @Sendable () -> Void) {
        state = Mutex(State(credit: CreditReceiver(window: window, initialGrant: initialGrant)))
        self.grant = grant
        self.abandon = abandon
    }

    /// A piece arrived: `frames` of the body, the last when `final`; `failure` says why it ends cut.
    func push(_ frames: [Frame], final: Bool, failure: String? = nil) -> Pushed {
        let pushed = state.withLock { state -> Pushed in
            guard !state.readerGone else { return .readerGone }
            guard !state.ended else { return .refused("a piece came after the body ended") }
            var pushed = Pushed.taken
            do throws(CreditReceiver.Overrun) {
                try state.credit.receive(frames.byteCount)
                if frames.byteCount > 0 { state.pieces.append(frames) }
                if let failure {
                    state.ended = true
                    state.failure = BodyError(.cut, failure)
                } else if final {
                    state.ended = true
                }
            } catch {
                state.ended = true
                state.failure = BodyError(.cut, error.message)
                pushed = .refused(error.message)
            }
            return pushed
        }
        arrived.signal()
        return pushed
    }

    /// The sender is gone, or the exchange failed: the reader gets `reason` once it has read what came before.
    func cut(_ reason: String) {
        _ = push([], final: true, failure: reason)
    }

    /// The next piece; nil at a clean end. Throws at a cut end, or when the reading task is cancelled.
    func next() async throws -> [Frame]? {
        while true {
            let (piece, due, end) = state.withLock { state -> ([Frame]?, Int?, Result<Void, BodyError>?) in
                if let piece = state.pieces.popFirst() {
                    return (piece, state.credit.consume(piece.byteCount), nil)
                }
                if state.credit.granted == 0 && !state.ended { return (nil, state.credit.grant(), nil) }
                guard state.ended else { return (nil, nil, nil) }
                return (nil, nil, state.failure.map { .failure($0) } ?? .success(()))
            }
            if let due { grant(due) }
            if let piece { return piece }
            switch end {
            case .success?: return nil
            case .failure(let error)?: throw error
            case nil:
                try Task.checkCancellation()
                await arrived.wait()
            }
        }
    }

    /// The reader let go of the body (`BodyStream`'s end): unless it read it to its end, the sender is told to stop.
    func readerGone() {
        let early = state.withLock { state in
            state.readerGone = true
            let early = !state.ended || !state.pieces.isEmpty
            state.pieces.removeAll()
            return early
        }
        if early { abandon() }
    }
}

/// Credit for a task that sends a body piece by piece (a Worker's body into the mesh, or to its client): the task
/// waits for it, the bus thread grants it as the receiver takes what was sent.
final class CreditGate: Sendable {
    private struct State {
        var sender: CreditSender
        var closed = false
        var onClose: [@Sendable () -> Void] = []
    }

    private let state: Mutex<State>
    private let changed = Signal()

    init(initial: Int) {
        state = Mutex(State(sender: CreditSender(initial: initial)))
    }

    /// The receiver granted `bytes` more.
    func granted(_ bytes: UInt64) {
        state.withLock { $0.sender.granted(bytes) }
        changed.signal()
    }

    /// The exchange ended (answered, cut, its client gone): whoever waits for credit stops.
    func close() {
        let actions = state.withLock { state in
            state.closed = true
            defer { state.onClose = [] }
            return state.onClose
        }
        changed.signal()
        for action in actions { action() }
    }

    /// Runs `action` once the gate closes (at once if it is closed).
    func whenClosed(_ action: @escaping @Sendable () -> Void) {
        let closed = state.withLock { state in
            if !state.closed { state.onClose.append(action) }
            return state.closed
        }
        if closed { action() }
    }

    /// Waits for credit, and takes what a piece of up to `bytes` may have of it; nil once the gate is closed or the
    /// task cancelled.
    func take(upTo bytes: Int) async -> Int? {
        while true {
            let taken = state.withLock { state -> Int?? in
                if state.closed { return .some(nil) }
                guard !state.sender.isBlocked else { return nil }
                let allowed = min(bytes, state.sender.available)
                state.sender.sent(allowed)
                return .some(allowed)
            }
            if let taken { return taken }
            if Task.isCancelled { return nil }
            await changed.wait()
        }
    }
}

/// Wakes the one task that waits on it. A signal while nobody waits is kept for the next wait, so that none is lost
/// between a waiter's look at its state and its wait; a wait also ends when its task is cancelled. Waiters look again
/// at what they wait for when they wake.
final class Signal: Sendable {
    private struct State {
        var signalled = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func signal() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.signalled = true
                return nil
            }
            state.waiter = nil
            return waiter
        }?.resume()
    }

    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state in
                    guard !state.signalled && !Task.isCancelled else {
                        state.signalled = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            signal()
        }
    }
}

/// Sends a body that streams, piece by piece, as its receiver's credit allows.
enum BodyPump {
    /// How a pump ended.
    enum End: Sendable {
        /// The whole body went, its last piece marked final.
        case finished
        /// The receiver is gone (the gate closed, the task was cancelled): nothing more was sent.
        case stopped
        /// The body could not be read to its end: the receiver must be told it is cut.
        case failed(String)
    }

    /// Reads `body` and hands it to `send` in pieces no larger than `gate` allows, the last one empty and `final`.
    /// Once the gate closes the body is read no more, even if it was waiting for its next piece: a source that never
    /// ends (a Worker's event stream, a client's upload) holds no task for an exchange that is over.
    static func run(_ body: BodyStream, through gate: CreditGate, send: @escaping @Sendable ([Frame], _ final: Bool) -> Void) async -> End {
        let pumping = Task { await pump(body, through: gate, send: send) }
        gate.whenClosed { pumping.cancel() }
        return await withTaskCancellationHandler { await pumping.value } onCancel: { pumping.cancel() }
    }

    private static func pump(_ body: BodyStream, through gate: CreditGate, send: ([Frame], _ final: Bool) -> Void) async -> End {
        let reader = body.reader()
        do {
            while let frames = try await reader.nextFrames() {
                for frame in frames {
                    var offset = 0
                    while offset < frame.count {
                        guard let allowed = await gate.take(upTo: frame.count - offset) else { return .stopped }
                        send([offset == 0 && allowed == frame.count ? frame : frame.slice(offset, allowed)], false)
                        offset += allowed
                    }
                }
            }
        } catch {
            if Task.isCancelled { return .stopped }
            return .failed("\(error)")
        }
        // A sequence may end quietly when its reader is cancelled (AsyncStream does): not a whole body.
        if Task.isCancelled { return .stopped }
        send([], true)
        return .finished
    }
}

extension Frame {
    /// `count` bytes of this frame from `offset`, without copying them.
    func slice(_ offset: Int, _ count: Int) -> Frame {
        let bytes = withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)]) }
        return Frame(borrowing: bytes, owner: self)
    }
}
