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
    /// A tunnel asked for (CONNECT host:port): what follows the head is the tunnel's.
    package var isConnect: Bool { method == "CONNECT" }
}

/// Reads a client's request to the edge.
package typealias HTTPRequestReader = HTTPMessageReader<HTTPRequestHead>

extension HTTPMessageReader where Head == HTTPRequestHead {
    /// `tunnels`: CONNECT is read (a proxy that makes tunnels); otherwise it is refused with 501.
    package init(maxBodyBytes: Int, streamAbove: Int? = nil, maxStreamedBytes: Int? = nil, tunnels: Bool = false) {
        self.init(context: tunnels, maxBodyBytes: maxBodyBytes, streamAbove: streamAbove, maxStreamedBytes: maxStreamedBytes)
    }
}

extension HTTPRequestHead: HTTPMessageHead {
    /// Whether CONNECT is read.
    package typealias Context = Bool

    package static let subject = "the request"
    /// Longest request line read; a longer one gets 414, as nginx's 8 KiB buffer does.
    package static let maxRequestLineBytes = 8 << 10
    /// Longest method read; a longer one is no method this edge could know (501).
    package static let maxMethodBytes = 32

    /// The body is framed by Content-Length or chunked coding (RFC 9112 §6.3); a request without either has none.
    /// Anything a server behind the edge could read another way is refused: both a length and a transfer coding,
    /// a transfer coding in HTTP/1.0, chunked applied twice, a missing or doubled Host, control bytes in a value.
    /// A transfer coding other than chunked is understood but not done (501), and so is CONNECT unless `context`
    /// says tunnels are made; a CONNECT has no body (RFC 9110 §9.3.6).
    package static func parse(_ bytes: ArraySlice<UInt8>, context tunnels: Bool) throws(HTTPMessageError) -> (Self, HTTPFraming)? {
        var lines = HTTPLines(bytes)
        guard let requestLine = lines.next(), !requestLine.isEmpty else { throw HTTPMessageError("the request has no request line") }
        let (method, target, version) = try parseRequestLine(requestLine, tunnels: tunnels)
        let fields = try HTTPHeaderFields(&lines, subject: subject, strictValues: true)
        let framing: HTTPFraming
        if method == "CONNECT" {
            guard !fields.transferEncoded && (fields.contentLength ?? 0) == 0 else {
                throw HTTPMessageError("the CONNECT request has a body, which CONNECT has not got: what follows its head is the tunnel's")
            }
            framing = .length(0)
        } else if fields.transferEncoded {
            guard fields.contentLength == nil else {
                throw HTTPMessageError("the request has both Content-Length and Transfer-Encoding, which could read as two requests")
            }
            guard version == 1 else {
                throw HTTPMessageError("the request is HTTP/1.0 with a Transfer-Encoding, which HTTP/1.0 has not got: its framing is in doubt")
            }
            guard !fields.transferCodings.isEmpty else { throw HTTPMessageError("the request has an empty Transfer-Encoding") }
            if let other = fields.transferCodings.first(where: { $0 != "chunked" }) {
                throw HTTPMessageError("the request's transfer coding \(other.debugDescription) is not implemented: only chunked is", kind: .notImplemented)
            }
            guard fields.transferCodings.count == 1 else { throw HTTPMessageError("the request applies chunked more than once") }
            framing = .chunked
        } else {
            framing = .length(fields.contentLength ?? 0)
        }
        switch fields.hosts.count {
        case 0 where version == 1: throw HTTPMessageError("the request has no Host header, which HTTP/1.1 requires")
        case 0, 1: break
        default: throw HTTPMessageError("the request has \(fields.hosts.count) Host headers")
        }
        if let host = fields.hosts.first, !host.utf8.allSatisfy(HTTPSyntax.isHostByte) {
            throw HTTPMessageError("the request's Host is not a host name or address: \(String(host.prefix(60)).debugDescription)")
        }
        let head = HTTPRequestHead(
            method: method, target: target, minorVersion: version, headers: fields.headers,
            keepAlive: !fields.connectionClose && (version == 1 || fields.connectionKeepAlive),
            expectsContinue: fields.expectsContinue && framing != .length(0)
        )
        return (head, framing)
    }

    /// The method, the target and the minor version (0 or 1).
    private static func parseRequestLine(_ line: ArraySlice<UInt8>, tunnels: Bool) throws(HTTPMessageError) -> (String, String, Int) {
        func refused(_ why: String, kind: HTTPMessageError.Kind = .malformed) -> HTTPMessageError {
            HTTPMessageError("the request line \(why): \(String(decoding: line.prefix(60), as: UTF8.self).debugDescription)", kind: kind)
        }
        guard line.count <= maxRequestLineBytes else { throw refused("is over \(maxRequestLineBytes) bytes", kind: .targetTooLong) }
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")), firstSpace > line.startIndex,
              line[line.startIndex..<firstSpace].allSatisfy(HTTPSyntax.isTokenByte) else {
            throw refused("has no valid method")
        }
        guard firstSpace - line.startIndex <= maxMethodBytes else {
            throw refused("has a method over \(maxMethodBytes) bytes, which is none this edge knows", kind: .notImplemented)
        }
        let afterMethod = firstSpace + 1
        guard let lastSpace = line.lastIndex(of: UInt8(ascii: " ")), lastSpace > afterMethod else {
            throw refused("is not METHOD TARGET HTTP/1.x")
        }
        let version = line[(lastSpace + 1)...]
        guard version.count == 8, version.prefix(7).elementsEqual("HTTP/1.".utf8),
              let minor = version.last, minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1") else {
            let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
            let wellFormed = version.count == 8 && version.prefix(5).elementsEqual("HTTP/".utf8) && isDigit(version[version.startIndex + 5])
                && version[version.startIndex + 6] == UInt8(ascii: ".") && isDigit(version[version.startIndex + 7])
            throw refused("does not end with HTTP/1.0 or HTTP/1.1", kind: wellFormed ? .versionNotSupported : .malformed)
        }
        let target = line[afterMethod..<lastSpace]
        guard target.allSatisfy(HTTPSyntax.isTargetByte) else { throw refused("has a target with a space or a control byte") }
        // A fragment is never part of a request target (RFC 9112 §3.2): an app that drops it from `/a#b?c` sees
        // another path and query than the edge routed on.
        guard !target.contains(UInt8(ascii: "#")) else { throw refused("has a target with a fragment (#)") }
        let method = String(decoding: line[line.startIndex..<firstSpace], as: UTF8.self)
        // RFC 9112 §3.2: origin-form, absolute-form, `*` for OPTIONS; authority-form (host:port) is CONNECT's, a tunnel
        // only a proxy that makes them reads.
        if method == "CONNECT" {
            guard tunnels else { throw refused("asks for a tunnel (CONNECT), which the edge does not make", kind: .notImplemented) }
            guard isAuthorityForm(target) else { throw refused("asks for a tunnel (CONNECT) to something other than host:port") }
            return (method, String(decoding: target, as: UTF8.self), Int(minor - UInt8(ascii: "0")))
        }
        let scheme = target.prefix(8).map { $0 | 0x20 } // lowercase; ':' and '/' already have the bit
        let isAbsolute = scheme.starts(with: "http://".utf8) || scheme.starts(with: "https://".utf8)
        guard target.first == UInt8(ascii: "/") || isAbsolute || (method == "OPTIONS" && target.elementsEqual("*".utf8)) else {
            throw refused("has a target that is neither a path nor an absolute URI")
        }
        return (method, String(decoding: target, as: UTF8.self), Int(minor - UInt8(ascii: "0")))
    }

    /// `host:port` (RFC 9112 §3.2.3), the host a name or an address (`[v6]` in brackets), the port 1-65535.
    private static func isAuthorityForm(_ target: ArraySlice<UInt8>) -> Bool {
        guard let colon = target.lastIndex(of: UInt8(ascii: ":")), colon > target.startIndex else { return false }
        let host = target[..<colon], port = target[(colon + 1)...]
        guard (1...5).contains(port.count), port.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let number = Int(String(decoding: port, as: UTF8.self)), (1...65_535).contains(number) else { return false }
        if host.first == UInt8(ascii: "[") { return host.last == UInt8(ascii: "]") && host.count > 2 }
        return host.allSatisfy { HTTPSyntax.isHostByte($0) && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: "@") }
    }
}
