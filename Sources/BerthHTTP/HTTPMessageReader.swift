import BerthBus

/// A message head a reader can parse: a request's or a response's.
package protocol HTTPMessageHead: Sendable {
    /// What the parse needs beyond the bytes (for a response, whether the request was HEAD).
    associatedtype Context: Sendable
    /// Whose message, for error messages: "the request", "the app's answer".
    static var subject: String { get }
    /// Parses a whole head, CR LF CR LF included. Returns nil for an interim head to skip (a 1xx answer).
    static func parse(_ bytes: ArraySlice<UInt8>, context: Context) throws(HTTPMessageError) -> (Self, HTTPFraming)?
}

/// Reads one HTTP/1.1 message as its bytes arrive, in pieces of any size: the head, then the body as the head frames
/// it (`HTTPBodyReader`).
package struct HTTPMessageReader<Head: HTTPMessageHead> {
    package static var maxHeadBytes: Int { HTTPHeadBuffer.maxBytes }

    private let context: Head.Context
    package let maxBodyBytes: Int
    private var headBuffer = HTTPHeadBuffer()
    /// Set as soon as the head is read, also when its body is then refused: an answer to it may need it.
    package private(set) var head: Head?
    private var body: HTTPBodyReader?
    /// Bodies of known length over this stream; nil: every body is read whole (see `HTTPBodyReader`).
    private let streamAbove: Int?
    /// The limit of a body that streams; nil: none.
    private let maxStreamedBytes: Int?

    package init(context: Head.Context, maxBodyBytes: Int, streamAbove: Int? = nil, maxStreamedBytes: Int? = nil) {
        self.context = context
        self.maxBodyBytes = maxBodyBytes
        self.streamAbove = streamAbove
        self.maxStreamedBytes = maxStreamedBytes
    }

    /// The body has a known length over `streamAbove`: it streams from its first byte.
    package var bodyStreamsFromStart: Bool { body?.streamsFromStart ?? false }

    /// Body bytes taken so far.
    package var bodyCount: Int { body?.count ?? 0 }

    /// What arrived of a streaming body since the last call; the reader gives its frames away.
    package mutating func takeAvailableBody() -> [Frame] {
        body?.takeAvailable() ?? []
    }

    package var isComplete: Bool { body?.isComplete ?? false }

    /// Bytes the body holds or is promised so far (see `HTTPBodyReader.heldBytes`): what a limit on the memory of
    /// many bodies counts.
    package var bodyBytesHeld: Int { body?.heldBytes ?? 0 }

    /// True once any byte of the message arrived, an interim 1xx answer included.
    package private(set) var hasStarted = false

    /// The body, once `isComplete`; the reader gives its frames away.
    package mutating func takeBody() -> [Frame] {
        body?.take() ?? []
    }

    /// Takes what it can of `bytes`: all of them, unless the message ends first. Returns how many it took.
    package mutating func consume(_ bytes: UnsafeRawBufferPointer) throws(HTTPMessageError) -> Int {
        if !bytes.isEmpty { hasStarted = true }
        var taken = 0
        while taken < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[taken...])
            if body != nil {
                return try taken + body!.consume(rest)
            }
            let (count, headBytes) = try headBuffer.take(rest, subject: Head.subject)
            taken += count
            guard let headBytes, let (head, framing) = try Head.parse(headBytes, context: context) else { continue }
            self.head = head
            body = try HTTPBodyReader(
                framing, maxBytes: maxBodyBytes, subject: Head.subject, streamAbove: streamAbove, maxStreamedBytes: maxStreamedBytes
            )
        }
        return taken
    }

    /// Room in the body's frame for bytes that may be read straight into it, when the body's length is known;
    /// nil otherwise.
    package func directBodyRoom() -> UnsafeMutableRawBufferPointer? {
        body?.directRoom()
    }

    /// `count` bytes were written into `directBodyRoom()`.
    package mutating func filledDirectly(_ count: Int) {
        body?.filledDirectly(count)
    }

    /// The connection closed. Returns whether the message is complete: one whose end is the end of the connection
    /// now is; any other is cut short.
    package mutating func endOfInput() -> Bool {
        body?.endOfInput() ?? false
    }
}
