import BerthBus

import Glibc

/// Bytes on their way out of a non-blocking socket, written from the frames that hold them: a head and a body go
/// out in one `sendmsg`, and a body that came off the bus is never copied in user space.
package struct FrameWriter {
    private static let maxIovecs = 64

    private var frames: [Frame] = []
    /// Where the next byte to go is: `frames[index]` at `offset`.
    private var index = 0
    private var offset = 0
    /// Bytes queued and not written yet.
    package private(set) var pendingBytes = 0

    package init() {}

    package var isEmpty: Bool { index == frames.count }

    package mutating func append(_ frame: Frame) {
        guard frame.count > 0 else { return }
        frames.append(frame)
        pendingBytes += frame.count
    }

    package mutating func append(contentsOf more: [Frame]) {
        for frame in more { append(frame) }
    }

    package enum Outcome: Equatable {
        /// Everything is written.
        case done
        /// The socket takes no more for now: poll for POLLOUT.
        case blocked
        /// The peer is gone (errno).
        case failed(Int32)
    }

    /// Writes what the socket takes now.
    package mutating func write(to fd: Int32) -> Outcome {
        while !isEmpty {
            let written = withUnsafeTemporaryAllocation(of: iovec.self, capacity: Self.maxIovecs) { iovecs in
                var count = 0
                var frame = index
                var start = offset
                while count < Self.maxIovecs && frame < frames.count {
                    frames[frame].withUnsafeBytes { bytes in
                        iovecs[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress! + start), iov_len: bytes.count - start)
                    }
                    count += 1
                    frame += 1
                    start = 0
                }
                var message = msghdr()
                message.msg_iov = iovecs.baseAddress
                message.msg_iovlen = count
                // The frames stay alive in `frames` for the call.
                return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    // Written frames go now: a stream whose writer never empties must not keep what it sent.
                    if index > 0 {
                        frames.removeFirst(index)
                        index = 0
                    }
                    return .blocked
                }
                return .failed(errno)
            }
            advance(by: written)
        }
        frames.removeAll(keepingCapacity: true)
        index = 0
        offset = 0
        pendingBytes = 0
        return .done
    }

    private mutating func advance(by written: Int) {
        pendingBytes -= written
        var left = written
        while left > 0 {
            let step = min(left, frames[index].count - offset)
            left -= step
            offset += step
            if offset == frames[index].count {
                index += 1
                offset = 0
            }
        }
    }
}
