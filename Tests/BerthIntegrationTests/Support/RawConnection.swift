import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A client's TCP connection to the edge that sends bytes exactly as given and reads answers as they come: for
/// requests no HTTP client would send.
final class RawConnection {
    struct Answer {
        var status: Int
        var head: String
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    enum Failure: Error, CustomStringConvertible {
        case timedOut(received: String)
        case closed(received: String)
        case malformed(String)

        var description: String {
            switch self {
            case .timedOut(let received): "no whole answer in time; received \(received.prefix(300).debugDescription)"
            case .closed(let received): "the connection closed before a whole answer; received \(received.prefix(300).debugDescription)"
            case .malformed(let head): "not an HTTP/1.x answer: \(head.prefix(300).debugDescription)"
            }
        }
    }

    let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var closed = false

    init(port: Int) throws {
        fd = try EdgeHTTPTests.connected(port: port)
        var wait = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    /// Sends all of `bytes`; false when the connection no longer takes them.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { return false }
            sent += count
        }
        return true
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Reads what has come, waiting at most 100 ms; false once the connection is closed.
    @discardableResult
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count > 0 { buffer.append(contentsOf: chunk[..<count]) }
        if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { closed = true }
        return !closed
    }

    /// The next whole answer (1xx ones skipped unless `interim`), framed by its Content-Length: every answer the edge
    /// writes has one.
    func answer(timeout: Duration = .seconds(10), interim: Bool = false) throws -> Answer {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let end = buffer.firstRange(of: Array("\r\n\r\n".utf8))?.upperBound {
                let head = String(decoding: buffer[..<end], as: UTF8.self)
                let words = head.split(separator: " ", maxSplits: 2)
                guard head.hasPrefix("HTTP/1."), words.count >= 2, let status = Int(words[1]) else { throw Failure.malformed(head) }
                if (100..<200).contains(status) {
                    buffer.removeFirst(end)
                    if interim { return Answer(status: status, head: head, body: []) }
                    continue
                }
                let length = head.lowercased().components(separatedBy: "\r\n")
                    .first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if buffer.count >= end + length {
                    let body = Array(buffer[end..<end + length])
                    buffer.removeFirst(end + length)
                    return Answer(status: status, head: head, body: body)
                }
            }
            guard !closed else { throw Failure.closed(received: String(decoding: buffer, as: UTF8.self)) }
            guard ContinuousClock.now < deadline else { throw Failure.timedOut(received: String(decoding: buffer, as: UTF8.self)) }
            fill()
        }
    }

    /// Reads what has come without waiting; true while the connection is open.
    @discardableResult
    func readAvailable() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !closed {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                buffer.append(contentsOf: chunk[..<count])
            } else if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                closed = true
            } else {
                break
            }
        }
        return !closed
    }

    /// Reads until the peer closes; true if it did within `timeout`. Bytes read on the way are kept in `rest`.
    func readsToEnd(timeout: Duration = .seconds(10)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !closed && ContinuousClock.now < deadline { _ = fill() }
        return closed
    }

    /// Reads until what came contains `text`; false if the connection closed or `timeout` passed first.
    func readsUntil(_ text: String, timeout: Duration = .seconds(10)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if buffer.firstRange(of: Array(text.utf8)) != nil { return true }
            guard fill() else { return buffer.firstRange(of: Array(text.utf8)) != nil }
        }
        return false
    }

    /// What was read and not taken as an answer.
    var rest: String { String(decoding: buffer, as: UTF8.self) }
}
