import ArgumentParser
import BerthBus
import BerthMetrics
import Logging
import ServiceLifecycle
import UnixSignals

/// Runs `service` until SIGTERM or SIGINT, which start a graceful shutdown (in-flight work is finished first).
public func runUntilSignalled(_ service: some Service, logger: Logger) async throws {
    try await runUntilSignalled([service], logger: logger)
}

/// Runs `services` together until SIGTERM or SIGINT; graceful shutdown goes through them in reverse order. Then
/// gives the bus up to a second to send what it still holds.
public func runUntilSignalled(_ services: [any Service], logger: Logger) async throws {
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    try await group.run()
    // The events published while stopping (an app's STOPPING and EXITED) are still in libzmq's queue.
    Context.shared.terminate(waitingAtMost: .seconds(1))
}

/// `--metrics HOST:PORT`: serve Prometheus metrics there.
public struct MetricsOptions: ParsableArguments {
    @Option(name: .customLong("metrics"), help: "Serve Prometheus metrics at http://HOST:PORT/metrics (off when not given).")
    public var address: HostPort?

    public init() {}

    /// `service` and, when asked for, the metrics server beside it. Call before building `service`, so that its
    /// metrics go to Prometheus from the start.
    public func services(logger: Logger) -> [any Service] {
        guard let address else { return [] }
        return [MetricsServer(host: address.host, port: address.port, logger: logger)]
    }
}
