import BerthBus
import BerthWire
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `berth-edge` as a service: an HTTP/1.1 server whose requests a `Worker` sends into the mesh.
///
/// On graceful shutdown the server stops accepting connections, finishes the requests it has, then the bus stops.
public struct EdgeService: Service {
    private let configuration: EdgeConfiguration
    private let worker: any Worker
    private let logger: Logger

    public init(configuration: EdgeConfiguration, worker: some Worker, logger: Logger) {
        self.configuration = configuration
        self.worker = worker
        self.logger = logger
    }

    /// An edge with declarative routes.
    public init(configuration: EdgeConfiguration, routes: [Route], logger: Logger) {
        self.init(configuration: configuration, worker: RoutesWorker(routes: routes), logger: logger)
    }

    public func run() async throws {
        let configuration = configuration
        let logger = logger
        let worker = worker
        let bus = BusLoop(name: "berth-edge") { try EdgeBus(configuration: configuration, logger: logger) }
        let env = Environment(mesh: MeshClient(bus: bus, configuration: configuration, logger: logger))

        let server = try HTTPServerBuilder.http1().buildServer(
            configuration: ServerConfiguration(address: .hostname(configuration.host, port: configuration.port)),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger,
            responder: { request, writer, _ in
                let response = await Self.handle(request, worker: worker, env: env, configuration: configuration, logger: logger)
                try await writer.write(response: Self.head(of: response, method: request.method), body: ResponseBody(contentsOf: response.body.chunks))
            },
            onServerRunning: { channel in
                logger.info("edge listening", metadata: [
                    "berth.listen": "\(channel.localAddress?.description ?? "?")", "berth.router": "\(configuration.router)",
                ])
            }
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await bus.run() }
            try await server.run()
            bus.stop()
            try await group.waitForAll()
        }
    }

    private static func handle(
        _ request: HummingbirdCore.Request, worker: any Worker, env: Environment, configuration: EdgeConfiguration, logger: Logger
    ) async -> EdgeResponse {
        let target = request.head.path ?? "/"
        var path = Substring(target)
        var query = Substring("")
        if let mark = target.firstIndex(of: "?") {
            path = target[..<mark]
            query = target[target.index(after: mark)...]
        }
        var headers: [Header] = []
        headers.reserveCapacity(request.headers.count)
        for field in request.headers { headers.append(Header(field.name.rawName, field.value)) }

        var chunks: [ByteBuffer] = []
        var total = 0
        do {
            for try await chunk in request.body {
                total += chunk.readableBytes
                if total > configuration.maxBodyBytes {
                    var response = EdgeResponse.failure(MeshError(code: .tooLarge, message: "the request body is over the \(configuration.maxBodyBytes)-byte limit", component: "edge"))
                    response.headers.append(Header("connection", "close"))
                    return response
                }
                chunks.append(chunk)
            }
        } catch {
            return .failure(MeshError(code: .badRequest, message: "could not read the request body: \(error)", component: "edge"))
        }
        let edgeRequest = EdgeRequest(method: request.method.rawValue, path: String(path), query: String(query), headers: headers, body: Body(chunks: chunks))
        do {
            return try await worker.fetch(edgeRequest, env: env)
        } catch {
            logger.warning("worker failed", metadata: ["berth.path": "\(path)", "berth.error": "\(error)"])
            return .failure(MeshError(code: .internal, message: "the worker failed: \(error)", component: "edge"))
        }
    }

    private static func head(of response: EdgeResponse, method: HTTPRequest.Method) -> HTTPResponse {
        var fields = HTTPFields()
        fields.reserveCapacity(response.headers.count + 1)
        var hasLength = false
        for header in response.headers {
            guard let name = HTTPField.Name(header.name) else { continue }
            if name == .contentLength { hasLength = true }
            fields.append(HTTPField(name: name, value: header.value))
        }
        let status = response.status
        let bodyAllowed = !(100..<200).contains(status) && status != 204 && status != 304
        if !hasLength && bodyAllowed && method != .head {
            fields[.contentLength] = String(response.body.count)
        }
        return HTTPResponse(status: .init(code: status), headerFields: fields)
    }
}
