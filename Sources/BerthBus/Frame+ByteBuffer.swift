import NIOCore

extension Frame {
    /// A frame over a ByteBuffer's bytes, without copying them: the buffer stays alive until libzmq is done.
    public convenience init(_ buffer: ByteBuffer) {
        let box = ByteBufferBox(buffer)
        // The storage of a ByteBuffer that nobody mutates does not move, so the pointer stays valid as long as `box`.
        let bytes = box.buffer.withUnsafeReadableBytes { $0 }
        self.init(borrowing: bytes, owner: box)
    }
}

extension ByteBuffer {
    /// The bytes of `frames`, one after another, copied once.
    public init(frames: [Frame]) {
        self = ByteBufferAllocator().buffer(capacity: frames.byteCount)
        for frame in frames { frame.withUnsafeBytes { _ = self.writeBytes($0) } }
    }
}

/// Keeps a ByteBuffer's storage alive and unchanged while libzmq reads it.
private final class ByteBufferBox: Sendable {
    let buffer: ByteBuffer
    init(_ buffer: ByteBuffer) { self.buffer = buffer }
}
