import BerthBus
import BerthHTTP
import BerthWire

/// Turns a bus request into an HTTP/1.1 request to the app and the app's answer back into a response, over
/// `AppClient`'s keep-alive connections. It runs on the sidecar's bus thread, where the client lives.
struct AppForwarder: Sendable {
    private let configuration: SidecarConfiguration

    init(configuration: SidecarConfiguration) {
        self.configuration = configuration
    }

    /// What the app answered, or why it could not.
    struct Outcome: Sendable {
        var response: Response
        var body: [Frame]
        var bytesIn: Int
    }

    /// Bodies of known length over this stream when the edge takes a stream; so do those of unknown length once the
    /// app pauses before their end.
    static let streamAbove = Streaming.threshold

    /// Forwards `incoming` to the app over `client`; `completion` runs once, on the bus thread, maybe before this
    /// returns. When the edge takes a stream (`Request.stream_window`) and the answer streams, `completion` gets its
    /// head (`Response.body_streams`) and `pieces` its body. Returns the exchange, for credit and cancelling.
    @discardableResult
    func forward(
        _ incoming: IncomingRequest, over client: AppClient, pieces: ((AppBodyPiece) -> Void)? = nil,
        completion: @escaping (Outcome) -> Void
    ) -> AppExchangeHandle? {
        let request = incoming.request
        let port = request.port == 0 ? UInt32(configuration.port) : request.port
        let bytesIn = incoming.body.byteCount
        guard configuration.ports.contains(port) else {
            completion(failure(request, .badRequest, "port \(port) is not a port of \(configuration.className) (it listens on \(configuration.ports.map(String.init).joined(separator: ", ")))", bytesIn))
            return nil
        }
        let head: [UInt8]
        // A body that streams in goes with the length the client said, or chunked.
        let streamedLength = request.bodyStreams ? request.headers.first { $0.name.caseInsensitiveEquals("content-length") }.flatMap { Int($0.value) } : nil
        let chunked = request.bodyStreams && streamedLength == nil && !request.upgrade
        do {
            head = try RequestHead.encode(
                request, host: configuration.appHost, port: port, bodyBytes: streamedLength ?? bytesIn, chunked: chunked
            )
        } catch {
            completion(failure(request, .badRequest, error.message, bytesIn))
            return nil
        }
        let timeout: Duration = request.timeoutMilliseconds > 0 ? .milliseconds(request.timeoutMilliseconds) : .seconds(3_600)
        var appRequest = AppRequest(
            port: Int(port), head: head, isHead: request.method == "HEAD", body: incoming.body,
            deadline: .now + timeout, maxResponseBytes: configuration.maxBodyBytes,
            mayRetry: request.isIdempotent && !request.bodyStreams
        )
        appRequest.bodyStreams = request.bodyStreams
        appRequest.chunked = chunked
        appRequest.upgrade = request.upgrade
        if pieces != nil {
            appRequest.streamWindow = Int(request.streamWindow)
            appRequest.streamAbove = min(Self.streamAbove, max(1, Int(request.streamWindow) / 2))
        }
        let configuration = configuration
        return client.execute(appRequest, pieces: pieces) { result in
            switch result {
            case .success(var answer):
                // A 101 keeps its Upgrade: the client must hear which protocol it switched to.
                let switched = answer.head.status == 101
                answer.head.headers.removeAll { HopByHop.contains($0.name) && !(switched && $0.name.caseInsensitiveEquals("upgrade")) }
                var response = Response(id: request.id, status: UInt32(answer.head.status), headers: answer.head.headers, servedBy: configuration.endpoint)
                response.bodyStreams = answer.streams
                completion(Outcome(response: response, body: answer.body, bytesIn: bytesIn))
            case .failure(let error):
                let (code, message) = Self.describe(error, port: port, timeout: request.timeoutMilliseconds)
                completion(failure(request, code, message, bytesIn))
            }
        }
    }

    /// True when the app accepts connections on its port and, when `path` is given, answers it with 2xx.
    func probe(path: String?, timeout: Duration, on bus: BusLoop<SidecarBus>) async -> Bool {
        let port = configuration.port
        let request: AppRequest?
        if let path {
            let probe = Request(id: 0, target: Target(className: configuration.className), method: "GET", path: path)
            guard let head = try? RequestHead.encode(probe, host: configuration.appHost, port: UInt32(port), bodyBytes: 0) else { return false }
            request = AppRequest(port: port, head: head, isHead: false, body: [], deadline: .now + timeout, maxResponseBytes: 1 << 20, mayRetry: true)
        } else {
            request = nil
        }
        return await withCheckedContinuation { continuation in
            let queued = bus.execute { sidecar in
                sidecar.app.accepts(port: port) { accepted in
                    guard accepted, let request else { return continuation.resume(returning: accepted) }
                    sidecar.app.execute(request) { result in
                        guard case .success(let answer) = result else { return continuation.resume(returning: false) }
                        continuation.resume(returning: (200..<300).contains(answer.head.status))
                    }
                }
            }
            if !queued { continuation.resume(returning: false) }
        }
    }

    func failure(_ request: Request, _ code: ErrorCode, _ message: String, _ bytesIn: Int) -> Outcome {
        let component = code == .badRequest || code == .appUnavailable ? "sidecar" : "app"
        return Outcome(
            response: Response(id: request.id, status: 0, error: MeshError(code: code, message: message, component: component), servedBy: configuration.endpoint),
            body: [], bytesIn: bytesIn
        )
    }

    /// Methods that may be sent twice (RFC 9110 §9.2.2).

    private static func describe(_ error: AppClientError, port: UInt32, timeout: UInt32) -> (ErrorCode, String) {
        switch error {
        case .deadlineExceeded: (.deadlineExceeded, "the app on port \(port) did not answer within \(timeout) ms")
        case .connectTimeout: (.appUnreachable, "the app on port \(port) did not accept a connection in time")
        case .refused: (.appUnreachable, "the app is not listening on port \(port) (connection refused)")
        case .connectFailed(let reason): (.appUnreachable, "cannot connect to the app on port \(port): \(reason)")
        case .closedEarly: (.appFailed, "the app on port \(port) closed the connection before it answered")
        case .tooLarge(let limit): (.appFailed, "the app's response body is over the \(limit)-byte limit")
        case .invalidAnswer(let reason): (.appFailed, "\(reason) (port \(port))")
        case .shutDown: (.appUnavailable, "the sidecar is shutting down")
        case .cancelled: (.internal, "the edge gave the exchange up: its client went away")
        }
    }
}

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
enum HopByHop {
    static func contains(_ name: String) -> Bool {
        // By length first: most headers are none of these, and pass with no comparison.
        switch name.utf8.count {
        case 2: name.caseInsensitiveEquals("te")
        case 7: name.caseInsensitiveEquals("trailer") || name.caseInsensitiveEquals("upgrade")
        case 10: name.caseInsensitiveEquals("connection") || name.caseInsensitiveEquals("keep-alive")
        case 16: name.caseInsensitiveEquals("proxy-connection")
        case 17: name.caseInsensitiveEquals("transfer-encoding")
        case 18: name.caseInsensitiveEquals("proxy-authenticate")
        case 19: name.caseInsensitiveEquals("proxy-authorization")
        default: false
        }
    }
}

/// A request's line and headers as the app receives them.
enum RequestHead {
    struct Invalid: Error {
        var message: String
    }

    /// `request` as HTTP/1.1: hop-by-hop headers left out, `host:port` as Host when the request had none, and the
    /// length of its body (or chunked coding, for a body that streams in with no length known). Anything that would let one request read as two (a CR or LF in a header, a space in the
    /// target) is refused, whoever put it on the bus.
    static func encode(_ request: Request, host: String, port: UInt32, bodyBytes: Int, chunked: Bool = false) throws(Invalid) -> [UInt8] {
        guard HTTPSyntax.isToken(request.method) else {
            throw Invalid(message: "the request's method is not an HTTP token")
        }
        let path = request.path.isEmpty ? "/" : request.path
        guard path.utf8.allSatisfy(HTTPSyntax.isTargetByte), request.query.utf8.allSatisfy(HTTPSyntax.isTargetByte) else {
            throw Invalid(message: "the request's path or query has a space or a control character")
        }
        var head: [UInt8] = []
        head.reserveCapacity(256 + request.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 })
        head.append(contentsOf: request.method.utf8)
        head.append(UInt8(ascii: " "))
        head.append(contentsOf: path.utf8)
        if !request.query.isEmpty {
            head.append(UInt8(ascii: "?"))
            head.append(contentsOf: request.query.utf8)
        }
        head.append(contentsOf: " HTTP/1.1\r\n".utf8)
        var hasHost = false
        var hadLength = false
        // An Upgrade keeps the two headers that ask for it (RFC 9110 §7.8).
        let kept = { (name: String) in request.upgrade && (name.caseInsensitiveEquals("upgrade") || name.caseInsensitiveEquals("connection")) }
        for header in request.headers where !HopByHop.contains(header.name) || kept(header.name) {
            if header.name.caseInsensitiveEquals("content-length") {
                hadLength = true
                continue
            }
            guard HTTPSyntax.isToken(header.name) else {
                throw Invalid(message: "the request has a header name that is not an HTTP token: \(header.name.debugDescription)")
            }
            guard !header.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                throw Invalid(message: "the request's header \(header.name) has a CR, LF or NUL in its value")
            }
            if header.name.caseInsensitiveEquals("host") { hasHost = true }
            head.appendHeader(header.name, header.value)
        }
        if !hasHost { head.appendHeader("host", "\(host):\(port)") }
        if chunked {
            head.appendHeader("transfer-encoding", "chunked")
        } else if bodyBytes > 0 || hadLength {
            head.appendHeader("content-length", String(bodyBytes))
        }
        head.append(contentsOf: "\r\n".utf8)
        return head
    }
}
