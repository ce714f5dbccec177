/// A compose file that cannot be used, and where: the file, the line and column, and the dotted key.
///
/// Its description reads like a compiler diagnostic:
/// `demo.yaml:12:11: containers.ContainerA.port: 70000 is out of range 1...65535`.
public struct ComposeError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of problem this is, for code that wants to tell them apart without reading messages.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public var description: String

        /// The file could not be read.
        public static let unreadable = Code(description: "unreadable")
        /// The text is not valid YAML.
        public static let syntax = Code(description: "syntax")
        /// A key that this place in the file does not take.
        public static let unknownKey = Code(description: "unknownKey")
        /// A required key is absent (or null).
        public static let missingKey = Code(description: "missingKey")
        /// A value of the wrong kind: a list where a number belongs, a mapping where a string belongs, …
        public static let wrongType = Code(description: "wrongType")
        /// A value of the right kind that is not allowed: a port out of range, an unknown signal, …
        public static let invalidValue = Code(description: "invalidValue")
        /// A key or value given twice where it must be unique: a container name, a route path, …
        public static let duplicate = Code(description: "duplicate")
        /// A name that refers to something the file does not define, such as a route to an unknown container.
        public static let undefinedReference = Code(description: "undefinedReference")
    }

    /// What kind of problem this is.
    public var code: Code
    /// The compose file, as the path was given.
    public var file: String
    /// The line of the offending node, from 1, when known.
    public var line: Int?
    /// The column of the offending node, from 1 (in Unicode scalars), when known.
    public var column: Int?
    /// The dotted path of the offending key, e.g. `containers.ContainerA.port` or `edge.routes[1].path`;
    /// empty when the problem is the whole file.
    public var key: String
    /// What is wrong, in a sentence a user can act on.
    public var message: String

    public init(code: Code, file: String, line: Int?, column: Int?, key: String, message: String) {
        self.code = code
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.message = message
    }

    public var description: String {
        var location = file
        if let line {
            location += ":\(line)"
            if let column { location += ":\(column)" }
        }
        return key.isEmpty ? "\(location): \(message)" : "\(location): \(key): \(message)"
    }
}
