import BerthBus
import BerthWire

/// An app's answer that is not HTTP/1.1 as RFC 9112 frames it, or is over a limit.
struct HTTPResponseError: Error, Sendable, Equatable, CustomStringConvertible {
    var description: String
    /// The body passed `maxBodyBytes`: the answer is refused for its size, not its form.
    var tooLarge = false

    init(_ description: String, tooLarge: Bool = false) {
        self.description = description
        self.tooLarge = tooLarge
    }
}

/// The head of an app's answer.
struct HTTPResponseHead: Sendable, Equatable {
    var status: Int
    /// Every header as the app sent it, hop-by-hop ones included.
    var headers: [Header]
    /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`, and a body whose end is
    /// known without the connection closing.
    var keepAlive: Bool
}

/// Reads one HTTP/1.1 response as its bytes arrive, in pieces of any size: the head, then the body framed by
/// Content-Length, chunked coding, or the end of the connection (RFC 9112 §6.3). Interim 1xx answers are skipped.
///
/// A body of known length goes into one frame of that size that the caller may read into directly
/// (`directBodyRoom`), so a 1 MiB answer is copied by the kernel once and never again; other bodies are
/// collected into frames of up to 256 KiB.
struct HTTPResponseReader {
    static let maxHeadBytes = 64 << 10
    private static let collectedFrameBytes = 256 << 10
    private static let maxChunkLineBytes = 4 << 10

    private enum State {
        case head
        /// Body bytes still to come into `fixedFrame`.
        case fixed(remaining: Int)
        case chunkSize(size: Int, digits: Int, inExtension: Bool, lineBytes: Int)
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's data; `seen` of its two bytes so far.
        case chunkDataEnd(seen: Int)
        /// Trailer lines after the last chunk; `lineBytes` in the current one.
        case trailers(lineBytes: Int, totalBytes: Int)
        case untilClose
        case complete
    }

    private let requestWasHead: Bool
    let maxBodyBytes: Int
    private var state = State.head
    private var headBytes: [UInt8] = []
    /// Where the search for the blank line that ends the head resumes.
    private var headScanned = 0
    private(set) var head: HTTPResponseHead?
    /// Body bytes taken so far; for a body of known length, also how far its frame is filled.
    private var bodyBytes = 0
    private var frames: [Frame] = []
    private var fixedFrame: Frame?
    private var collected: [UInt8] = []

    init(requestWasHead: Bool, maxBodyBytes: Int) {
        self.requestWasHead = requestWasHead
        self.maxBodyBytes = maxBodyBytes
    }

    var isComplete: Bool {
        if case .complete = state { true } else { false }
    }

    /// True once any byte of the answer arrived, an interim 1xx included.
    private(set) var hasStarted = false

    /// The body, once `isComplete`; the reader gives its frames away.
    mutating func takeBody() -> [Frame] {
        defer { frames = [] }
        return frames
    }

    /// Takes what it can of `bytes`: all of them, unless the answer ends first. Returns how many it took.
    mutating func consume(_ bytes: UnsafeRawBufferPointer) throws(HTTPResponseError) -> Int {
        if !bytes.isEmpty { hasStarted = true }
        var taken = 0
        while taken < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[taken...])
            switch state {
            case .head:
                taken += try consumeHead(rest)
            case .fixed(let remaining):
                let count = min(remaining, rest.count)
                fixedFrame?.withUnsafeMutableBytes { frame in
                    UnsafeMutableRawBufferPointer(rebasing: frame[bodyBytes..<bodyBytes + count]).copyMemory(from: UnsafeRawBufferPointer(rebasing: rest[..<count]))
                }
                taken += count
                filledDirectly(count)
            case .chunkSize(var size, var digits, var inExtension, var lineBytes):
                let byte = rest[0]
                taken += 1
                lineBytes += 1
                guard lineBytes <= Self.maxChunkLineBytes else { throw HTTPResponseError("a chunk-size line of the app's answer is over \(Self.maxChunkLineBytes) bytes") }
                if byte == UInt8(ascii: "\n") {
                    guard digits > 0 else { throw HTTPResponseError("the app's chunked answer has a chunk without a size") }
                    if size == 0 {
                        state = .trailers(lineBytes: 0, totalBytes: 0)
                    } else {
                        try admit(size)
                        state = .chunkData(remaining: size)
                    }
                    continue
                }
                if inExtension || byte == UInt8(ascii: "\r") {
                    state = .chunkSize(size: size, digits: digits, inExtension: inExtension, lineBytes: lineBytes)
                    continue
                }
                if byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                    inExtension = true
                } else if let value = Self.hexValue(byte), digits < 15 {
                    size = size << 4 | value
                    digits += 1
                } else {
                    throw HTTPResponseError("the app's chunked answer has an invalid chunk size")
                }
                state = .chunkSize(size: size, digits: digits, inExtension: inExtension, lineBytes: lineBytes)
            case .chunkData(let remaining):
                let count = min(remaining, rest.count)
                collect(UnsafeRawBufferPointer(rebasing: rest[..<count]))
                taken += count
                state = remaining == count ? .chunkDataEnd(seen: 0) : .chunkData(remaining: remaining - count)
            case .chunkDataEnd(let seen):
                let expected = seen == 0 ? UInt8(ascii: "\r") : UInt8(ascii: "\n")
                guard rest[0] == expected else { throw HTTPResponseError("a chunk of the app's answer is longer than its size says") }
                taken += 1
                state = seen == 0 ? .chunkDataEnd(seen: 1) : .chunkSize(size: 0, digits: 0, inExtension: false, lineBytes: 0)
            case .trailers(let lineBytes, let totalBytes):
                let byte = rest[0]
                taken += 1
                guard totalBytes < Self.maxHeadBytes else { throw HTTPResponseError("the trailers of the app's answer are over \(Self.maxHeadBytes) bytes") }
                if byte == UInt8(ascii: "\n") {
                    if lineBytes == 0 {
                        finishBody()
                        return taken
                    }
                    state = .trailers(lineBytes: 0, totalBytes: totalBytes + 1)
                } else if byte == UInt8(ascii: "\r") {
                    state = .trailers(lineBytes: lineBytes, totalBytes: totalBytes + 1)
                } else {
                    state = .trailers(lineBytes: lineBytes + 1, totalBytes: totalBytes + 1)
                }
            case .untilClose:
                try admit(rest.count)
                collect(rest)
                taken += rest.count
            case .complete:
                return taken
            }
        }
        return taken
    }

    /// Room in the body's frame for bytes that may be read straight into it, when the body's length is known and
    /// nothing is buffered ahead of it; nil otherwise.
    func directBodyRoom() -> UnsafeMutableRawBufferPointer? {
        guard case .fixed(let remaining) = state, let fixedFrame else { return nil }
        return fixedFrame.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[bodyBytes..<bodyBytes + remaining]) }
    }

    /// `count` bytes were written into `directBodyRoom()`.
    mutating func filledDirectly(_ count: Int) {
        guard case .fixed(let remaining) = state else { return }
        bodyBytes += count
        if remaining == count {
            if let fixedFrame { frames.append(fixedFrame) }
            fixedFrame = nil
            state = .complete
        } else {
            state = .fixed(remaining: remaining - count)
        }
    }

    /// The connection closed. Returns whether the answer is complete: one whose end is the end of the connection
    /// now is; any other is cut short.
    mutating func endOfInput() -> Bool {
        switch state {
        case .untilClose:
            finishBody()
            return true
        case .complete:
            return true
        default:
            return false
        }
    }

    // MARK: Head

    private mutating func consumeHead(_ bytes: UnsafeRawBufferPointer) throws(HTTPResponseError) -> Int {
        let before = headBytes.count
        let room = Self.maxHeadBytes - before
        let count = min(bytes.count, room)
        headBytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[..<count]))
        guard let end = findEndOfHead() else {
            guard headBytes.count < Self.maxHeadBytes else { throw HTTPResponseError("the app's response head is over \(Self.maxHeadBytes) bytes") }
            return count
        }
        let taken = end - before
        let parsed = try Self.parseHead(headBytes[..<end])
        headBytes.removeAll(keepingCapacity: true)
        headScanned = 0
        if (100..<200).contains(parsed.head.status) {
            guard parsed.head.status != 101 else { throw HTTPResponseError("the app switched protocols (101), which the sidecar does not relay") }
            return taken
        }
        var head = parsed.head
        let framing = requestWasHead || parsed.head.status == 204 || parsed.head.status == 304 ? .none : parsed.framing
        switch framing {
        case .none:
            state = .complete
        case .length(0):
            state = .complete
        case .length(let length):
            try admit(length)
            fixedFrame = Frame(count: length)
            state = .fixed(remaining: length)
        case .chunked:
            state = .chunkSize(size: 0, digits: 0, inExtension: false, lineBytes: 0)
        case .untilClose:
            head.keepAlive = false
            state = .untilClose
        }
        self.head = head
        return taken
    }

    /// The index just past the blank line that ends the head, scanning only bytes not looked at before.
    private mutating func findEndOfHead() -> Int? {
        defer { headScanned = max(0, headBytes.count - 3) }
        var index = headScanned
        while index + 3 < headBytes.count {
            if headBytes[index + 3] == UInt8(ascii: "\n") && headBytes[index + 2] == UInt8(ascii: "\r")
                && headBytes[index + 1] == UInt8(ascii: "\n") && headBytes[index] == UInt8(ascii: "\r") {
                return index + 4
            }
            index += 1
        }
        return nil
    }

    private enum Framing: Equatable {
        case none
        case length(Int)
        case chunked
        case untilClose
    }

    private static func parseHead(_ bytes: ArraySlice<UInt8>) throws(HTTPResponseError) -> (head: HTTPResponseHead, framing: Framing) {
        var lines = Lines(bytes)
        guard let statusLine = lines.next() else { throw HTTPResponseError("the app's answer has no status line") }
        let (version, status) = try parseStatusLine(statusLine)
        var headers: [Header] = []
        var contentLength: Int?
        var chunked = false
        var transferEncoded = false
        var close = version == 0
        while let line = lines.next() {
            if line.isEmpty { break }
            guard line.first != UInt8(ascii: " ") && line.first != UInt8(ascii: "\t") else {
                throw HTTPResponseError("the app's answer folds a header over two lines, which HTTP/1.1 forbids")
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                  line[line.startIndex..<colon].allSatisfy(isTokenByte) else {
                throw HTTPResponseError("the app's answer has a malformed header line")
            }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
            var value = line[(colon + 1)...]
            while let first = value.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { value = value.dropFirst() }
            while let last = value.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { value = value.dropLast() }
            let text = String(decoding: value, as: UTF8.self)
            if name.caseInsensitiveEquals("content-length") {
                for item in text.split(separator: ",") {
                    let digits = item.trimmingSpaces
                    guard !digits.isEmpty, digits.utf8.count <= 18, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                          let length = Int(digits) else {
                        throw HTTPResponseError("the app's answer has an invalid Content-Length: \(text)")
                    }
                    guard contentLength == nil || contentLength == length else {
                        throw HTTPResponseError("the app's answer has conflicting Content-Length values")
                    }
                    contentLength = length
                }
            } else if name.caseInsensitiveEquals("transfer-encoding") {
                transferEncoded = true
                let codings = text.split(separator: ",")
                chunked = codings.last.map { String($0.trimmingSpaces).caseInsensitiveEquals("chunked") } ?? false
            } else if name.caseInsensitiveEquals("connection") {
                for token in text.split(separator: ",") {
                    let token = String(token.trimmingSpaces)
                    if token.caseInsensitiveEquals("close") { close = true }
                    if token.caseInsensitiveEquals("keep-alive") && version == 0 { close = false }
                }
            }
            headers.append(Header(name, text))
        }
        let framing: Framing
        if transferEncoded {
            framing = chunked ? .chunked : .untilClose
            // A length beside a transfer coding is a sign of smuggling (RFC 9112 §6.3): the connection is not reused.
            if contentLength != nil { close = true }
        } else if let contentLength {
            framing = .length(contentLength)
        } else {
            framing = .untilClose
        }
        return (HTTPResponseHead(status: status, headers: headers, keepAlive: !close), framing)
    }

    /// The minor version (0 or 1) and the status code.
    private static func parseStatusLine(_ line: ArraySlice<UInt8>) throws(HTTPResponseError) -> (Int, Int) {
        let start = line.startIndex
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        guard line.count >= 12, line[start..<start + 7].elementsEqual("HTTP/1.".utf8),
              line[start + 7] == UInt8(ascii: "0") || line[start + 7] == UInt8(ascii: "1"), line[start + 8] == UInt8(ascii: " "),
              isDigit(line[start + 9]), isDigit(line[start + 10]), isDigit(line[start + 11]),
              line.count == 12 || line[start + 12] == UInt8(ascii: " ") else {
            throw HTTPResponseError("the app's answer does not start with an HTTP/1.x status line: \(String(decoding: line.prefix(40), as: UTF8.self))")
        }
        let status = line[start + 9..<start + 12].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        guard status >= 100 else { throw HTTPResponseError("the app answered with status \(status), which is not an HTTP status") }
        return (Int(line[start + 7] - UInt8(ascii: "0")), status)
    }

    /// The lines of a head, each without its CR LF (or bare LF), as slices of it: nothing is copied.
    private struct Lines {
        private let bytes: ArraySlice<UInt8>
        private var position: Int

        init(_ bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
            position = bytes.startIndex
        }

        mutating func next() -> ArraySlice<UInt8>? {
            guard position < bytes.endIndex else { return nil }
            let end = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
            var line = bytes[position..<end]
            position = end + 1
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            return line
        }
    }

    /// RFC 9110 §5.6.2 tchar.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    // MARK: Body

    private func admit(_ count: Int) throws(HTTPResponseError) {
        guard bodyBytes + count <= maxBodyBytes else {
            throw HTTPResponseError("the app's response body is over the \(maxBodyBytes)-byte limit", tooLarge: true)
        }
    }

    /// Body bytes of unknown total length, gathered into frames of up to 256 KiB.
    private mutating func collect(_ bytes: UnsafeRawBufferPointer) {
        bodyBytes += bytes.count
        var rest = bytes
        while !rest.isEmpty {
            if collected.isEmpty { collected.reserveCapacity(min(Self.collectedFrameBytes, max(rest.count, 4096))) }
            let count = min(rest.count, Self.collectedFrameBytes - collected.count)
            collected.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[..<count]))
            rest = UnsafeRawBufferPointer(rebasing: rest[count...])
            if collected.count == Self.collectedFrameBytes { flushCollected() }
        }
    }

    private mutating func flushCollected() {
        guard !collected.isEmpty else { return }
        frames.append(Frame(collected))
        collected.removeAll(keepingCapacity: false)
    }

    private mutating func finishBody() {
        flushCollected()
        state = .complete
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var value = self
        while let first = value.first, first == " " || first == "\t" { value = value.dropFirst() }
        while let last = value.last, last == " " || last == "\t" { value = value.dropLast() }
        return value
    }
}
