import BerthBus
import BerthWire
import NIOCore
import Synchronization

/// An HTTP body: whole, as the pieces it arrived in (bus frames for what came off the bus or a client connection,
/// buffers for what a Worker made), or a stream of pieces read once.
///
/// A whole body goes on to the bus or to the client without being copied; a Worker that reads one from frames gets
/// it copied into buffers once, when it asks. A body that streams (`isStream`) has no bytes to read at once: a Worker
/// iterates it (`for try await piece in body`) or collects it (`collect(upTo:)`), or passes it on as it is. Workers
/// get bodies that stream only when they say they take them (`Worker.streamsBodies`).
public struct Body: Sendable, AsyncSequence {
    private enum Storage: Sendable {
        case buffers([ByteBuffer])
        case frames([Frame])
        case stream(BodyStream)
    }

    private var storage: Storage

    public init() { storage = .buffers([]) }

    public init(_ buffer: ByteBuffer) { storage = .buffers(buffer.readableBytes > 0 ? [buffer] : []) }

    public init(chunks: [ByteBuffer]) { storage = .buffers(chunks.filter { $0.readableBytes > 0 }) }

    public init(string: String) { self.init(ByteBuffer(string: string)) }

    public init(bytes: some Sequence<UInt8>) { self.init(ByteBuffer(bytes: bytes)) }

    init(frames: [Frame]) { storage = .frames(frames.filter { $0.count > 0 }) }

    /// A body that streams: the pieces of `pieces`, read once, as whoever sends the body (the edge, to its client or
    /// into the mesh) has room for them. `length`, when known, goes in the message's `content-length`; without it an
    /// answer is chunked. A sequence that throws cuts the body: its receiver sees it end unclean.
    public init<Pieces: AsyncSequence & Sendable>(stream pieces: Pieces, length: Int? = nil) where Pieces.Element == ByteBuffer {
        storage = .stream(BodyStream(pieces, length: length))
    }

    init(stream: BodyStream) { storage = .stream(stream) }

    /// A body that streams what is written to `writer`, as its reader takes it: `writer.write` waits while the reader
    /// is a window (2 MiB) behind, so a fast source never outruns a slow client. For pieces that come from a scope the
    /// body cannot outlive (a connection's `executeThenClose`, say).
    public static func makeStream(length: Int? = nil) -> (body: Body, writer: BodyWriter) {
        let gate = CreditGate(initial: Streaming.window)
        let feed = BodyFeed(initialGrant: Streaming.window, grant: { gate.granted(UInt64($0)) }, abandon: { gate.close() })
        return (Body(stream: BodyStream(feed: feed, length: length)), BodyWriter(feed: feed, gate: gate))
    }

    /// The body streams: its bytes are read with `for try await`, or `collect(upTo:)`.
    public var isStream: Bool {
        if case .stream = storage { true } else { false }
    }

    /// The length of a body that streams, when it said one; the count of a whole body.
    public var length: Int? {
        if case .stream(let stream) = storage { stream.length } else { count }
    }

    var stream: BodyStream? {
        if case .stream(let stream) = storage { stream } else { nil }
    }

    /// The body's pieces as buffers; none for a body that streams.
    public var chunks: [ByteBuffer] {
        switch storage {
        case .buffers(let buffers): buffers
        case .frames(let frames): frames.isEmpty ? [] : [ByteBuffer(frames: frames)]
        case .stream: []
        }
    }

    /// The bytes of a whole body; of one that streams, those read so far.
    public var count: Int {
        switch storage {
        case .buffers(let buffers): buffers.reduce(0) { $0 + $1.readableBytes }
        case .frames(let frames): frames.byteCount
        case .stream(let stream): stream.bytesTransferred
        }
    }

    /// Empty and whole: a body that streams is not known to be empty.
    public var isEmpty: Bool {
        switch storage {
        case .buffers(let buffers): buffers.isEmpty
        case .frames(let frames): frames.isEmpty
        case .stream: false
        }
    }

    /// The whole body in one buffer, read to its end if it streams: more than `maxBytes` throws `BodyError.tooLarge`.
    public func collect(upTo maxBytes: Int) async throws -> ByteBuffer {
        guard case .stream(let stream) = storage else {
            guard count <= maxBytes else { throw BodyError(.tooLarge, "the body has \(count) bytes, over the \(maxBytes) it may have") }
            return buffer
        }
        let reader = stream.reader()
        var whole = ByteBufferAllocator().buffer(capacity: Swift.min(stream.length ?? 0, maxBytes))
        while let piece = try await reader.next() {
            guard whole.readableBytes + piece.readableBytes <= maxBytes else {
                throw BodyError(.tooLarge, "the body has more than the \(maxBytes) bytes it may have")
            }
            whole.writeImmutableBuffer(piece)
        }
        return whole
    }

    /// Reads the body's pieces: a whole body's at once, a stream's as they come.
    public struct AsyncIterator: AsyncIteratorProtocol {
        private var whole: IndexingIterator<[ByteBuffer]>?
        private let reader: BodyStream.Reader?

        init(_ body: Body) {
            if let stream = body.stream {
                whole = nil
                reader = stream.reader()
            } else {
                whole = body.chunks.makeIterator()
                reader = nil
            }
        }

        public mutating func next() async throws -> ByteBuffer? {
            if whole != nil { return whole!.next() }
            return try await reader?.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(self) }

    /// This body, with `done` called once it is over: at once for a whole body; for one that streams, when it has been
    /// read to its end, or was cut, or let go before its end, with the bytes read and why it is not whole.
    func observingEnd(_ done: @escaping @Sendable (_ bytes: Int, _ failure: String?) -> Void) -> Body {
        guard let stream else {
            done(count, nil)
            return self
        }
        return Body(stream: ObservedPieces(body: self, observer: EndObserver(done)), length: stream.length)
    }

    /// The whole body in one buffer; empty for a body that streams, which `collect(upTo:)` reads.
    public var buffer: ByteBuffer {
        let chunks = chunks
        if chunks.count == 1 { return chunks[0] }
        var whole = ByteBufferAllocator().buffer(capacity: count)
        for chunk in chunks { whole.writeImmutableBuffer(chunk) }
        return whole
    }

    /// The body as UTF-8 text.
    public var string: String { String(buffer: buffer) }

    /// A whole body as frames for a socket, without copying its bytes; none for a body that streams. Sending them on
    /// the bus would empty them: see `framesForBus`.
    var frames: [Frame] {
        switch storage {
        case .buffers(let buffers): buffers.map { Frame($0) }
        case .frames(let frames): frames
        case .stream: []
        }
    }

    /// A whole body as frames to send on the bus, which empties what it sends: new frames over the same bytes, so that
    /// a Worker may send a body, then read it or send it again.
    var framesForBus: [Frame] {
        switch storage {
        case .buffers(let buffers): buffers.map { Frame($0) }
        case .frames(let frames): frames.map { $0.copy() }
        case .stream: []
        }
    }
}

/// A body's pieces, with its end observed.
private struct ObservedPieces: AsyncSequence, Sendable {
    let body: Body
    let observer: EndObserver

    struct AsyncIterator: AsyncIteratorProtocol {
        var pieces: Body.AsyncIterator
        let observer: EndObserver

        mutating func next() async throws -> ByteBuffer? {
            do {
                guard let piece = try await pieces.next() else {
                    observer.end(nil)
                    return nil
                }
                observer.read(piece.readableBytes)
                return piece
            } catch {
                observer.end("\(error)")
                throw error
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(pieces: body.makeAsyncIterator(), observer: observer) }
}

/// Calls its action once, at a body's end; a body let go before its end ends then.
private final class EndObserver: Sendable {
    private let state = Mutex<(bytes: Int, done: (@Sendable (Int, String?) -> Void)?)>((0, nil))

    init(_ done: @escaping @Sendable (Int, String?) -> Void) {
        state.withLock { $0.done = done }
    }

    deinit { end("the body was let go before its end") }

    func read(_ bytes: Int) { state.withLock { $0.bytes += bytes } }

    func end(_ failure: String?) {
        let (bytes, done) = state.withLock { state in
            defer { state.done = nil }
            return (state.bytes, state.done)
        }
        done?(bytes, failure)
    }
}

/// Writes the pieces of a body made by `Body.makeStream()`.
public struct BodyWriter: Sendable {
    let feed: BodyFeed
    let gate: CreditGate

    /// Sends `piece` once the reader has room for it; throws `BodyError.cut` once the reader has gone.
    public func write(_ piece: ByteBuffer) async throws {
        var rest = piece
        while rest.readableBytes > 0 {
            guard let allowed = await gate.take(upTo: rest.readableBytes) else {
                throw BodyError(.cut, "the body's reader went away")
            }
            guard feed.push([Frame(rest.readSlice(length: allowed)!)], final: false) == .taken else {
                throw BodyError(.cut, "the body's reader went away")
            }
        }
    }

    /// The body is whole.
    public func finish() {
        _ = feed.push([], final: true)
    }

    /// The body ends cut, for `reason`: its reader sees an error, and a client it goes to sees its connection reset.
    public func fail(_ reason: String) {
        feed.cut(reason)
    }
}
