import BerthBus

/// Reads a message body as RFC 9112 frames it, from bytes that arrive in pieces of any size, into frames for the bus.
///
/// A body of known length goes into one frame of that size that the caller may read into directly (`directRoom`),
/// so the kernel copies it once and nothing copies it again; other bodies are gathered into frames of up to 256 KiB.
struct HTTPBodyReader {
    private static let gatheredFrameBytes = 256 << 10
    private static let maxChunkLineBytes = 4 << 10

    private enum State {
        /// Bytes still to come into `fixedFrame`.
        case fixed(remaining: Int)
        /// Bytes still to come of a body of known length that streams: gathered as they come, never held whole.
        case fixedStreaming(remaining: Int)
        case chunkSize(size: Int, digits: Int, part: ChunkLine, lineBytes: Int)
        case chunkData(remaining: Int)
        /// The CR LF after a chunk's data; `seen` of its two bytes so far.
        case chunkDataEnd(seen: Int)
        /// Trailer lines after the last chunk; `lineBytes` in the current one, which has had its CR when `lineFeed`.
        case trailers(lineBytes: Int, totalBytes: Int, lineFeed: Bool)
        case untilClose
        case complete
    }

    /// Where in a chunk-size line (`1*HEXDIG [BWS ";" chunk-ext] CRLF`) the reader is.
    private enum ChunkLine {
        case size
        /// Spaces after the size: only a `;` may follow (`1 0` is no size).
        case whitespace
        case chunkExtension
        /// The line had its CR: only LF may follow (`1\r0` is no size either).
        case lineFeed
    }

    /// Whose body, for error messages: "the app's answer", "the request".
    let subject: String
    let maxBytes: Int
    private var state: State
    /// Body bytes taken so far; for a body of known length, also how far its frame is filled.
    private(set) var count = 0
    private var frames: [Frame] = []
    private var fixedFrame: Frame?
    private var gathered: [UInt8] = []
    /// Set when the body may stream (`streamAbove`): one of unknown length is not held to `maxBytes`, since its
    /// reader takes its pieces as they come (`takeAvailable`) once it is over the threshold.
    private let streamable: Bool
    private let maxStreamedBytes: Int?
    /// A body of known length over the threshold: it streams from its first byte.
    let streamsFromStart: Bool
    /// Its pieces are taken as they come (`takeAvailable`): it holds only what was not taken yet.
    private var streaming = false

    /// - Parameter streamAbove: bodies of known length over this stream (`takeAvailable`) rather than fill one frame,
    ///   and bodies of unknown length are not held to `maxBytes`; nil: every body is read whole.
    /// - Throws: when a body of known length is over `maxBytes`, and does not stream.
    /// - Parameter maxStreamedBytes: the limit of a body that streams; nil: none.
    init(
        _ framing: HTTPFraming, maxBytes: Int, subject: String, streamAbove: Int? = nil, maxStreamedBytes: Int? = nil
    ) throws(HTTPMessageError) {
        self.subject = subject
        self.maxBytes = maxBytes
        self.maxStreamedBytes = maxStreamedBytes
        streamable = streamAbove != nil
        if case .length(let length) = framing, let streamAbove, length > streamAbove {
            streamsFromStart = true
            streaming = true
            state = .complete
            try admit(length)
            state = .fixedStreaming(remaining: length)
            return
        }
        streamsFromStart = false
        switch framing {
        case .none, .length(0):
            state = .complete
        case .length(let length):
            state = .complete
            try admit(length)
            fixedFrame = Frame(count: length)
            state = .fixed(remaining: length)
        case .chunked:
            state = .chunkSize(size: 0, digits: 0, part: .size, lineBytes: 0)
        case .untilClose:
            state = .untilClose
        }
    }

    var isComplete: Bool {
        if case .complete = state { true } else { false }
    }

    /// Bytes this body holds or is promised: a body of known length, its whole frame from the start; a chunked one,
    /// what it gathered and the rest of the chunk it is reading.
    var heldBytes: Int {
        if streaming { return frames.byteCount + gathered.count }
        switch state {
        case .fixed(let remaining), .chunkData(let remaining): return count + remaining
        default: return count
        }
    }

    /// The body, once complete; the reader gives its frames away.
    mutating func take() -> [Frame] {
        defer { frames = [] }
        return frames
    }

    /// What arrived of a streaming body since the last call, in frames; the reader gives them away.
    mutating func takeAvailable() -> [Frame] {
        streaming = true
        flushGathered()
        return take()
    }

    /// Takes what it can of `bytes`: all of them, unless the body ends first. Returns how many it took.
    mutating func consume(_ bytes: UnsafeRawBufferPointer) throws(HTTPMessageError) -> Int {
        var taken = 0
        while taken < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[taken...])
            switch state {
            case .fixed(let remaining):
                let count = min(remaining, rest.count)
                fixedFrame?.withUnsafeMutableBytes { frame in
                    UnsafeMutableRawBufferPointer(rebasing: frame[self.count..<self.count + count]).copyMemory(from: UnsafeRawBufferPointer(rebasing: rest[..<count]))
                }
                taken += count
                filledDirectly(count)
            case .fixedStreaming(let remaining):
                let count = min(remaining, rest.count)
                // Its length was admitted whole.
                gather(UnsafeRawBufferPointer(rebasing: rest[..<count]))
                taken += count
                if remaining == count {
                    finish()
                    return taken
                }
                state = .fixedStreaming(remaining: remaining - count)
            case .chunkSize(var size, var digits, var part, var lineBytes):
                let byte = rest[0]
                taken += 1
                lineBytes += 1
                guard lineBytes <= Self.maxChunkLineBytes else { throw HTTPMessageError("a chunk-size line of \(subject) is over \(Self.maxChunkLineBytes) bytes") }
                if case .lineFeed = part {
                    guard byte == UInt8(ascii: "\n") else { throw HTTPMessageError("a chunk-size line of \(subject) has a bare CR") }
                    guard digits > 0 else { throw HTTPMessageError("\(subject) has a chunk without a size") }
                    if size == 0 {
                        state = .trailers(lineBytes: 0, totalBytes: 0, lineFeed: false)
                    } else {
                        try admit(size)
                        state = .chunkData(remaining: size)
                    }
                    continue
                }
                switch byte {
                case UInt8(ascii: "\r"):
                    part = .lineFeed
                case UInt8(ascii: "\n"):
                    throw HTTPMessageError("a chunk-size line of \(subject) ends in a bare LF, not CR LF")
                case UInt8(ascii: ";") where part != .chunkExtension:
                    part = .chunkExtension
                case UInt8(ascii: " "), UInt8(ascii: "\t"):
                    if part == .size { part = .whitespace }
                default:
                    switch part {
                    case .size:
                        guard let value = Self.hexValue(byte), digits < 15 else { throw HTTPMessageError("\(subject) has an invalid chunk size") }
                        size = size << 4 | value
                        digits += 1
                    case .chunkExtension:
                        guard byte >= 0x20 && byte != 0x7F else { throw HTTPMessageError("a chunk extension of \(subject) has a control byte") }
                    case .whitespace, .lineFeed:
                        throw HTTPMessageError("\(subject) has an invalid chunk size")
                    }
                }
                state = .chunkSize(size: size, digits: digits, part: part, lineBytes: lineBytes)
            case .chunkData(let remaining):
                let count = min(remaining, rest.count)
                gather(UnsafeRawBufferPointer(rebasing: rest[..<count]))
                taken += count
                state = remaining == count ? .chunkDataEnd(seen: 0) : .chunkData(remaining: remaining - count)
            case .chunkDataEnd(let seen):
                let expected = seen == 0 ? UInt8(ascii: "\r") : UInt8(ascii: "\n")
                guard rest[0] == expected else { throw HTTPMessageError("a chunk of \(subject) is longer than its size says") }
                taken += 1
                state = seen == 0 ? .chunkDataEnd(seen: 1) : .chunkSize(size: 0, digits: 0, part: .size, lineBytes: 0)
            case .trailers(let lineBytes, let totalBytes, let lineFeed):
                let byte = rest[0]
                taken += 1
                guard totalBytes < HTTPHeadBuffer.maxBytes else { throw HTTPMessageError("the trailers of \(subject) are over \(HTTPHeadBuffer.maxBytes) bytes") }
                if lineFeed {
                    guard byte == UInt8(ascii: "\n") else { throw HTTPMessageError("a trailer line of \(subject) has a bare CR") }
                    if lineBytes == 0 {
                        finish()
                        return taken
                    }
                    state = .trailers(lineBytes: 0, totalBytes: totalBytes + 1, lineFeed: false)
                } else if byte == UInt8(ascii: "\r") {
                    state = .trailers(lineBytes: lineBytes, totalBytes: totalBytes + 1, lineFeed: true)
                } else if byte == UInt8(ascii: "\n") {
                    throw HTTPMessageError("a trailer line of \(subject) ends in a bare LF, not CR LF")
                } else if byte < 0x20 && byte != 0x09 || byte == 0x7F {
                    throw HTTPMessageError("a trailer line of \(subject) has a control byte")
                } else {
                    state = .trailers(lineBytes: lineBytes + 1, totalBytes: totalBytes + 1, lineFeed: false)
                }
            case .untilClose:
                try admit(rest.count)
                gather(rest)
                taken += rest.count
            case .complete:
                return taken
            }
        }
        return taken
    }

    /// Room in the body's frame for bytes that may be read straight into it, when the body's length is known;
    /// nil otherwise.
    func directRoom() -> UnsafeMutableRawBufferPointer? {
        guard case .fixed(let remaining) = state, let fixedFrame else { return nil }
        return fixedFrame.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[count..<count + remaining]) }
    }

    /// `count` bytes were written into `directRoom()`.
    mutating func filledDirectly(_ filled: Int) {
        guard case .fixed(let remaining) = state else { return }
        count += filled
        if remaining == filled {
            if let fixedFrame { frames.append(fixedFrame) }
            fixedFrame = nil
            state = .complete
        } else {
            state = .fixed(remaining: remaining - filled)
        }
    }

    /// The connection closed. Returns whether the body is complete: one whose end is the end of the connection now
    /// is; any other is cut short.
    mutating func endOfInput() -> Bool {
        switch state {
        case .untilClose:
            finish()
            return true
        case .complete:
            return true
        default:
            return false
        }
    }

    private func admit(_ more: Int) throws(HTTPMessageError) {
        guard let limit = streamable ? maxStreamedBytes : maxBytes else { return }
        guard count + more <= limit else {
            throw HTTPMessageError("the body of \(subject) is over the \(limit)-byte limit", kind: .bodyTooLarge)
        }
    }

    /// Body bytes of unknown total length, gathered into frames of up to 256 KiB.
    private mutating func gather(_ bytes: UnsafeRawBufferPointer) {
        count += bytes.count
        var rest = bytes
        while !rest.isEmpty {
            if gathered.isEmpty { gathered.reserveCapacity(min(Self.gatheredFrameBytes, max(rest.count, 4096))) }
            let step = min(rest.count, Self.gatheredFrameBytes - gathered.count)
            gathered.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[..<step]))
            rest = UnsafeRawBufferPointer(rebasing: rest[step...])
            if gathered.count == Self.gatheredFrameBytes { flushGathered() }
        }
    }

    private mutating func flushGathered() {
        guard !gathered.isEmpty else { return }
        frames.append(Frame(gathered))
        gathered.removeAll(keepingCapacity: false)
    }

    private mutating func finish() {
        flushGathered()
        state = .complete
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
