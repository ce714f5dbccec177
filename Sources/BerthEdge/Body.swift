import BerthBus
import NIOCore

/// An HTTP body as the pieces it arrived in: bus frames for what came off the bus or a client connection, buffers
/// for what a Worker made. Either goes on to the bus or to the client without being copied; a Worker that reads
/// a body from frames gets it copied into buffers once, when it asks.
public struct Body: Sendable {
    private enum Storage: Sendable {
        case buffers([ByteBuffer])
        case frames([Frame])
    }

    private var storage: Storage

    public init() { storage = .buffers([]) }

    public init(_ buffer: ByteBuffer) { storage = .buffers(buffer.readableBytes > 0 ? [buffer] : []) }

    public init(chunks: [ByteBuffer]) { storage = .buffers(chunks.filter { $0.readableBytes > 0 }) }

    public init(string: String) { self.init(ByteBuffer(string: string)) }

    public init(bytes: some Sequence<UInt8>) { self.init(ByteBuffer(bytes: bytes)) }

    init(frames: [Frame]) { storage = .frames(frames.filter { $0.count > 0 }) }

    /// The body's pieces as buffers.
    public var chunks: [ByteBuffer] {
        switch storage {
        case .buffers(let buffers): buffers
        case .frames(let frames): frames.isEmpty ? [] : [ByteBuffer(frames: frames)]
        }
    }

    public var count: Int {
        switch storage {
        case .buffers(let buffers): buffers.reduce(0) { $0 + $1.readableBytes }
        case .frames(let frames): frames.byteCount
        }
    }

    public var isEmpty: Bool {
        switch storage {
        case .buffers(let buffers): buffers.isEmpty
        case .frames(let frames): frames.isEmpty
        }
    }

    /// The whole body in one buffer.
    public var buffer: ByteBuffer {
        let chunks = chunks
        if chunks.count == 1 { return chunks[0] }
        var whole = ByteBufferAllocator().buffer(capacity: count)
        for chunk in chunks { whole.writeImmutableBuffer(chunk) }
        return whole
    }

    /// The body as UTF-8 text.
    public var string: String { String(buffer: buffer) }

    /// The body as frames for a socket, without copying its bytes. Sending them on the bus would empty them: see
    /// `framesForBus`.
    var frames: [Frame] {
        switch storage {
        case .buffers(let buffers): buffers.map { Frame($0) }
        case .frames(let frames): frames
        }
    }

    /// The body as frames to send on the bus, which empties what it sends: new frames over the same bytes, so that
    /// a Worker may send a body, then read it or send it again.
    var framesForBus: [Frame] {
        switch storage {
        case .buffers(let buffers): buffers.map { Frame($0) }
        case .frames(let frames): frames.map { $0.copy() }
        }
    }
}
