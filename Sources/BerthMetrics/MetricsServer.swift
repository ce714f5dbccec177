import HTTPTypes
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle

/// Serves the process's metrics in Prometheus text format at `GET /metrics`.
public struct MetricsServer: Service {
    private let host: String
    private let port: Int
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger

    /// Makes swift-metrics report into a Prometheus registry (once per process) and serves it on `host:port`.
    public init(host: String, port: Int, logger: Logger) {
        self.host = host
        self.port = port
        self.logger = logger
        registry = Self.bootstrap()
    }

    private static let shared: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    static func bootstrap() -> PrometheusCollectorRegistry { shared }

    public func run() async throws {
        let registry = registry
        let logger = logger
        let server = try HTTPServerBuilder.http1().buildServer(
            configuration: ServerConfiguration(address: .hostname(host, port: port)),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger,
            responder: { request, writer, _ in
                guard request.head.path?.split(separator: "?").first == "/metrics" else {
                    try await writer.write(response: HTTPResponse(status: .notFound, headerFields: [.contentLength: "0"]), body: ResponseBody())
                    return
                }
                var bytes: [UInt8] = []
                registry.emit(into: &bytes)
                let body = ByteBuffer(bytes: bytes)
                let head = HTTPResponse(status: .ok, headerFields: [
                    .contentType: "text/plain; version=0.0.4; charset=utf-8", .contentLength: String(body.readableBytes),
                ])
                try await writer.write(response: head, body: ResponseBody(byteBuffer: body))
            },
            onServerRunning: { channel in
                logger.info("metrics listening", metadata: ["berth.metrics": "\(channel.localAddress?.description ?? "?")"])
            }
        )
        try await server.run()
    }
}
