/// Credit-based flow control of one streamed body, as `Proto/berth.proto` describes it: the receiver grants bytes,
/// the sender sends no more than it was granted. Two plain values, one per side, with no socket and no clock; the
/// drivers ask them what to do (Tests/BerthWireTests/StreamCreditTests.swift).

/// When a body streams, and how much of it may be on its way at once: one place for the edge and the sidecar.
public enum Streaming {
    /// Bodies of known length over this stream; bodies of unknown length stream once they are over it, or not whole
    /// when their sender pauses. At or under it, a body goes whole in one message, the fast path.
    public static let threshold = 1 << 20
    /// The window of one streamed body: what a receiver grants at once, so the most any process holds of it.
    public static let window = 2 << 20
}

/// The sending side: how much it may still send.
public struct CreditSender: Sendable, Hashable {
    /// Credit granted and not yet spent.
    public private(set) var available: Int

    public init(initial: Int) {
        available = max(0, initial)
    }

    /// Nothing may be sent until more is granted: the sender stops reading its own source. Less than the cost of
    /// the smallest piece is none.
    public var isBlocked: Bool { available < Streaming.minimumPieceCost }

    /// The receiver granted `bytes` more.
    public mutating func granted(_ bytes: UInt64) {
        available = Int(clamping: UInt64(clamping: available) &+ min(bytes, UInt64(Int.max / 2)))
    }

    /// A piece of `bytes` went out; its cost must fit in what was granted.
    public mutating func sent(_ bytes: Int) {
        available -= Streaming.cost(ofPiece: bytes)
    }
}

extension Streaming {
    /// The least credit a piece with bytes costs, so that a window holds a bounded number of messages (the bus's
    /// high-water mark is 10,000): a stream of 20-byte events to a client that stopped reading fills its 2 MiB window
    /// after 2,048 pieces, not 100,000.
    public static let minimumPieceCost = 1 << 10

    /// What a piece of `bytes` costs in credit: its bytes, and at least `minimumPieceCost`; an empty last piece costs
    /// nothing.
    public static func cost(ofPiece bytes: Int) -> Int {
        bytes == 0 ? 0 : max(bytes, minimumPieceCost)
    }
}

/// The receiving side: what it granted, what arrived, what it handed on, and when to grant more. Credit counts
/// each piece's cost (`Streaming.cost(ofPiece:)`); a piece's cost comes back once all its bytes are handed on.
public struct CreditReceiver: Sendable, Hashable {
    /// The most the receiver holds for this stream at once: credit granted and not yet handed on.
    public let window: Int
    public private(set) var granted: Int
    /// Credit the pieces that arrived cost, and the part of it handed on.
    public private(set) var received = 0
    public private(set) var consumed = 0
    /// Bytes that arrived and were not handed on yet.
    public private(set) var held = 0
    /// The pieces not wholly handed on, in order: bytes left of each, and its cost.
    private var pieces: [Piece] = []
    private var first = 0

    private struct Piece: Sendable, Hashable {
        var bytes: Int
        let cost: Int
    }

    /// Why a sender's bytes are refused.
    public struct Overrun: Error, Sendable, Hashable {
        public var message: String
    }

    /// `initialGrant`: what the sender may send before it hears a grant (0: nothing until `grant()`).
    public init(window: Int, initialGrant: Int) {
        self.window = max(1, window)
        granted = max(0, initialGrant)
    }

    /// A piece of `bytes` arrived: more than was granted breaks the protocol, and the stream fails.
    public mutating func receive(_ bytes: Int) throws(Overrun) {
        let cost = Streaming.cost(ofPiece: bytes)
        guard received + cost <= granted else {
            throw Overrun(message: "the sender sent \(received + cost - granted) bytes more than the \(granted) it was granted")
        }
        received += cost
        guard bytes > 0 else { return }
        held += bytes
        pieces.append(Piece(bytes: bytes, cost: cost))
    }

    /// Bytes the receiver handed on (written to its socket), in the order they came. Returns a grant to send, if one
    /// is due: once no more than half the window is outstanding, the window is filled again, so grants come in steps
    /// of half a window or more.
    public mutating func consume(_ bytes: Int) -> Int? {
        var left = min(bytes, held)
        held -= left
        while left > 0 && first < pieces.count {
            let step = min(left, pieces[first].bytes)
            pieces[first].bytes -= step
            left -= step
            if pieces[first].bytes == 0 {
                consumed += pieces[first].cost
                first += 1
            }
        }
        if first > 64 && first * 2 > pieces.count {
            pieces.removeFirst(first)
            first = 0
        }
        return due()
    }

    /// The first grant, or one due now: fills the window.
    public mutating func grant() -> Int? {
        let outstanding = granted - consumed
        guard outstanding < window else { return nil }
        granted += window - outstanding
        return window - outstanding
    }

    private mutating func due() -> Int? {
        granted - consumed <= window / 2 ? grant() : nil
    }
}
