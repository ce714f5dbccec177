import BerthWire

/// How a message says where its body ends (RFC 9112 §6).
package enum HTTPFraming: Equatable, Sendable {
    case none
    case length(Int)
    case chunked
    case untilClose
}

/// The bytes of a message head, gathered as they arrive until the blank line that ends it.
struct HTTPHeadBuffer {
    static let maxBytes = 64 << 10

    private var bytes: [UInt8] = []
    /// Where the search for the blank line resumes.
    private var scanned = 0

    /// Takes what it can of `input`. Returns how many bytes it took and, once the head is whole, the head (its
    /// CR LF CR LF included); the buffer is then empty for the next head.
    /// - Throws: when the head grows past `maxBytes` without ending.
    mutating func take(_ input: UnsafeRawBufferPointer, subject: String) throws(HTTPMessageError) -> (taken: Int, head: ArraySlice<UInt8>?) {
        // Empty lines before a head are skipped (RFC 9112 §2.2): a client may send one after a body.
        var skipped = 0
        if bytes.isEmpty {
            while skipped < input.count && (input[skipped] == UInt8(ascii: "\r") || input[skipped] == UInt8(ascii: "\n")) { skipped += 1 }
        }
        let before = bytes.count
        let count = min(input.count - skipped, Self.maxBytes - before)
        bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[skipped..<skipped + count]))
        guard let end = try findEnd(subject: subject) else {
            guard bytes.count < Self.maxBytes else {
                throw HTTPMessageError("the head of \(subject) is over \(Self.maxBytes) bytes", kind: .headTooLarge)
            }
            return (skipped + count, nil)
        }
        let head = bytes[..<end]
        bytes = []
        scanned = 0
        return (skipped + end - before, head)
    }

    /// The index just past the blank line that ends the head, scanning only bytes not looked at before.
    ///
    /// Every line must end in CR LF. RFC 9112 §2.2 lets a server read a bare LF as a line's end, or refuse it; a
    /// proxy that reads it one way before an app that reads it the other lets a request hide inside another (a blank
    /// line of a bare LF once ended the head early here, and the body reached the app as a request), so the edge
    /// refuses both a bare LF and a bare CR, as soon as it sees one.
    /// - Throws: at a bare LF or a CR not followed by LF.
    private mutating func findEnd(subject: String) throws(HTTPMessageError) -> Int? {
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        let start = scanned
        scanned = bytes.count
        enum Scan { case end(Int), bareLineBreak, more }
        let scan: Scan = bytes.withUnsafeBufferPointer { bytes in
            for index in start..<bytes.count {
                let previous = index > 0 ? bytes[index - 1] : 0
                if bytes[index] == lf {
                    guard previous == cr else { return .bareLineBreak }
                    if index >= 3 && bytes[index - 2] == lf && bytes[index - 3] == cr { return .end(index + 1) }
                } else if previous == cr {
                    return .bareLineBreak
                }
            }
            return .more
        }
        switch scan {
        case .end(let end): return end
        case .bareLineBreak: throw HTTPMessageError("\(subject) has a bare CR or LF in its head: every line must end in CR LF")
        case .more: return nil
        }
    }
}

/// The lines of a head, each without its CR LF, as slices of it: nothing is copied.
struct HTTPLines {
    private let bytes: ArraySlice<UInt8>
    private var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    mutating func next() -> ArraySlice<UInt8>? {
        guard position < bytes.endIndex else { return nil }
        let end = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
        var line = bytes[position..<end]
        position = end + 1
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        return line
    }
}

/// The header lines of a head, and what of them decides the framing and the connection.
struct HTTPHeaderFields {
    var headers: [Header] = []
    var contentLength: Int?
    /// A Transfer-Encoding header was sent.
    var transferEncoded = false
    /// The transfer codings of every Transfer-Encoding header, in order, lowercased, empty list items left out.
    var transferCodings: [String] = []
    /// The last coding is chunked.
    var chunked: Bool { transferCodings.last == "chunked" }
    var connectionClose = false
    var connectionKeepAlive = false
    var expectsContinue = false
    /// The values of the Host headers.
    var hosts: [String] = []

    /// Parses the lines after the start line, up to the blank one.
    ///
    /// `strictValues`: a value with a control byte other than HTAB (RFC 9110 §5.5), or bytes that are not UTF-8, is
    /// refused, not passed on. Values travel the bus as text, which would cut one at a NUL and change bytes that are
    /// not UTF-8; an app could also read a control byte as the end of a line.
    init(_ lines: inout HTTPLines, subject: String, strictValues: Bool = false) throws(HTTPMessageError) {
        headers.reserveCapacity(16) // grown one doubling at a time, a typical head's dozen cost four allocations
        while let line = lines.next() {
            if line.isEmpty { break }
            guard line.first != UInt8(ascii: " ") && line.first != UInt8(ascii: "\t") else {
                throw HTTPMessageError("\(subject) folds a header over two lines, which HTTP/1.1 forbids")
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                  line[line.startIndex..<colon].allSatisfy(HTTPSyntax.isTokenByte) else {
                throw HTTPMessageError("\(subject) has a malformed header line")
            }
            var value = line[(colon + 1)...]
            while let first = value.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { value = value.dropFirst() }
            while let last = value.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { value = value.dropLast() }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
            if strictValues {
                if let control = value.first(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
                    throw HTTPMessageError("\(subject) has a control byte (0x\(String(control, radix: 16))) in the value of its header \(name)")
                }
                if value.contains(where: { $0 >= 0x80 }) && String(validating: value, as: UTF8.self) == nil {
                    throw HTTPMessageError("\(subject) has bytes that are not UTF-8 in the value of its header \(name)")
                }
            }
            let text = String(decoding: value, as: UTF8.self)
            try note(name: name, value: text, subject: subject)
            headers.append(Header(name, text))
        }
    }

    private mutating func note(name: String, value: String, subject: String) throws(HTTPMessageError) {
        // Only names of these lengths matter here: most headers are passed over without comparing.
        switch name.utf8.count {
        case 14 where name.caseInsensitiveEquals("content-length"):
            // Empty items count: "Content-Length: ," is no length at all, not a body of none.
            for item in value.split(separator: ",", omittingEmptySubsequences: false) {
                let digits = item.trimmingSpaces
                guard !digits.isEmpty, digits.utf8.count <= 18, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                      let length = Int(digits) else {
                    throw HTTPMessageError("\(subject) has an invalid Content-Length: \(value)")
                }
                guard contentLength == nil || contentLength == length else {
                    throw HTTPMessageError("\(subject) has conflicting Content-Length values")
                }
                contentLength = length
            }
        case 17 where name.caseInsensitiveEquals("transfer-encoding"):
            transferEncoded = true
            for item in value.split(separator: ",") where !item.trimmingSpaces.isEmpty {
                transferCodings.append(item.trimmingSpaces.lowercased())
            }
        case 4 where name.caseInsensitiveEquals("host"):
            hosts.append(value)
        case 10 where name.caseInsensitiveEquals("connection"):
            for token in value.split(separator: ",") {
                let token = String(token.trimmingSpaces)
                if token.caseInsensitiveEquals("close") { connectionClose = true }
                if token.caseInsensitiveEquals("keep-alive") { connectionKeepAlive = true }
            }
        case 6 where name.caseInsensitiveEquals("expect"):
            expectsContinue = value.caseInsensitiveEquals("100-continue")
        default:
            break
        }
    }
}

package enum HTTPSyntax {
    /// RFC 9110 §5.6.2 tchar.
    package static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }

    /// What a Host value may hold (RFC 3986's reg-name, IP literal and port): never a space, a slash, an `@` or a
    /// control byte, any of which could make the edge and the app name different hosts.
    package static func isHostByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"), UInt8(ascii: ":"),
             UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
             UInt8(ascii: "="): true
        default: false
        }
    }

    package static func isToken(_ text: String) -> Bool {
        var text = text
        return !text.isEmpty && text.withUTF8 { $0.allSatisfy(isTokenByte) }
    }

    /// What a request target may hold: visible ASCII and any byte of a UTF-8 sequence, not a space or a control
    /// (one of those is how one request hides another).
    package static func isTargetByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte != 0x7F
    }
}

extension [UInt8] {
    /// Appends the header line `name: value` CR LF.
    package mutating func appendHeader(_ name: String, _ value: String) {
        appendUTF8(name)
        append(UInt8(ascii: ":"))
        append(UInt8(ascii: " "))
        appendUTF8(value)
        append(UInt8(ascii: "\r"))
        append(UInt8(ascii: "\n"))
    }

    /// Appends the string's bytes in one copy (appending its `utf8` view goes a byte at a time).
    package mutating func appendUTF8(_ string: String) {
        var string = string
        string.withUTF8 { append(contentsOf: $0) }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var value = self
        while let first = value.first, first == " " || first == "\t" { value = value.dropFirst() }
        while let last = value.last, last == " " || last == "\t" { value = value.dropLast() }
        return value
    }
}
