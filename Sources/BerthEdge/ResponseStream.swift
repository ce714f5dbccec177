import BerthWire

/// The edge's side of one answer that streams to its client: how its body is framed on the client's connection, the
/// credit the edge grants its sidecar, and how it ends. No socket and no clock: the server feeds it each piece that
/// arrives and what its client's socket took, and does what it says (Tests/BerthEdgeTests/ResponseStreamTests.swift).
///
/// Credit: the edge holds at most `window` bytes of the body at once (arrived and not written to the client), so a
/// client that reads slowly stops the grants, then the sidecar's reads, then the app's writes.
struct ResponseStream {
    /// Bytes of body the sidecar may send before the edge grants more (`Request.stream_window`).
    static let window = Streaming.window

    /// How the body is framed for the client.
    enum Framing: Equatable {
        /// The app said its length: the bytes go as they are, and a body that ends short is cut.
        case length(Int)
        /// HTTP/1.1 chunked coding: a clean end is the last chunk, a cut one has none.
        case chunked
        /// HTTP/1.0: the end of the connection ends the body.
        case untilClose
    }

    enum Phase: Equatable {
        case open
        /// Its last piece came and is written as such.
        case finished
        /// Cut: the client's connection must end without a clean end of the body (reset).
        case failed(String)
    }

    /// What to do with a piece.
    enum Step: Equatable {
        /// Write `before`, the piece's bytes, then `after`; `ends`: the body is whole with them.
        case write(before: [UInt8], after: [UInt8], ends: Bool)
        /// Cut the client's connection (reset): the body must not look whole.
        case reset(String)
    }

    let id: UInt64
    let framing: Framing
    private(set) var phase = Phase.open
    private(set) var credit: CreditReceiver
    /// Body bytes that arrived.
    private(set) var bytes = 0

    /// `length`: the app's Content-Length, if it said one; `minorVersion`: the client's HTTP/1.x; `switched`: the
    /// answer is a 101, and its body the new protocol's bytes (a WebSocket), which end with the connection.
    init(id: UInt64, length: Int?, minorVersion: Int, switched: Bool = false, window: Int = Self.window) {
        self.id = id
        if switched {
            framing = .untilClose
        } else if let length {
            framing = .length(length)
        } else {
            framing = minorVersion >= 1 ? .chunked : .untilClose
        }
        credit = CreditReceiver(window: window, initialGrant: window)
    }

    /// The length to put in the head: nil when the body is chunked or ends with the connection.
    var headLength: Int? {
        if case .length(let length) = framing { length } else { nil }
    }

    /// A piece arrived: `count` body bytes, the last when `final`, and `failed` when the sender cut the body.
    mutating func piece(_ count: Int, final: Bool, failed: String?) -> Step {
        guard phase == .open else { return .reset("a piece came after the stream ended") }
        if let failed { return fail(failed) }
        do {
            try credit.receive(count)
        } catch {
            return fail(error.message)
        }
        bytes += count
        var before: [UInt8] = []
        var after: [UInt8] = []
        switch framing {
        case .length(let length):
            if bytes > length { return fail("the app sent \(bytes) bytes of a \(length)-byte body") }
            if final && bytes < length { return fail("the app's body ended after \(bytes) of its \(length) bytes") }
        case .chunked:
            if count > 0 {
                before = Array(String(count, radix: 16).utf8) + [0x0D, 0x0A]
                after = [0x0D, 0x0A]
            }
            if final { after += Array("0\r\n\r\n".utf8) }
        case .untilClose:
            break
        }
        if final { phase = .finished }
        return .write(before: before, after: after, ends: final)
    }

    /// The client's socket left `pendingBytes` queued: what it took is handed on, and a grant may be due.
    mutating func written(pendingBytes: Int) -> Int? {
        guard phase == .open else { return nil }
        let unwritten = min(credit.held, pendingBytes)
        return credit.consume(credit.held - unwritten)
    }

    /// The stream was cut where it came from (the instance was lost).
    mutating func lost(_ reason: String) -> Step {
        guard phase == .open else { return .reset(reason) }
        return fail(reason)
    }

    private mutating func fail(_ reason: String) -> Step {
        phase = .failed(reason)
        return .reset(reason)
    }
}
