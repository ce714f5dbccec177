import AsyncHTTPClient
import BerthBus
import BerthWire
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Turns a bus request into an HTTP request to the app on 127.0.0.1 and the app's answer back into a response,
/// over a keep-alive connection pool.
struct AppForwarder: Sendable {
    private let client: HTTPClient
    private let configuration: SidecarConfiguration

    init(configuration: SidecarConfiguration) {
        self.configuration = configuration
        var clientConfiguration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .init(configuration.connectTimeout)),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: configuration.capacity),
            decompression: .disabled
        )
        clientConfiguration.httpVersion = .http1Only
        // No tracer: otherwise every request builds span attributes for the no-op global tracer.
        clientConfiguration.tracing.tracer = nil
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
    }

    func shutdown() async {
        try? await client.shutdown()
    }

    /// What the app answered, or why it could not.
    struct Outcome: Sendable {
        var response: Response
        var body: [Frame]
        var bytesIn: Int
    }

    func forward(_ incoming: IncomingRequest) async -> Outcome {
        let request = incoming.request
        let port = request.port == 0 ? UInt32(configuration.port) : request.port
        let bytesIn = incoming.body.byteCount
        guard configuration.ports.contains(port) else {
            return failure(request, .badRequest, "port \(port) is not a port of \(configuration.className) (it listens on \(configuration.ports.map(String.init).joined(separator: ", ")))", bytesIn)
        }
        var url = "http://\(configuration.appHost):\(port)\(request.path)"
        if !request.query.isEmpty { url += "?" + request.query }
        var outgoing = HTTPClientRequest(url: url)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for header in request.headers where !HopByHop.contains(header.name) {
            outgoing.headers.add(name: header.name, value: header.value)
        }
        if bytesIn > 0 || outgoing.headers.contains(name: "content-length") {
            outgoing.body = .bytes(ByteBuffer(frames: incoming.body))
        }
        let timeout: TimeAmount = request.timeoutMilliseconds > 0 ? .milliseconds(Int64(request.timeoutMilliseconds)) : .seconds(3_600)

        do {
            let response = try await client.execute(outgoing, deadline: .now() + timeout)
            var frames: [Frame] = []
            var total = 0
            for try await chunk in response.body {
                total += chunk.readableBytes
                guard total <= configuration.maxBodyBytes else {
                    return failure(request, .appFailed, "the app's response body is over the \(configuration.maxBodyBytes)-byte limit", bytesIn)
                }
                frames.append(Frame(chunk))
            }
            var headers: [Header] = []
            headers.reserveCapacity(response.headers.count)
            for (name, value) in response.headers where !HopByHop.contains(name) {
                headers.append(Header(name, value))
            }
            return Outcome(
                response: Response(id: request.id, status: UInt32(response.status.code), headers: headers, servedBy: configuration.endpoint),
                body: frames, bytesIn: bytesIn
            )
        } catch {
            let (code, message) = Self.classify(error, port: port, timeout: request.timeoutMilliseconds)
            return failure(request, code, message, bytesIn)
        }
    }

    /// True when the app accepts connections on its port and, when `path` is given, answers it with 2xx.
    func probe(path: String?, timeout: Duration) async -> Bool {
        guard portIsOpen(host: configuration.appHost, port: configuration.port) else { return false }
        guard let path else { return true }
        do {
            let response = try await client.execute(HTTPClientRequest(url: "http://\(configuration.appHost):\(configuration.port)\(path)"), timeout: .init(timeout))
            _ = try await response.body.collect(upTo: 1 << 20)
            return (200..<300).contains(response.status.code)
        } catch {
            return false
        }
    }

    func failure(_ request: Request, _ code: ErrorCode, _ message: String, _ bytesIn: Int) -> Outcome {
        let component = code == .badRequest || code == .appUnavailable ? "sidecar" : "app"
        return Outcome(
            response: Response(id: request.id, status: 0, error: MeshError(code: code, message: message, component: component), servedBy: configuration.endpoint),
            body: [], bytesIn: bytesIn
        )
    }

    private static func classify(_ error: any Error, port: UInt32, timeout: UInt32) -> (ErrorCode, String) {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout:
                return (.deadlineExceeded, "the app on port \(port) did not answer within \(timeout) ms")
            case .connectTimeout:
                return (.appUnreachable, "the app on port \(port) did not accept a connection in time")
            case .remoteConnectionClosed:
                return (.appFailed, "the app on port \(port) closed the connection before it answered")
            default:
                return (.appFailed, "the app on port \(port) failed: \(error)")
            }
        }
        let text = "\(error)"
        if text.contains("connectionRefused") || text.contains("Connection refused") || error is NIOConnectionError {
            return (.appUnreachable, "the app is not listening on port \(port) (connection refused)")
        }
        return (.appFailed, "the app on port \(port) failed: \(text)")
    }
}

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
enum HopByHop {
    static let names: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade",
    ]

    private static let lengths = Set(names.map(\.utf8.count))

    /// Most names are not hop-by-hop and are told apart by length alone, without lower-casing them.
    static func contains(_ name: String) -> Bool {
        lengths.contains(name.utf8.count) && names.contains(name.lowercased())
    }
}

/// Whether something accepts TCP connections on `host:port` (an IPv4 address): on loopback the answer is immediate.
func portIsOpen(host: String, port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return false }
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}
