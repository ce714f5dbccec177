/// An HTTP/1.1 message that is not framed as RFC 9112 says, or is over a limit: what was wrong, in words for a log
/// line or an error body, and of which kind, so that the edge can answer it with the right status.
package struct HTTPMessageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of wrong: each becomes one status at the edge.
    package enum Kind: Sendable, Equatable {
        /// Not HTTP/1.1 as RFC 9112 reads it, or readable two ways (400).
        case malformed
        /// The body passed its limit: the message is refused for its size, not its form (413).
        case bodyTooLarge
        /// The head passed its limit (431).
        case headTooLarge
        /// The request line passed its limit (414).
        case targetTooLong
        /// Well formed, but asks for what the reader does not do: a transfer coding other than chunked, a tunnel (501).
        case notImplemented
        /// An HTTP version other than 1.0 and 1.1, well formed (505).
        case versionNotSupported
    }

    package var description: String
    package var kind: Kind

    /// The body passed its limit.
    package var tooLarge: Bool { kind == .bodyTooLarge }
    /// The head passed its limit.
    package var headTooLarge: Bool { kind == .headTooLarge }

    package init(_ description: String, kind: Kind = .malformed) {
        self.description = description
        self.kind = kind
    }

    package init(_ description: String, tooLarge: Bool) {
        self.init(description, kind: tooLarge ? .bodyTooLarge : .malformed)
    }
}
