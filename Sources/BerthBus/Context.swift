import CZeroMQ

/// A libzmq context. One per process is enough: `Context.shared`.
///
/// libzmq contexts are thread-safe; sockets are not (see `Socket`).
public final class Context: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// The process-wide context. It is never terminated: sockets close with LINGER 0, so exit is never delayed.
    public static let shared = Context()

    public init(ioThreads: Int32 = 1) {
        handle = zmq_ctx_new()
        zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads)
    }

    /// The libzmq version this process runs, e.g. `4.3.4`.
    public static var libraryVersion: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}
