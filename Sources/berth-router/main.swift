import ArgumentParser
import BerthCommandLine
import BerthRouter

@main
struct BerthRouterCommand: BerthExecutable {
    static let configuration = CommandConfiguration(
        commandName: "berth-router",
        abstract: "The directory of a Berth mesh: knows every live sidecar and tells edges; proxies the event stream. Never on a request's path."
    )

    @Option(help: "ROUTER endpoint edges connect to.") var frontend = "tcp://127.0.0.1:7700"
    @Option(help: "ROUTER endpoint sidecars connect to.") var backend = "tcp://127.0.0.1:7701"
    @Option(help: "XSUB endpoint event publishers connect to.") var eventsIn = "tcp://127.0.0.1:7702"
    @Option(help: "XPUB endpoint event subscribers connect to.") var eventsOut = "tcp://127.0.0.1:7703"
    @Option(help: "Heartbeat interval; a peer silent for 3 intervals is dead.") var heartbeat = DurationArgument(.seconds(1))
    @OptionGroup var security: SecurityOptions
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let logger = common.bootstrap(label: "berth-router")
        var configuration = RouterConfiguration()
        configuration.frontend = frontend
        configuration.backend = backend
        configuration.eventsIn = eventsIn
        configuration.eventsOut = eventsOut
        configuration.heartbeatInterval = heartbeat.duration
        configuration.security = try security.start(logger: logger)
        let metricsServer = metrics.services(logger: logger)
        try await runUntilSignalled(metricsServer + [RouterService(configuration: configuration, logger: logger)], logger: logger)
    }
}
