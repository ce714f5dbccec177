import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// `POST /send?path=/send`: makes `GET <edge><path>` on the page's behalf, so that the page needs no CORS from the
/// edge. Only paths on the configured edge can be fetched, so the dashboard is not an open proxy.
struct EdgeProxy: Sendable {
    let edge: String
    let maxBodyBytes: Int
    /// Longer than the edge's own 30 s deadline, so that the edge's answer (a 504) gets through.
    var timeout: Duration = .seconds(35)
    let client: HTTPClient

    /// The client for the proxy: an edge that refuses connections is reported at once instead of retried until the
    /// timeout, and redirects are passed back to the page rather than followed off the edge.
    static func makeClient(logger: Logger) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(5)
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration, backgroundActivityLogger: logger)
    }

    func forward(_ request: Request) async -> Response {
        let path = request.uri.queryParameters["path"].map(String.init) ?? "/send"
        guard path.hasPrefix("/"), !path.hasPrefix("//") else {
            return Self.failure(.badRequest, "path must start with one /: \(path)")
        }
        let base = edge.hasSuffix("/") ? String(edge.dropLast()) : edge
        var outgoing = HTTPClientRequest(url: base + path)
        outgoing.method = .GET
        do {
            let answer = try await client.execute(outgoing, timeout: TimeAmount(timeout))
            let body = try await answer.body.collect(upTo: maxBodyBytes)
            var headers = HTTPFields()
            headers[.contentType] = answer.headers.first(name: "content-type") ?? "application/octet-stream"
            headers[.cacheControl] = "no-store"
            // The edge says which instances served the request and, on failure, why.
            for name in ["x-berth-path", "x-berth-error"] {
                if let value = answer.headers.first(name: name), let field = HTTPField.Name(name) { headers[field] = value }
            }
            return Response(status: .init(code: Int(answer.status.code)), headers: headers, body: .init(byteBuffer: body))
        } catch {
            return Self.failure(.badGateway, "could not fetch \(base + path) from the edge: \(error)")
        }
    }

    private static func failure(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: message + "\n"))
        )
    }
}
