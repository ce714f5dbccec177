import BerthBus
import BerthWire
import NIOCore
import NIOHTTP1

/// Turns a bus request into an HTTP request to the app on 127.0.0.1 and the app's answer back into a response,
/// over `AppClient`'s keep-alive connections.
struct AppForwarder: Sendable {
    private let client: AppClient
    private let configuration: SidecarConfiguration

    init(configuration: SidecarConfiguration) {
        self.configuration = configuration
        client = AppClient(host: configuration.appHost, connectTimeout: configuration.connectTimeout, maxConnectionsPerPort: configuration.capacity)
    }

    func shutdown() async {
        await client.shutdown()
    }

    /// What the app answered, or why it could not.
    struct Outcome: Sendable {
        var response: Response
        var body: [Frame]
        var bytesIn: Int
    }

    /// Forwards `incoming` to the app; `completion` runs once, on the client's event loop (or here, for a request
    /// that never leaves the sidecar).
    func forward(_ incoming: IncomingRequest, completion: @escaping @Sendable (Outcome) -> Void) {
        let request = incoming.request
        let port = request.port == 0 ? UInt32(configuration.port) : request.port
        let bytesIn = incoming.body.byteCount
        guard configuration.ports.contains(port) else {
            return completion(failure(request, .badRequest, "port \(port) is not a port of \(configuration.className) (it listens on \(configuration.ports.map(String.init).joined(separator: ", ")))", bytesIn))
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(request.headers.count + 2)
        var hasHost = false
        var hadLength = false
        for header in request.headers where !HopByHop.contains(header.name) {
            if header.name.caseInsensitiveEquals("content-length") {
                hadLength = true
                continue
            }
            if header.name.caseInsensitiveEquals("host") { hasHost = true }
            headers.add(name: header.name, value: header.value)
        }
        if !hasHost { headers.add(name: "host", value: "\(configuration.appHost):\(port)") }
        if bytesIn > 0 || hadLength { headers.add(name: "content-length", value: String(bytesIn)) }
        let path = request.path.isEmpty ? "/" : request.path
        let head = HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: request.method),
            uri: request.query.isEmpty ? path : path + "?" + request.query, headers: headers
        )
        let timeout: TimeAmount = request.timeoutMilliseconds > 0 ? .milliseconds(Int64(request.timeoutMilliseconds)) : .hours(1)
        let appRequest = AppRequest(
            port: Int(port), head: head, body: incoming.body,
            deadline: .now() + timeout, maxResponseBytes: configuration.maxBodyBytes,
            mayRetry: Self.idempotent.contains(request.method)
        )
        let configuration = configuration
        client.execute(appRequest) { result in
            switch result {
            case .success(let answer):
                var headers: [Header] = []
                headers.reserveCapacity(answer.head.headers.count)
                for (name, value) in answer.head.headers where !HopByHop.contains(name) {
                    headers.append(Header(name, value))
                }
                let response = Response(id: request.id, status: UInt32(answer.head.status.code), headers: headers, servedBy: configuration.endpoint)
                completion(Outcome(response: response, body: answer.body.map { Frame($0) }, bytesIn: bytesIn))
            case .failure(let error):
                let (code, message) = Self.describe(error, port: port, timeout: request.timeoutMilliseconds)
                completion(failure(request, code, message, bytesIn))
            }
        }
    }

    /// True when the app accepts connections on its port and, when `path` is given, answers it with 2xx.
    func probe(path: String?, timeout: Duration) async -> Bool {
        guard await client.accepts(port: configuration.port) else { return false }
        guard let path else { return true }
        var headers = HTTPHeaders()
        headers.add(name: "host", value: "\(configuration.appHost):\(configuration.port)")
        let request = AppRequest(
            port: configuration.port, head: HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers),
            body: [], deadline: .now() + TimeAmount(timeout), maxResponseBytes: 1 << 20, mayRetry: true
        )
        guard case .success(let answer) = await client.execute(request) else { return false }
        return (200..<300).contains(answer.head.status.code)
    }

    func failure(_ request: Request, _ code: ErrorCode, _ message: String, _ bytesIn: Int) -> Outcome {
        let component = code == .badRequest || code == .appUnavailable ? "sidecar" : "app"
        return Outcome(
            response: Response(id: request.id, status: 0, error: MeshError(code: code, message: message, component: component), servedBy: configuration.endpoint),
            body: [], bytesIn: bytesIn
        )
    }

    /// Methods that may be sent twice (RFC 9110 §9.2.2).
    private static let idempotent: Set<String> = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]

    private static func describe(_ error: AppClientError, port: UInt32, timeout: UInt32) -> (ErrorCode, String) {
        switch error {
        case .deadlineExceeded: (.deadlineExceeded, "the app on port \(port) did not answer within \(timeout) ms")
        case .connectTimeout: (.appUnreachable, "the app on port \(port) did not accept a connection in time")
        case .refused: (.appUnreachable, "the app is not listening on port \(port) (connection refused)")
        case .connectFailed(let reason): (.appUnreachable, "cannot connect to the app on port \(port): \(reason)")
        case .closedEarly: (.appFailed, "the app on port \(port) closed the connection before it answered")
        case .tooLarge(let limit): (.appFailed, "the app's response body is over the \(limit)-byte limit")
        case .failed(let reason): (.appFailed, "the app on port \(port) failed: \(reason)")
        case .shutDown: (.appUnavailable, "the sidecar is shutting down")
        }
    }
}

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
enum HopByHop {
    static let names = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade",
    ]

    static func contains(_ name: String) -> Bool {
        names.contains { name.caseInsensitiveEquals($0) }
    }
}
