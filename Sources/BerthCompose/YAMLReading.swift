import Yams

/// A YAML node together with the dotted key it sits at and the file it came from, so that every error about it
/// can say exactly where it is.
struct Located {
    var node: Node
    var key: String
    var file: String

    var line: Int? { node.mark?.line }
    var column: Int? { node.mark?.column }

    func error(_ code: ComposeError.Code, _ message: String) -> ComposeError {
        ComposeError(code: code, file: file, line: line, column: column, key: key, message: message)
    }

    func child(_ node: Node, key name: String) -> Located {
        Located(node: node, key: key.isEmpty ? name : "\(key).\(name)", file: file)
    }

    /// Whether the node resolves to the YAML type `name` (plain `8080` is `.int`, quoted `"8080"` is `.str`).
    func has(tag name: Tag.Name) -> Bool {
        node.tag == Tag(name)
    }

    var isNull: Bool {
        if case .scalar(let scalar) = node { return scalar.style == .plain && node.null != nil }
        return false
    }

    /// How the node reads in an error message: `'abc'`, `a list`, `a mapping`, `null`.
    var shown: String {
        // `if case` rather than `switch`: Yams 6 adds an `alias` case that Yams 5 lacks.
        if case .scalar(let scalar) = node { return isNull ? "null" : "'\(scalar.string)'" }
        if case .mapping = node { return "a mapping" }
        if case .sequence = node { return "a list" }
        return "an alias"
    }

    /// The scalar's text as written (numbers and bools too, unconverted); null is missing.
    func text(expecting what: String = "a string") throws(ComposeError) -> String {
        guard case .scalar(let scalar) = node, !isNull else {
            throw error(.wrongType, "expected \(what), got \(shown)")
        }
        return scalar.string
    }

    func int() throws(ComposeError) -> Int {
        guard case .scalar = node, has(tag: .int), let value = node.int else {
            throw error(.wrongType, "expected an integer, got \(shown)")
        }
        return value
    }

    func int(in range: ClosedRange<Int>, what: String = "") throws(ComposeError) -> Int {
        let value = try int()
        guard range.contains(value) else {
            if range.upperBound == .max {
                throw error(.invalidValue, "\(value) is too small; \(what.isEmpty ? "it" : what) must be at least \(range.lowerBound)")
            }
            throw error(.invalidValue, "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    func bool() throws(ComposeError) -> Bool {
        guard case .scalar = node, has(tag: .bool), let value = node.bool else {
            throw error(.wrongType, "expected true or false, got \(shown)")
        }
        return value
    }

    func port() throws(ComposeError) -> Int {
        try int(in: 1...65535)
    }

    /// A duration such as `250ms`, `1m30s` or a bare integer of seconds.
    func duration(allowingZero: Bool = false) throws(ComposeError) -> Duration {
        let written = try text(expecting: "a duration like 30s")
        guard let value = DurationParser.parse(written) else {
            throw error(.invalidValue, "'\(written)' is not a duration; use a number with ms, s, m or h, like 250ms, 30s, 10m or 1m30s")
        }
        guard allowingZero || value > .zero else {
            throw error(.invalidValue, "must be longer than zero")
        }
        return value
    }

    /// The elements of a list, each keyed `key[i]`.
    func sequence() throws(ComposeError) -> [Located] {
        guard case .sequence(let sequence) = node else {
            throw error(.wrongType, "expected a list, got \(shown)")
        }
        return sequence.enumerated().map { index, element in
            Located(node: element, key: "\(key)[\(index)]", file: file)
        }
    }

    /// An executable and its arguments: a list (preferred) or a string split on spaces.
    func command() throws(ComposeError) -> [String] {
        var words: [String] = []
        if case .sequence = node {
            for element in try sequence() {
                words.append(try element.text(expecting: "a string"))
            }
        } else {
            words = try text(expecting: "a list of strings").split(separator: " ").map(String.init)
        }
        guard let executable = words.first, !executable.isEmpty else {
            throw error(.invalidValue, "the command is empty; give the executable and its arguments, like [\"python3\", \"app.py\"]")
        }
        return words
    }

    /// The entries of a mapping, keys as written, with duplicate keys rejected.
    func entries() throws(ComposeError) -> [(name: String, key: Located, value: Located)] {
        guard case .mapping(let mapping) = node else {
            throw error(.wrongType, "expected a mapping, got \(shown)")
        }
        var result: [(name: String, key: Located, value: Located)] = []
        var firsts: [String: Located] = [:]
        for (keyNode, valueNode) in mapping {
            let keyed = child(keyNode, key: keyNode.scalar?.string ?? "")
            guard case .scalar(let scalar) = keyNode else {
                throw keyed.error(.wrongType, "a key must be a plain string, not \(keyed.shown)")
            }
            if let first = firsts[scalar.string] {
                throw keyed.error(.duplicate, givenTwice("'\(scalar.string)'", first: first))
            }
            firsts[scalar.string] = keyed
            result.append((scalar.string, keyed, child(valueNode, key: scalar.string)))
        }
        return result
    }
}

/// A mapping whose keys must come from a fixed set, read one field at a time. A field whose value is null counts as
/// absent, so `working_dir:` with nothing after it means the default.
struct MappingReader {
    let located: Located
    /// Where to point when a required key is missing: the key that names this mapping, or the mapping itself.
    let anchor: Located
    private let values: [String: Located]

    init(_ located: Located, anchor: Located? = nil, allowed: [String], ignoringPrefix ignored: String? = nil) throws(ComposeError) {
        self.located = located
        self.anchor = anchor ?? located
        var values: [String: Located] = [:]
        for (name, key, value) in try located.entries() {
            if let ignored, name.hasPrefix(ignored) { continue }
            guard allowed.contains(name) else {
                throw key.error(.unknownKey, Self.unknownKeyMessage(name, allowed: allowed))
            }
            if !value.isNull { values[name] = value }
        }
        self.values = values
    }

    subscript(_ name: String) -> Located? { values[name] }

    func required(_ name: String, _ hint: String) throws(ComposeError) -> Located {
        guard let value = values[name] else {
            let key = located.key.isEmpty ? name : "\(located.key).\(name)"
            throw ComposeError(code: .missingKey, file: anchor.file, line: anchor.line, column: anchor.column, key: key, message: "missing; \(hint)")
        }
        return value
    }

    static func unknownKeyMessage(_ name: String, allowed: [String]) -> String {
        let allowedList = allowed.map { "'\($0)'" }.joined(separator: ", ")
        let closest = allowed.map { (key: $0, distance: editDistance(name, $0)) }.min { $0.distance < $1.distance }
        if let closest, closest.distance <= 2 {
            return "unknown key '\(name)'; did you mean '\(closest.key)'? (allowed: \(allowedList))"
        }
        return "unknown key '\(name)'; allowed keys are \(allowedList)"
    }
}

/// "WHAT is given twice; the first is on line N".
func givenTwice(_ what: String, first: Located) -> String {
    "\(what) is given twice" + (first.line.map { "; the first is on line \($0)" } ?? "")
}

/// Levenshtein distance: single-character insertions, deletions and substitutions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var previous = Array(0...b.count)
    for i in a.indices {
        var current = [i + 1]
        for j in b.indices {
            current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (a[i] == b[j] ? 0 : 1)))
        }
        previous = current
    }
    return previous[b.count]
}

/// Names usable in topics and log prefixes: ASCII letters, digits, `-` and `_`.
func isIdentifier(_ text: String) -> Bool {
    !text.isEmpty && text.unicodeScalars.allSatisfy { scalar in
        scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "-" || scalar == "_")
    }
}
