import BerthBus
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// `berth-edge` as a service: an HTTP/1.1 server whose requests a `Worker` sends into the mesh.
///
/// On graceful shutdown the server stops accepting connections, finishes the requests it has, closes its idle
/// connections, then the bus stops.
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
        let bus = BusLoop(name: "berth-edge") { try EdgeBus(configuration: configuration, logger: logger) }
        let env = Environment(mesh: MeshClient(bus: bus, configuration: configuration, logger: logger))
        let serving = EdgeHTTPHandler.Serving(worker: worker, env: env, maxBodyBytes: configuration.maxBodyBytes, logger: logger)
        let group = MultiThreadedEventLoopGroup.singleton
        let quiescing = ServerQuiescingHelper(group: group)

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await bus.run() }
            tasks.addTask {
                try await Self.serve(serving, configuration: configuration, group: group, quiescing: quiescing, logger: logger)
            }
            // The server returns once it has drained, the bus only when it failed or was cancelled; either way the
            // other one stops now (cancelling the server drains it, cancelling the bus stops it).
            do {
                try await tasks.next()
            } catch {
                tasks.cancelAll()
                throw error
            }
            tasks.cancelAll()
            try await tasks.waitForAll()
        }
    }

    /// Accepts connections until shut down, then waits until every connection has finished its request and closed.
    private static func serve(
        _ serving: EdgeHTTPHandler.Serving, configuration: EdgeConfiguration, group: MultiThreadedEventLoopGroup,
        quiescing: ServerQuiescingHelper, logger: Logger
    ) async throws {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // EdgeHTTPHandler makes every response head valid, so NIO need not check it again.
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: true, withErrorHandling: true, withOutboundHeaderValidation: false
                    )
                    try channel.pipeline.syncOperations.addHandler(EdgeHTTPHandler(serving: serving))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        logger.info("edge listening", metadata: [
            "berth.listen": "\(channel.localAddress?.description ?? "?")", "berth.router": "\(configuration.router)",
        ])

        let drained = group.next().makePromise(of: Void.self)
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await drained.futureResult.get()
            } onGracefulShutdown: {
                logger.info("edge draining: no new connections; finishing the requests in flight")
                quiescing.initiateShutdown(promise: drained)
            }
        } onCancel: {
            quiescing.initiateShutdown(promise: drained)
        }
    }
}
