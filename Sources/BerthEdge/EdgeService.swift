import BerthBus
import BerthHTTP
import Logging
import ServiceLifecycle

/// `berth-edge` as a service: an HTTP/1.1 server whose requests a `Worker` sends into the mesh, all on one bus
/// thread (see `EdgeHTTPServer`).
///
/// On graceful shutdown the server stops accepting connections, closes its idle ones, finishes the requests it
/// has, then the bus stops.
public struct EdgeService: Service {
    private let configuration: EdgeConfiguration
    private let worker: any Worker
    private let logger: Logger

    private let listener: ListeningSocket?

    public init(configuration: EdgeConfiguration, worker: some Worker, logger: Logger) {
        self.configuration = configuration
        self.worker = worker
        self.logger = logger
        listener = nil
    }

    /// An edge that serves on `listener`, made by its owner, rather than on `configuration.host` and `port`: a
    /// sidecar's egress listener, whose address its app must know before the edge runs.
    package init(configuration: EdgeConfiguration, worker: some Worker, listener: ListeningSocket, logger: Logger) {
        self.configuration = configuration
        self.worker = worker
        self.logger = logger
        self.listener = listener
    }

    /// An edge with declarative routes.
    public init(configuration: EdgeConfiguration, routes: [Route], logger: Logger) {
        self.init(configuration: configuration, worker: RoutesWorker(routes: routes), logger: logger)
    }

    public func run() async throws {
        let configuration = configuration
        let logger = logger
        let listener = try self.listener ?? ListeningSocket(host: configuration.host, port: configuration.port)
        let serving = EdgeHTTPServer.Serving(
            worker: worker, maxBodyBytes: configuration.maxBodyBytes, maxStreamedBodyBytes: configuration.maxStreamedBodyBytes,
            maxBufferedBytes: configuration.maxBufferedBytes,
            idleTimeout: configuration.idleTimeout, headerTimeout: configuration.headerTimeout, tunnels: configuration.tunnels, logger: logger
        )
        let ids = RequestIDs()
        let bus = BusLoop<EdgeBus>(name: "berth-edge") { loop, descriptors in
            try EdgeBus(
                configuration: configuration, serving: serving, listener: listener, ids: ids, loop: loop, descriptors: descriptors,
                logger: logger
            )
        }
        logger.info("edge listening", metadata: ["berth.listen": "\(listener.address)", "berth.routers": "\(configuration.routers)"])

        try await withGracefulShutdownHandler {
            try await bus.run()
        } onGracefulShutdown: {
            logger.info("edge draining: no new connections; finishing the requests in flight")
            bus.execute { edge in
                edge.server.drain { bus.stop() }
            }
        }
    }
}
