import BerthBus
import BerthWire

/// The head of a client's request.
package struct HTTPRequestHead: Sendable, Equatable {
    package var method: String
    /// As the client sent it: origin-form (`/a?b`), or absolute-form (`http://host/a?b`).
    package var target: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    package var minorVersion: Int
    package var headers: [Header]
    /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
    package var keepAlive: Bool
    /// `Expect: 100-continue`: the client waits for a 100 before it sends the body.
    package var expectsContinue: Bool
    package var isHead: Bool { method == "HEAD" }
}

/// Reads a client's request to the edge.
package typealias HTTPRequestReader = HTTPMessageReader<HTTPRequestHead>

extension HTTPMessageReader where Head == HTTPRequestHead {
    package init(maxBodyBytes: Int) {
        self.init(context: (), maxBodyBytes: maxBodyBytes)
    }
}

extension HTTPRequestHead: HTTPMessageHead {
    package static let subject = "the request"

    /// The body is framed by Content-Length or chunked coding (RFC 9112 §6.3); a request without either has none.
    /// A request that a server could read as two (both a length and a transfer coding, or a coding other than
    /// chunked) is refused: that is how requests are smuggled past a proxy.
    package static func parse(_ bytes: ArraySlice<UInt8>, context: Void) throws(HTTPMessageError) -> (Self, HTTPFraming)? {
        var lines = HTTPLines(bytes)
        guard let requestLine = lines.next(), !requestLine.isEmpty else { throw HTTPMessageError("the request has no request line") }
        let (method, target, version) = try parseRequestLine(requestLine)
        let fields = try HTTPHeaderFields(&lines, subject: subject)
        let framing: HTTPFraming
        if fields.transferEncoded {
            guard fields.contentLength == nil else {
                throw HTTPMessageError("the request has both Content-Length and Transfer-Encoding, which could read as two requests")
            }
            guard fields.chunked else { throw HTTPMessageError("the request's transfer coding does not end with chunked, so its end is unknown") }
            framing = .chunked
        } else {
            framing = .length(fields.contentLength ?? 0)
        }
        let head = HTTPRequestHead(
            method: method, target: target, minorVersion: version, headers: fields.headers,
            keepAlive: !fields.connectionClose && (version == 1 || fields.connectionKeepAlive),
            expectsContinue: fields.expectsContinue && framing != .length(0)
        )
        return (head, framing)
    }

    /// The method, the target and the minor version (0 or 1).
    private static func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPMessageError) -> (String, String, Int) {
        func refused(_ why: String) -> HTTPMessageError {
            HTTPMessageError("the request line \(why): \(String(decoding: line.prefix(60), as: UTF8.self).debugDescription)")
        }
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")), firstSpace > line.startIndex,
              line[line.startIndex..<firstSpace].allSatisfy(HTTPSyntax.isTokenByte) else {
            throw refused("has no valid method")
        }
        let afterMethod = firstSpace + 1
        guard let lastSpace = line.lastIndex(of: UInt8(ascii: " ")), lastSpace > afterMethod else {
            throw refused("is not METHOD TARGET HTTP/1.x")
        }
        let version = line[(lastSpace + 1)...]
        guard version.count == 8, version.prefix(7).elementsEqual("HTTP/1.".utf8),
              let minor = version.last, minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1") else {
            throw refused("does not end with HTTP/1.0 or HTTP/1.1")
        }
        let target = line[afterMethod..<lastSpace]
        guard target.allSatisfy(HTTPSyntax.isTargetByte) else { throw refused("has a target with a space or a control byte") }
        return (
            String(decoding: line[line.startIndex..<firstSpace], as: UTF8.self),
            String(decoding: target, as: UTF8.self),
            Int(minor - UInt8(ascii: "0"))
        )
    }
}
