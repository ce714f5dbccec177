import BerthBus
import NIOCore

/// An HTTP body as the chunks it arrived in: handed on to the bus without being copied into one buffer.
public struct Body: Sendable {
    public private(set) var chunks: [ByteBuffer]

    public init() { chunks = [] }

    public init(_ buffer: ByteBuffer) { chunks = buffer.readableBytes > 0 ? [buffer] : [] }

    public init(chunks: [ByteBuffer]) { self.chunks = chunks.filter { $0.readableBytes > 0 } }

    public init(string: String) { self.init(ByteBuffer(string: string)) }

    public init(bytes: some Sequence<UInt8>) { self.init(ByteBuffer(bytes: bytes)) }

    init(frames: [Frame]) {
        self.init(frames.isEmpty ? ByteBuffer() : ByteBuffer(frames: frames))
    }

    public var count: Int { chunks.reduce(0) { $0 + $1.readableBytes } }

    public var isEmpty: Bool { chunks.isEmpty }

    /// The whole body in one buffer.
    public var buffer: ByteBuffer {
        if chunks.count == 1 { return chunks[0] }
        var whole = ByteBufferAllocator().buffer(capacity: count)
        for chunk in chunks { whole.writeImmutableBuffer(chunk) }
        return whole
    }

    /// The body as UTF-8 text.
    public var string: String { String(buffer: buffer) }

    var frames: [Frame] { chunks.map { Frame($0) } }
}
