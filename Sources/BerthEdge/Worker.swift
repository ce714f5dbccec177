import BerthWire
// What a Worker handles of the wire, and nothing more: not Envelope, Ready or the codec.
@_exported import struct BerthWire.Endpoint
@_exported import enum BerthWire.ErrorCode
@_exported import struct BerthWire.Header
@_exported import struct BerthWire.MeshError
@_exported import struct BerthWire.Target
// The pieces of a body.
@_exported import struct NIOCore.ByteBuffer

/// A request as the edge received it, or as a Worker builds it for a container.
public struct EdgeRequest: Sendable {
    public var method: String
    /// Without the query.
    public var path: String
    /// Without the `?`.
    public var query: String
    public var headers: [Header]
    public var body: Body
    /// The `host[:port]` of an absolute-form target (`GET http://host/path`, as clients send to a proxy); nil for
    /// the usual origin-form (`GET /path`).
    public var authority: String?

    public init(method: String = "GET", path: String, query: String = "", headers: [Header] = [], body: Body = Body()) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The value of the first header named `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveEquals(name) }?.value
    }
}

/// What a container, a Worker or Berth itself answered.
public struct EdgeResponse: Sendable {
    public var status: Int
    public var headers: [Header]
    public var body: Body
    /// Set when the mesh, not the app, produced this answer: which part failed and why.
    public var meshError: MeshError?
    /// The instance that served it.
    public var servedBy: Endpoint?

    public init(status: Int, headers: [Header] = [], body: Body = Body()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A plain-text answer.
    public static func text(_ text: String, status: Int = 200) -> EdgeResponse {
        EdgeResponse(status: status, headers: [Header("content-type", "text/plain; charset=utf-8")], body: Body(string: text))
    }

    /// A JSON answer from text that already is JSON.
    public static func json(_ json: String, status: Int = 200) -> EdgeResponse {
        EdgeResponse(status: status, headers: [Header("content-type", "application/json")], body: Body(string: json))
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveEquals(name) }?.value
    }
}

/// The routing logic of an edge, in code: Berth's counterpart of a Cloudflare Worker.
///
/// ```swift
/// struct Forward: Worker {
///     func fetch(_ request: EdgeRequest, env: Environment) async throws -> EdgeResponse {
///         try await env.container("ContainerA", named: "a").fetch(request)
///     }
/// }
/// ```
///
/// A Worker sees bodies whole unless it says it takes them as streams (`streamsBodies`). One that does gets request
/// bodies over 1 MiB, or of unknown length, as they arrive, and the answers of containers that stream as they come; it
/// may pass either on as it is, read it piece by piece, or collect it. Any Worker may answer with a body it builds as
/// a stream (`Body(stream:)`), which its client gets piece by piece.
public protocol Worker: Sendable {
    func fetch(_ request: EdgeRequest, env: Environment) async throws -> EdgeResponse

    /// Whether this Worker takes bodies that stream (`Body.isStream`): false unless it says so.
    var streamsBodies: Bool { get }
}

extension Worker {
    public var streamsBodies: Bool { false }
}

/// What a Worker can reach: the containers of the mesh.
public struct Environment: Sendable {
    let mesh: MeshClient

    /// The instance of `className` that `name` maps to: the same name reaches the same instance while it lives.
    public func container(_ className: String, named name: String) -> Container {
        Container(mesh: mesh, target: Target(className: className, instanceName: name))
    }

    /// Any instance of `className`: the least loaded one.
    public func container(_ className: String) -> Container {
        Container(mesh: mesh, target: Target(className: className))
    }
}

/// A stub for one container (or any of a class), like `getContainer(env.X, name)` in `@cloudflare/containers`.
public struct Container: Sendable {
    let mesh: MeshClient
    public let target: Target

    /// Sends `request` to the container, on its configured port or on `port`: its body streams if it is a stream.
    /// Never throws for a failure of the mesh: that comes back as a response with `meshError` set. To a Worker that
    /// `streamsBodies`, an answer the app streams (large, or of unknown length) comes back as a stream.
    public func fetch(_ request: EdgeRequest, port: Int? = nil) async -> EdgeResponse {
        await mesh.send(request, to: target, port: port)
    }

    public func fetch(
        _ path: String,
        method: String = "GET",
        headers: [Header] = [],
        body: Body = Body(),
        port: Int? = nil
    ) async -> EdgeResponse {
        var pathOnly = Substring(path)
        var query = Substring("")
        if let mark = path.firstIndex(of: "?") {
            pathOnly = path[..<mark]
            query = path[path.index(after: mark)...]
        }
        return await fetch(EdgeRequest(method: method, path: String(pathOnly), query: String(query), headers: headers, body: body), port: port)
    }
}
