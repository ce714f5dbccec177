import BerthBus
import BerthHTTP
import BerthWire

/// Between the client's HTTP/1.1 and what a Worker sees: requests in, response heads out.
enum HTTPMapping {
    /// The request as a Worker sees it: the path and the query apart, the headers in order less the first `host`
    /// (the sidecar names the app's host), the body in the frames it was read into.
    static func edgeRequest(_ head: HTTPRequestHead, body: [Frame]) -> EdgeRequest {
        let target = requestTarget(head.target)
        var path = target
        var query = Substring("")
        if let mark = target.firstIndex(of: "?") {
            path = target[..<mark]
            query = target[target.index(after: mark)...]
        }
        var headers = head.headers
        if let host = headers.firstIndex(where: { $0.name.caseInsensitiveEquals("host") }) { headers.remove(at: host) }
        // A CONNECT's target is the authority it asks a tunnel to; it has no path.
        guard !head.isConnect else {
            var request = EdgeRequest(method: head.method, path: "", headers: headers, body: Body(frames: body))
            request.authority = head.target
            return request
        }
        var request = EdgeRequest(method: head.method, path: String(path), query: String(query), headers: headers, body: Body(frames: body))
        request.authority = authority(head.target).map(String.init)
        return request
    }

    /// The authority of an absolute-form `uri`: `http://host:81/a` gives `host:81`; nil for origin-form.
    static func authority(_ uri: String) -> Substring? {
        guard !uri.hasPrefix("/"), let colon = uri.firstIndex(of: ":"), uri[colon...].hasPrefix("://") else { return nil }
        let rest = uri[uri.index(colon, offsetBy: 3)...]
        return rest[..<(rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex)]
    }

    /// The origin-form target of `uri`: `http://host/a?b` becomes `/a?b`.
    static func requestTarget(_ uri: String) -> Substring {
        guard !uri.hasPrefix("/"), let colon = uri.firstIndex(of: ":"), uri[colon...].hasPrefix("://") else { return Substring(uri) }
        let rest = uri[uri.index(colon, offsetBy: 3)...]
        guard let start = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
        return rest[start] == "/" ? rest[start...] : Substring("/" + rest[start...])
    }

    /// A request to switch to WebSocket (RFC 6455 §4.1): `Upgrade: websocket` and `Connection: upgrade`.
    static func isWebSocketUpgrade(_ head: HTTPRequestHead) -> Bool {
        head.minorVersion == 1 && isWebSocketUpgrade(method: head.method, headers: head.headers)
    }

    static func isWebSocketUpgrade(method: String, headers: [Header]) -> Bool {
        guard method == "GET" else { return false }
        let upgrade = headers.contains { $0.name.caseInsensitiveEquals("upgrade") && $0.value.lowercased().contains("websocket") }
        let connection = headers.contains { header in
            header.name.caseInsensitiveEquals("connection")
                && header.value.lowercased().split(separator: ",").contains { $0.filter { $0 != " " && $0 != "\t" } == "upgrade" }
        }
        return upgrade && connection
    }

    static func bodyAllowed(status: Int) -> Bool {
        !(100..<200).contains(status) && status != 204 && status != 304
    }

    /// The response head's bytes, and whether the connection closes after it.
    ///
    /// `content-length` is set from the body when one is written (the body is whole, so any `transfer-encoding` a
    /// Worker named is dropped); `connection` follows HTTP/1.1 as nginx does. Headers a client could not parse are dropped (bad
    /// name) or cleaned (control bytes in the value become spaces), so no answer can split a response.
    /// `bodyBytes` nil: the body streams with no length known, chunked to an HTTP/1.1 client, to the end of the
    /// connection for an HTTP/1.0 one.
    static func head(
        of response: EdgeResponse, bodyBytes: Int?, for request: HTTPRequestHead?, forceClose: Bool = false
    ) -> (bytes: [UInt8], closes: Bool) {
        let minor = request?.minorVersion ?? 1
        var keepAlive = (request?.keepAlive ?? false) && !forceClose
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128 + response.headers.count * 48)
        bytes.append(contentsOf: minor == 0 ? "HTTP/1.0 ".utf8 : "HTTP/1.1 ".utf8)
        if (100...999).contains(response.status) { // always, from the bus; written without a string built for it
            bytes.append(UInt8(ascii: "0") + UInt8(response.status / 100))
            bytes.append(UInt8(ascii: "0") + UInt8(response.status / 10 % 10))
            bytes.append(UInt8(ascii: "0") + UInt8(response.status % 10))
        } else {
            bytes.append(contentsOf: String(response.status).utf8)
        }
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: reasonPhrase(response.status).utf8)
        bytes.append(contentsOf: "\r\n".utf8)
        var connection: String?
        // Without a body the length is the one the answer names (a HEAD's is the GET's); with one, the body's own. A
        // CONNECT's 2xx has neither: the connection is the tunnel's from here on (RFC 9110 §9.3.6).
        let opensTunnel = request?.isConnect == true && (200..<300).contains(response.status)
        let writesBody = bodyAllowed(status: response.status) && request?.isHead != true && !opensTunnel
        for header in response.headers {
            guard HTTPSyntax.isToken(header.name) else { continue }
            switch header.name.utf8.count {
            case 14 where (writesBody || opensTunnel) && header.name.caseInsensitiveEquals("content-length"): continue
            case 17 where header.name.caseInsensitiveEquals("transfer-encoding"): continue
            case 10 where header.name.caseInsensitiveEquals("connection"):
                connection = header.value
                continue
            default: break
            }
            bytes.appendHeader(header.name, legalValue(header.value))
        }
        if writesBody {
            if let bodyBytes {
                bytes.appendHeader("content-length", String(bodyBytes))
            } else if minor >= 1 {
                bytes.appendHeader("transfer-encoding", "chunked")
            } else {
                keepAlive = false
            }
        }
        if let connection, connection.utf8.count >= 5 && connection.lowercased().contains("close") { keepAlive = false }
        if response.status == 101 || opensTunnel {
            // The connection is the new protocol's from here on (RFC 9110 §15.2.2), or the tunnel's.
            if response.status == 101 { bytes.appendHeader("connection", "upgrade") }
            bytes.append(contentsOf: "\r\n".utf8)
            return (bytes, true)
        }
        if !keepAlive {
            bytes.appendHeader("connection", "close")
        } else if minor == 0 {
            bytes.appendHeader("connection", "keep-alive")
        }
        bytes.append(contentsOf: "\r\n".utf8)
        return (bytes, !keepAlive)
    }

    /// `value` with every control byte but HTAB replaced by a space (RFC 9110 §5.5).
    static func legalValue(_ value: String) -> String {
        func isControl(_ byte: UInt8) -> Bool { (byte < 0x20 && byte != 0x09) || byte == 0x7F }
        var scanned = value
        guard scanned.withUTF8({ $0.contains(where: isControl) }) else { return value }
        return String(decoding: value.utf8.map { isControl($0) ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 103: "Early Hints"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 203: "Non-Authoritative Information"
        case 204: "No Content"
        case 205: "Reset Content"
        case 206: "Partial Content"
        case 300: "Multiple Choices"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 402: "Payment Required"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Content"
        case 425: "Too Early"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 451: "Unavailable For Legal Reasons"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        case 507: "Insufficient Storage"
        case 511: "Network Authentication Required"
        default: "Status \(status)"
        }
    }
}
