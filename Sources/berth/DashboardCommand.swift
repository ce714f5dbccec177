import ArgumentParser
import BerthCommandLine
import BerthDashboard

struct Dashboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a live web page of the mesh: a card per container and the network log.",
        discussion: """
            Subscribes to the router's event stream and serves, on --listen: the page (/), the events as \
            server-sent events (/events), every container's counters as JSON (/stats) and /health. The page's \
            button sends a request through the edge given by --edge.

            Examples:
              berth dashboard                # then open http://127.0.0.1:8788/
              berth dashboard --listen 0.0.0.0:8788 --events-out tcp://10.0.0.5:7703 \\
                --edge http://10.0.0.5:8787
            """
    )

    @Option(help: ArgumentHelp("The address to serve the page on (default: 127.0.0.1:8788).", valueName: "host:port"))
    var listen: HostPort?

    @Option(name: .customLong("events-out"), help: "The routers' events-out endpoints (XPUB), comma-separated: each event is counted once.")
    var eventsOut = "tcp://127.0.0.1:7703"

    @Option(help: "The edge's base URL, for the page's \"send a request\" button.")
    var edge = "http://127.0.0.1:8787"

    @OptionGroup var security: SecurityOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard edge.hasPrefix("http://") || edge.hasPrefix("https://") else {
            throw ValidationError("--edge must be an http:// or https:// URL, not '\(edge)'.")
        }
    }

    func run() async throws {
        let logger = common.bootstrap(label: "berth.dashboard")
        var configuration = DashboardConfiguration()
        if let listen {
            configuration.host = listen.host
            configuration.port = listen.port
        }
        configuration.eventsOut = eventsOut
        configuration.edge = edge
        configuration.security = try security.start(logger: logger)
        try await runUntilSignalled(DashboardService(configuration: configuration, logger: logger), logger: logger)
    }
}
