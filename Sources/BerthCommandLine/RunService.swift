import Logging
import ServiceLifecycle
import UnixSignals

/// Runs `service` until SIGTERM or SIGINT, which start a graceful shutdown (in-flight work is finished first).
public func runUntilSignalled(_ service: some Service, logger: Logger) async throws {
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: [.init(service: service)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    try await group.run()
}
