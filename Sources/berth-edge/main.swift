import ArgumentParser
import BerthCommandLine
import BerthEdge

@main
struct BerthEdgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth-edge",
        abstract: "The HTTP front door of a Berth mesh, with declarative routes.",
        discussion: "For routing logic in code, build your own executable on the BerthEdge library with a Worker and EdgeOptions."
    )

    @OptionGroup var edge: EdgeOptions

    func run() async throws {
        let (configuration, routes, logger) = try edge.resolve(label: "berth-edge")
        try await runUntilSignalled(EdgeService(configuration: configuration, routes: routes, logger: logger), logger: logger)
    }
}
