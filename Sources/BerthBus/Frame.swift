import CZeroMQ

/// One frame of a ZeroMQ message, holding its bytes in libzmq's own buffer.
///
/// Receiving fills a frame without copying; sending a frame hands its buffer to libzmq without copying.
/// A router that forwards a body forwards the very frames it received. A frame moves between threads
/// only as a whole (handed to the bus thread, or out of it): it is never touched by two threads at once.
public final class Frame: @unchecked Sendable {
    let message: UnsafeMutablePointer<zmq_msg_t>

    /// An empty frame, to receive into.
    init() {
        message = .allocate(capacity: 1)
        zmq_msg_init(message)
    }

    /// A frame of `count` uninitialised bytes, to fill through `withUnsafeMutableBytes`.
    public init(count: Int) {
        message = .allocate(capacity: 1)
        zmq_msg_init_size(message, count)
    }

    /// A frame holding a copy of `bytes`.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count)
        if let base = bytes.baseAddress, bytes.count > 0 {
            zmq_msg_data(message).copyMemory(from: base, byteCount: bytes.count)
        }
    }

    public convenience init(_ bytes: [UInt8]) {
        self.init(count: bytes.count)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress, source.count > 0 {
                zmq_msg_data(message).copyMemory(from: base, byteCount: source.count)
            }
        }
    }

    public convenience init(_ string: String) {
        var string = string
        self.init(count: string.utf8.count)
        string.withUTF8 { source in
            if let base = source.baseAddress, source.count > 0 {
                zmq_msg_data(message).copyMemory(from: base, byteCount: source.count)
            }
        }
    }

    /// A frame over memory that `owner` keeps alive, without copying it. libzmq releases `owner` when it is done
    /// with the bytes, possibly on its own I/O thread; the bytes must not change until then.
    public init(borrowing bytes: UnsafeRawBufferPointer, owner: any AnyObject & Sendable) {
        message = .allocate(capacity: 1)
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            zmq_msg_init(message)
            return
        }
        let hint = Unmanaged.passRetained(owner as AnyObject).toOpaque()
        zmq_msg_init_data(message, UnsafeMutableRawPointer(mutating: base), bytes.count, { _, hint in
            if let hint { Unmanaged<AnyObject>.fromOpaque(hint).release() }
        }, hint)
    }

    deinit {
        zmq_msg_close(message)
        message.deallocate()
    }

    /// A second frame sharing this frame's buffer (reference-counted by libzmq for large frames).
    public func copy() -> Frame {
        let other = Frame()
        zmq_msg_copy(other.message, message)
        return other
    }

    public var count: Int { zmq_msg_size(message) }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message)))
    }

    public func withUnsafeMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeMutableRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message)))
    }

    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// The frame's bytes as UTF-8 text, with invalid sequences repaired.
    public var string: String { withUnsafeBytes { String(decoding: $0, as: UTF8.self) } }
}

extension Array where Element == Frame {
    /// The total number of bytes in these frames.
    public var byteCount: Int { reduce(0) { $0 + $1.count } }
}
