import ArgumentParser
import BerthCommandLine
import BerthEdge

@main
struct BerthEdgeCommand: BerthExecutable {
    static let configuration = CommandConfiguration(
        commandName: "berth-edge",
        abstract: "The HTTP front door of a Berth mesh, with declarative routes.",
        discussion: "For routing logic in code, build your own executable on the BerthEdge library with a Worker and EdgeOptions."
    )

    @OptionGroup var edge: EdgeOptions

    func run() async throws {
        try await edge.run(label: "berth-edge") { routes in RoutesWorker(routes: routes) }
    }
}
