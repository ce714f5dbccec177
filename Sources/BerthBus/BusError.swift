import CZeroMQ

import Glibc

/// A failure of the ZeroMQ bus: which operation failed, on which endpoint, and libzmq's own reason.
public struct BusError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: Sendable, Equatable {
        /// libzmq returned an error; the value is its errno.
        case zmq(Int32)
        /// A peer sent a message with more frames than the bus accepts.
        case tooManyFrames
        /// The bus loop is not running.
        case stopped
        /// A system call of the loop's own failed; the value is its errno.
        case system(Int32)
        /// A setting that must come before the first socket came after it.
        case alreadyStarted
        /// A setting that cannot take effect in this process; the message says why.
        case notApplicable
    }

    public var code: Code
    /// What was being done, e.g. `bind tcp://127.0.0.1:7700`.
    public var operation: String
    public var message: String

    public init(code: Code, operation: String, message: String) {
        self.code = code
        self.operation = operation
        self.message = message
    }

    /// The error libzmq reports for the call that just failed.
    static func last(_ operation: String) -> BusError {
        let errno = zmq_errno()
        return BusError(code: .zmq(errno), operation: operation, message: String(cString: zmq_strerror(errno)))
    }

    public var description: String { "\(operation): \(message)" }

    /// True when the peer a ROUTER tried to send to is not connected (ROUTER_MANDATORY).
    public var isHostUnreachable: Bool { code == .zmq(EHOSTUNREACH) }
}
