/// A bus frame that could not be decoded: not protobuf, or protobuf that breaks a rule of `Proto/berth.proto`.
public struct WireError: Error, CustomStringConvertible, Sendable, Hashable {
    /// What kind of problem the frame has.
    public enum Code: Sendable, Hashable {
        /// The bytes are not a valid protobuf encoding of the message.
        case malformed
        /// The message decoded but carries nothing: no `kind` is set.
        case empty
        /// A field the message cannot do without is absent or empty.
        case missingField
        /// The sender speaks a protocol version this build does not.
        case unsupportedVersion
        /// A field holds a value outside its allowed range, or a string that is not UTF-8.
        case invalidValue
    }

    /// What kind of problem the frame has.
    public var code: Code
    /// One line that names the message and field and says what was wrong, e.g. `Request.method is empty`.
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
