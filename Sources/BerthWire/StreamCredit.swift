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
    /// Bytes granted and not yet sent.
    public private(set) var available: Int

    public init(initial: Int) {
        available = max(0, initial)
    }

    /// Nothing may be sent until more is granted: the sender stops reading its own source.
    public var isBlocked: Bool { available <= 0 }

    /// The receiver granted `bytes` more.
    public mutating func granted(_ bytes: UInt64) {
        available = Int(clamping: UInt64(clamping: available) &+ min(bytes, UInt64(Int.max / 2)))
    }

    /// `bytes` went out; they must fit in what was granted.
    public mutating func sent(_ bytes: Int) {
        available -= bytes
    }
}

/// The receiving side: what it granted, what arrived, what it handed on, and when to grant more.
public struct CreditReceiver: Sendable, Hashable {
    /// The most the receiver holds for this stream at once: bytes granted and not yet handed on.
    public let window: Int
    public private(set) var granted: Int
    public private(set) var received = 0
    public private(set) var consumed = 0

    /// Why a sender's bytes are refused.
    public struct Overrun: Error, Sendable, Hashable {
        public var message: String
    }

    /// `initialGrant`: what the sender may send before it hears a grant (0: nothing until `grant()`).
    public init(window: Int, initialGrant: Int) {
        self.window = max(1, window)
        granted = max(0, initialGrant)
    }

    /// Bytes that arrived: more than was granted breaks the protocol, and the stream fails.
    public mutating func receive(_ bytes: Int) throws(Overrun) {
        guard received + bytes <= granted else {
            throw Overrun(message: "the sender sent \(received + bytes - granted) bytes more than the \(granted) it was granted")
        }
        received += bytes
    }

    /// Bytes the receiver handed on (written to its socket). Returns a grant to send, if one is due: once no more than
    /// half the window is outstanding, the window is filled again, so grants come in steps of half a window or more.
    public mutating func consume(_ bytes: Int) -> Int? {
        consumed = min(received, consumed + bytes)
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

    /// Bytes that arrived and were not handed on yet.
    public var held: Int { received - consumed }
}
