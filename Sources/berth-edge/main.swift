import ArgumentParser
import BerthCommandLine
import BerthEdge

@main
struct BerthEdgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth-edge",
        abstract: "The HTTP front door of a Berth mesh, with declarative routes.",
        discussion: "For routing logic in code, build your own executable on the BerthEdge library with a Worker."
    )

    @Option(help: "Address to listen on.") var listen = HostPort(argument: "127.0.0.1:8787")!
    @Option(help: "The router's frontend endpoint.") var router = "tcp://127.0.0.1:7700"
    @Option(help: "The router's events-in endpoint.") var events = "tcp://127.0.0.1:7702"
    @Option(help: "PREFIX=CLASS[@NAME]: requests under PREFIX go to CLASS (the instance NAME maps to, or any); the prefix is stripped. Repeatable.")
    var route: [String] = []
    @Option(help: "Deadline for a request without x-berth-timeout-ms.") var timeout = DurationArgument(.seconds(30))
    @Option(help: "Largest request body in bytes; larger gets 413.") var maxBody = 32 << 20
    @Option(help: "Heartbeat interval.") var heartbeat = DurationArgument(.seconds(1))
    @Option(help: "This edge's name in traffic events.") var name = "edge"
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let logger = common.bootstrapLogging(label: "berth-edge")
        let routes = try route.map { text in
            do { return try Route(parsing: text) } catch { throw ValidationError("\(error)") }
        }
        var configuration = EdgeConfiguration()
        configuration.host = listen.host
        configuration.port = listen.port
        configuration.router = router
        configuration.events = events
        configuration.timeout = timeout.duration
        configuration.maxBodyBytes = maxBody
        configuration.heartbeatInterval = heartbeat.duration
        configuration.name = name
        try await runUntilSignalled(EdgeService(configuration: configuration, routes: routes, logger: logger), logger: logger)
    }
}
