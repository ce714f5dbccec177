import BerthWire

/// A declarative route: requests whose path starts with `prefix` go to `className` (a named instance, or any).
public struct Route: Sendable, Hashable, CustomStringConvertible {
    public var prefix: String
    public var className: String
    public var instanceName: String?

    public init(prefix: String, className: String, instanceName: String? = nil) {
        self.prefix = prefix
        self.className = className
        self.instanceName = instanceName
    }

    /// Parses `PREFIX=CLASS[@NAME]`, e.g. `/b/=ContainerB@b`.
    public init(parsing text: String) throws(RouteError) {
        guard let equals = text.firstIndex(of: "=") else {
            throw RouteError(route: text, message: "expected PREFIX=CLASS[@NAME]")
        }
        let prefix = String(text[..<equals])
        var destination = String(text[text.index(after: equals)...])
        var name: String?
        if let at = destination.firstIndex(of: "@") {
            name = String(destination[destination.index(after: at)...])
            destination = String(destination[..<at])
            guard !(name!.isEmpty) else { throw RouteError(route: text, message: "the instance name after @ is empty") }
        }
        guard prefix.hasPrefix("/") else { throw RouteError(route: text, message: "the prefix must start with /") }
        guard !destination.isEmpty else { throw RouteError(route: text, message: "the container class is empty") }
        self.init(prefix: prefix, className: destination, instanceName: name)
    }

    public var description: String { "\(prefix)=\(className)\(instanceName.map { "@\($0)" } ?? "")" }

    /// The path the app sees: the prefix taken off, keeping a leading slash.
    func strip(_ path: String) -> String {
        let rest = path.dropFirst(prefix.count)
        return rest.hasPrefix("/") ? String(rest) : "/" + rest
    }

    func matches(_ path: String) -> Bool {
        if path.hasPrefix(prefix) { return true }
        // `/a/` also takes `/a`.
        return prefix.hasSuffix("/") && path == prefix.dropLast()
    }
}

public struct RouteError: Error, CustomStringConvertible, Sendable {
    public var route: String
    public var message: String
    public var description: String { "invalid route '\(route)': \(message)" }
}

/// The Worker behind declarative routes: the longest matching prefix wins, the prefix is stripped, and the
/// request goes on unchanged. A route that names no instance takes the name from `x-berth-instance`, if sent.
public struct RoutesWorker: DirectWorker {
    public let routes: [Route]

    public init(routes: [Route]) {
        self.routes = routes.sorted { $0.prefix.count > $1.prefix.count }
    }

    public func fetch(_ request: EdgeRequest, env: Environment) async throws -> EdgeResponse {
        await env.fetch(decide(request))
    }

    /// Where a request goes: the routing rule itself, shared by `fetch` and the edge's task-free path.
    public func decide(_ request: EdgeRequest) -> DirectDecision {
        guard let route = routes.first(where: { $0.matches(request.path) }) else {
            let known = routes.map(\.prefix).joined(separator: ", ")
            return .answer(.failure(MeshError(code: .badRequest, message: "no route for \(request.path) (routes: \(known.isEmpty ? "none" : known))", component: "edge"), status: 404))
        }
        var forwarded = request
        forwarded.path = route.strip(request.path)
        // A route without a name takes one from the request, so clients can be sticky without a Worker.
        var name = route.instanceName
        if let index = forwarded.headers.firstIndex(where: { $0.name.caseInsensitiveEquals(Failures.instanceHeader) }) {
            name = name ?? forwarded.headers[index].value
            forwarded.headers.remove(at: index)
        }
        return .forward(forwarded, to: Target(className: route.className, instanceName: name), port: nil)
    }
}

/// A Worker that decides where a request goes on the edge's own thread, with no task: declarative routes, a
/// sidecar's egress listener, or a Worker of yours that needs its task for some paths only. The edge's server sends
/// what `decide` forwards straight from that thread: no task, and bodies and WebSockets stream through as they come.
/// `fetch` gets only the requests `decide` leaves to it (`.worker`).
///
/// ```swift
/// struct Edge: DirectWorker {
///     let routes: RoutesWorker
///     func decide(_ request: EdgeRequest) -> DirectDecision {
///         request.path == "/send" ? .worker : routes.decide(request)
///     }
///     func fetch(_ request: EdgeRequest, env: Environment) async throws -> EdgeResponse { … }
/// }
/// ```
public protocol DirectWorker: Worker {
    /// Called on the edge's thread for every request, once its head is in: it must not block.
    func decide(_ request: EdgeRequest) -> DirectDecision
}

/// What a `DirectWorker` decided.
public enum DirectDecision: Sendable {
    /// Into the mesh, to `target`, on `port` (nil: the class's configured port).
    case forward(EdgeRequest, to: Target, port: Int?)
    /// The answer to give at once (no route, a refusal).
    case answer(EdgeResponse)
    /// It needs the Worker's task: `fetch` handles it.
    case worker
}

extension Environment {
    /// What a `DirectWorker`'s `fetch` does with a decision it can carry out in a task; `.worker` has no meaning here.
    package func fetch(_ decision: DirectDecision) async -> EdgeResponse {
        switch decision {
        case .answer(let response): response
        case .forward(let forwarded, let target, let port): await mesh.send(forwarded, to: target, port: port)
        case .worker: .failure(MeshError(code: .internal, message: "the worker asked for its task from within it", component: "edge"))
        }
    }
}
