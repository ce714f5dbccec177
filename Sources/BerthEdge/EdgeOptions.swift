import ArgumentParser
import BerthLink
import BerthCommandLine
import BerthOTLP
import Logging

/// The command line of an edge, for `berth-edge` and for your own Worker executable alike:
///
/// ```swift
/// @main struct MyEdge: AsyncParsableCommand {
///     @OptionGroup var edge: EdgeOptions
///     func run() async throws {
///         try await edge.run(label: "my-edge") { routes in MyWorker(routes: RoutesWorker(routes: routes)) }
///     }
/// }
/// ```
public struct EdgeOptions: ParsableArguments {
    @Option(help: "Address to listen on.") public var listen = HostPort(argument: "127.0.0.1:8787")!
    @Option(help: "Every router's frontend endpoint, separated by commas: the edge follows each one's directory.")
    public var router = "tcp://127.0.0.1:7700"
    @Option(help: "The router's events-in endpoint.") public var events = "tcp://127.0.0.1:7702"
    @Option(help: "PREFIX=CLASS[@NAME]: requests under PREFIX go to CLASS (the instance NAME maps to, or any); the prefix is stripped. Repeatable.")
    public var route: [String] = []
    @Option(help: "Deadline for a request without x-berth-timeout-ms.") public var timeout = DurationArgument(.seconds(30))
    @Option(help: "Largest request body in bytes; larger gets 413. A body a Worker reads whole is held to it (default: 32 MiB); a body that streams through a declarative route (over 1 MiB, or chunked) has no limit unless this is given.")
    public var maxBody: Int?
    @Option(help: "Heartbeat interval.") public var heartbeat = DurationArgument(.seconds(1))
    @Option(help: "Close a client connection that has sent no request (or not all of one) for this long.")
    public var idleTimeout = DurationArgument(.seconds(60))
    @Option(help: "Close a client connection whose request head has not all arrived this long after its first byte (or the connection's start), with 408.")
    public var headerTimeout = DurationArgument(EdgeConfiguration().headerTimeout)
    @Option(help: "Bytes of request bodies held at once over all connections; a body that would pass it gets 503. (default: 256 MiB, or --max-body if larger)")
    public var maxBuffered: Int?
    @Option(help: "This edge's name in traffic events.") public var name = "edge"
    @Option(help: "Requests that may wait per container class when every instance is full; more get 503.")
    public var queueLimit = 1_024
    @OptionGroup public var security: SecurityOptions
    @Option(help: "Send every span (each traffic event) to this OpenTelemetry collector over OTLP/HTTP, e.g. http://127.0.0.1:4318.")
    public var otlpEndpoint: String?
    @OptionGroup public var metrics: MetricsOptions
    @OptionGroup public var common: CommonOptions

    public init() {}

    /// Runs the edge service with `worker` (and the metrics server when `--metrics` is given) until SIGTERM or SIGINT.
    public func run(label: String, worker: (_ routes: [Route]) -> some Worker) async throws {
        var (configuration, routes, logger) = try resolve(label: label)
        var services = metrics.services(logger: logger)
        if let otlpEndpoint {
            let exporter = OTLPExporter(
                configuration: .init(endpoint: otlpEndpoint, serviceName: label, instance: configuration.name), logger: logger
            )
            configuration.spans = exporter
            services.append(exporter)
        }
        services.append(EdgeService(configuration: configuration, worker: worker(routes), logger: logger))
        try await runUntilSignalled(services, logger: logger)
    }

    /// The configuration, the parsed routes, and the process's logger (logging is set up here, once).
    public func resolve(label: String) throws -> (EdgeConfiguration, [Route], Logger) {
        let routes = try route.map { text in
            do { return try Route(parsing: text) } catch { throw ValidationError("\(error)") }
        }
        var configuration = EdgeConfiguration()
        configuration.host = listen.host
        configuration.port = listen.port
        configuration.routers = RouterList.parse(router)
        guard !configuration.routers.isEmpty else { throw ValidationError("--router names no endpoint") }
        guard queueLimit >= 0 else { throw ValidationError("--queue-limit must be 0 or more") }
        configuration.queueLimit = queueLimit
        configuration.events = events
        configuration.timeout = timeout.duration
        let maxBody = maxBody ?? configuration.maxBodyBytes
        configuration.maxBodyBytes = maxBody
        configuration.maxStreamedBodyBytes = self.maxBody
        configuration.heartbeatInterval = heartbeat.duration
        configuration.idleTimeout = idleTimeout.duration
        configuration.headerTimeout = headerTimeout.duration
        if let maxBuffered {
            guard maxBuffered >= maxBody else {
                throw ValidationError("--max-buffered (\(maxBuffered)) must be at least --max-body (\(maxBody)), or no body of the largest size could ever be read")
            }
            configuration.maxBufferedBytes = maxBuffered
        } else {
            configuration.maxBufferedBytes = max(configuration.maxBufferedBytes, maxBody)
        }
        configuration.name = name
        let logger = common.bootstrap(label: label)
        configuration.security = try security.start(logger: logger)
        return (configuration, routes, logger)
    }
}
