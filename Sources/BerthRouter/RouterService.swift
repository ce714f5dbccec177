import BerthBus
import Logging
import ServiceLifecycle

/// `berth-router` as a service: the directory of the mesh and its event proxy, on its own bus thread.
public struct RouterService: Service {
    private let loop: BusLoop<RouterCore>

    public init(configuration: RouterConfiguration, logger: Logger) {
        loop = BusLoop(name: "berth-router") {
            try RouterCore(configuration: configuration, logger: logger)
        }
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await loop.run()
        }
    }
}
