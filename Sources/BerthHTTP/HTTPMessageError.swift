/// An HTTP/1.1 message that is not framed as RFC 9112 says, or is over a limit: what was wrong, in words for a log
/// line or an error body.
package struct HTTPMessageError: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
    /// The body passed its limit: the message is refused for its size, not its form.
    package var tooLarge = false
    /// The head passed its limit.
    package var headTooLarge = false

    package init(_ description: String, tooLarge: Bool = false, headTooLarge: Bool = false) {
        self.description = description
        self.tooLarge = tooLarge
        self.headTooLarge = headTooLarge
    }
}
