import ArgumentParser
import BerthCommandLine
import BerthEdge

/// The seed's Worker: for `/` (or `/send`) it fetches container A's payload and posts it to container B, then
/// returns B's answer. Every other path goes through the declarative routes (`/a/`, `/b/`), straight from the edge's
/// thread, where bodies and WebSockets stream.
struct PortForwardingWorker: DirectWorker {
    let routes: RoutesWorker

    func decide(_ request: EdgeRequest) -> DirectDecision {
        request.path == "/" || request.path == "/send" ? .worker : routes.decide(request)
    }

    func fetch(_ request: EdgeRequest, env: Environment) async throws -> EdgeResponse {
        guard request.path == "/" || request.path == "/send" else {
            return try await routes.fetch(request, env: env)
        }
        let payload = await env.container("ContainerA", named: "a").fetch("/get-payload")
        guard payload.status == 200 else { return payload }
        var answer = await env.container("ContainerB", named: "b").fetch(
            "/receive", method: "POST", headers: [Header("content-type", payload.header("content-type") ?? "application/json")],
            body: payload.body
        )
        if let a = payload.servedBy, let b = answer.servedBy {
            answer.headers.append(Header("x-berth-path", "\(a.className)/\(a.instanceID):\(a.port) -> \(b.className)/\(b.instanceID):\(b.port)"))
        }
        return answer
    }
}

@main
struct DemoEdge: BerthExecutable {
    static let configuration = CommandConfiguration(
        commandName: "demo-edge",
        abstract: "The original demo's edge: a Worker that fetches from container A and posts to container B."
    )

    @OptionGroup var edge: EdgeOptions

    func run() async throws {
        try await edge.run(label: "demo-edge") { routes in PortForwardingWorker(routes: RoutesWorker(routes: routes)) }
    }
}
