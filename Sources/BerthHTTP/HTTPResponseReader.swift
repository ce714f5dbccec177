import BerthWire

/// The head of an app's answer.
package struct HTTPResponseHead: HTTPMessageHead, Equatable {
    package var status: Int
    /// Every header as the app sent it, hop-by-hop ones included.
    package var headers: [Header]
    /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`, and a body whose end is
    /// known without the connection closing.
    package var keepAlive: Bool

    package static let subject = "the app's answer"

    /// The head of the answer to a HEAD request says how long a body would be, but none follows.
    package struct Context: Sendable {
        var requestWasHead: Bool
        /// The request asked to switch protocols (WebSocket): a 101 is its answer, and the new protocol's bytes follow.
        var upgrade = false
    }

    /// The body is framed by Content-Length, chunked coding, or the end of the connection (RFC 9112 §6.3);
    /// interim 1xx answers are skipped.
    package static func parse(_ bytes: ArraySlice<UInt8>, context: Context) throws(HTTPMessageError) -> (Self, HTTPFraming)? {
        var lines = HTTPLines(bytes)
        guard let statusLine = lines.next() else { throw HTTPMessageError("\(subject) has no status line") }
        let (version, status) = try parseStatusLine(statusLine)
        let fields = try HTTPHeaderFields(&lines, subject: subject)
        if status == 101 && context.upgrade {
            // What follows is the new protocol's, until the connection ends.
            return (HTTPResponseHead(status: status, headers: fields.headers, keepAlive: false), .untilClose)
        }
        if (100..<200).contains(status) {
            guard status != 101 else { throw HTTPMessageError("the app switched protocols (101) though the request asked for no upgrade") }
            return nil
        }
        var close = fields.connectionClose || (version == 0 && !fields.connectionKeepAlive)
        var framing: HTTPFraming
        if fields.transferEncoded {
            framing = fields.chunked ? .chunked : .untilClose
            // A length beside a transfer coding is a sign of smuggling (RFC 9112 §6.3): the connection is not reused.
            if fields.contentLength != nil { close = true }
        } else if let length = fields.contentLength {
            framing = .length(length)
        } else {
            framing = .untilClose
        }
        if context.requestWasHead || status == 204 || status == 304 { framing = .none }
        if framing == .untilClose { close = true }
        return (HTTPResponseHead(status: status, headers: fields.headers, keepAlive: !close), framing)
    }

    /// The minor version (0 or 1) and the status code.
    private static func parseStatusLine(_ line: ArraySlice<UInt8>) throws(HTTPMessageError) -> (Int, Int) {
        let start = line.startIndex
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        guard line.count >= 12, line[start..<start + 7].elementsEqual("HTTP/1.".utf8),
              line[start + 7] == UInt8(ascii: "0") || line[start + 7] == UInt8(ascii: "1"), line[start + 8] == UInt8(ascii: " "),
              isDigit(line[start + 9]), isDigit(line[start + 10]), isDigit(line[start + 11]),
              line.count == 12 || line[start + 12] == UInt8(ascii: " ") else {
            throw HTTPMessageError("\(subject) does not start with an HTTP/1.x status line: \(String(decoding: line.prefix(40), as: UTF8.self))")
        }
        let status = line[start + 9..<start + 12].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        guard status >= 100 else { throw HTTPMessageError("the app answered with status \(status), which is not an HTTP status") }
        return (Int(line[start + 7] - UInt8(ascii: "0")), status)
    }
}

/// Reads an app's answer to the sidecar.
package typealias HTTPResponseReader = HTTPMessageReader<HTTPResponseHead>

extension HTTPMessageReader where Head == HTTPResponseHead {
    package init(requestWasHead: Bool, maxBodyBytes: Int, streamAbove: Int? = nil, upgrade: Bool = false) {
        self.init(
            context: HTTPResponseHead.Context(requestWasHead: requestWasHead, upgrade: upgrade), maxBodyBytes: maxBodyBytes, streamAbove: streamAbove
        )
    }
}
