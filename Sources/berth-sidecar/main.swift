import ArgumentParser
import BerthCommandLine
import BerthSidecar

@main
struct BerthSidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth-sidecar",
        abstract: "One per container instance: turns requests from the bus into HTTP requests on the app's port."
    )

    @Option(help: "The router's backend endpoint.") var router = "tcp://127.0.0.1:7701"
    @Option(help: "The router's events-in endpoint.") var events = "tcp://127.0.0.1:7702"
    @Option(name: .customLong("class"), help: "The container class of this instance.") var className = "ContainerA"
    @Option(help: "This instance's id, unique within its class.") var instance = "a-0"
    @Option(help: "The port the app listens on.") var port = 8080
    @Option(name: .customLong("extra-port"), help: "Another port the app listens on (repeatable).") var extraPorts: [Int] = []
    @Option(help: "The host the app listens on.") var appHost = "127.0.0.1"
    @Option(help: "Requests handled at once.") var capacity = 64
    @Option(help: "Heartbeat interval.") var heartbeat = DurationArgument(.seconds(1))
    @Option(help: "How long SIGTERM waits for requests in flight.") var drainTimeout = DurationArgument(.seconds(10))
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard (1...65_535).contains(port) else { throw ValidationError("--port \(port) is not a TCP port (1-65535)") }
        guard capacity >= 1 else { throw ValidationError("--capacity must be at least 1") }
    }

    func run() async throws {
        let logger = common.bootstrapLogging(label: "berth-sidecar")
        var configuration = SidecarConfiguration()
        configuration.router = router
        configuration.events = events
        configuration.className = className
        configuration.instanceID = instance
        configuration.port = port
        configuration.extraPorts = extraPorts
        configuration.appHost = appHost
        configuration.capacity = capacity
        configuration.heartbeatInterval = heartbeat.duration
        configuration.drainTimeout = drainTimeout.duration
        try await runUntilSignalled(SidecarService(configuration: configuration, logger: logger), logger: logger)
    }
}
