import AsyncHTTPClient
import BerthEdge
import BerthHTTP
import BerthWire
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Everything a sidecar's egress listener is told besides where it listens (its `EgressListener`): the routers it
/// learns the mesh from, and its policy.
public struct EgressConfiguration: Sendable {
    /// Every router's frontend endpoint, as an edge's.
    public var routers = ["tcp://127.0.0.1:7700"]
    public var policy: EgressPolicy
    /// Deadline of a call that does not set `x-berth-timeout-ms`.
    public var timeout: Duration = .seconds(30)
    /// Largest request body read whole (bodies over 1 MiB, or of unknown length, stream with no limit).
    public var maxBodyBytes = 32 << 20

    public init(policy: EgressPolicy) {
        self.policy = policy
    }

    /// The environment variable that tells the app where its egress listener is.
    public static let urlVariable = "BERTH_URL"
}

/// The listening socket of a sidecar's egress listener: the one place it is made (so that it can be made in the
/// app's network namespace), and the URL the app gets in `BERTH_URL`.
public struct EgressListener: Sendable {
    let socket: ListeningSocket

    /// Listens on `host:port` where the app is: `127.0.0.1:15001` in the app's own network namespace
    /// (`MeshPlan.egressPort`; the sidecar itself stays in the host's), port 0 (any free port) where instances share
    /// one network.
    public static func open(host: String, port: Int, network: AppNetwork) throws -> EgressListener {
        guard network.isIsolated else { return EgressListener(socket: try ListeningSocket(host: host, port: port)) }
        guard host == "127.0.0.1" || host == "localhost" else {
            throw ListenError(description: "an egress listener in the app's network namespace listens on 127.0.0.1, not \(host)")
        }
        return EgressListener(socket: ListeningSocket(adopting: try network.listenTCP(port: port)))
    }

    /// `http://host:port`, with the port the kernel chose.
    public var url: String { "http://\(socket.address)" }
}

/// A sidecar's egress listener, as an edge for one app: HTTP in from the app, the mesh (or the internet) out, with
/// the app's instance as every request's source.
public struct EgressService: Service {
    private let edge: EdgeService
    /// Sends internet calls, when the policy allows them.
    private let internet: HTTPClient?

    public init(_ configuration: EgressConfiguration, listener: EgressListener, sidecar: SidecarConfiguration, logger: Logger) {
        var edge = EdgeConfiguration()
        edge.routers = configuration.routers
        edge.events = sidecar.events
        edge.name = "\(sidecar.className)/\(sidecar.instanceID)"
        edge.egressOf = Endpoint(className: sidecar.className, instanceID: sidecar.instanceID, port: UInt32(sidecar.port))
        edge.timeout = configuration.timeout
        edge.maxBodyBytes = configuration.maxBodyBytes
        edge.heartbeatInterval = sidecar.heartbeatInterval
        edge.heartbeatLiveness = sidecar.heartbeatLiveness
        edge.spans = sidecar.spans
        edge.security = sidecar.security
        edge.followsRoutersFromFirstRequest = true
        edge.tunnels = true
        internet = configuration.policy.internet ? HTTPClient(eventLoopGroupProvider: .singleton) : nil
        var logger = logger
        logger[metadataKey: "berth.egress"] = "\(listener.url)"
        let worker = EgressWorker(policy: configuration.policy, internet: internet, timeout: configuration.timeout)
        self.edge = EdgeService(configuration: edge, worker: worker, listener: listener.socket, logger: logger)
    }

    public func run() async throws {
        do {
            try await edge.run()
        } catch {
            try? await internet?.shutdown()
            throw error
        }
        try? await internet?.shutdown()
    }
}

/// What the egress listener does with each of its app's requests: the policy decides, then the request goes into
/// the mesh from the listener's own thread, as an edge's declarative routes do, or out to the internet in a task.
struct EgressWorker: DirectWorker {
    let policy: EgressPolicy
    let internet: HTTPClient?
    let timeout: Duration

    /// Names the port of a call into the mesh, taken off before it goes on (`x-berth-instance` names the instance).
    static let portHeader = "x-berth-port"

    /// Calls out of the mesh stream both ways, as calls into it do: a download of any size passes through.
    var streamsBodies: Bool { true }

    func decide(_ request: EdgeRequest) -> DirectDecision {
        let decision = policy.decide(authority: request.authority, path: request.path)
        if request.method == "CONNECT", case .mesh(let className, _, _) = decision {
            return .answer(.failure(MeshError(
                code: .badRequest,
                message: "CONNECT makes tunnels out of the mesh only; call \(className) with plain HTTP (\(Self.proxyHint))", component: "sidecar"
            )))
        }
        switch decision {
        case .denied(let rule):
            return .answer(.text("berth sidecar: egress denied: \(rule)\n", status: 403).with(header: Header(Failures.errorHeader, "egress-denied")))
        case .invalid(let why):
            return .answer(.failure(MeshError(code: .badRequest, message: why, component: "sidecar")))
        case .internet:
            return .worker
        case .mesh(let className, let port, let path):
            var forwarded = request
            forwarded.path = path
            forwarded.authority = nil
            var instance: String?
            var port = port
            if let index = forwarded.headers.firstIndex(where: { $0.name.caseInsensitiveEquals(Failures.instanceHeader) }) {
                instance = forwarded.headers.remove(at: index).value
            }
            if let index = forwarded.headers.firstIndex(where: { $0.name.caseInsensitiveEquals(Self.portHeader) }) {
                let value = forwarded.headers.remove(at: index).value
                guard let number = Int(value), (1...65_535).contains(number) else {
                    return .answer(.failure(MeshError(code: .badRequest, message: "\(Self.portHeader): \(value.debugDescription) is not a TCP port", component: "sidecar")))
                }
                port = number
            }
            forwarded.headers.removeAll { $0.name.caseInsensitiveEquals("proxy-connection") || $0.name.caseInsensitiveEquals("proxy-authorization") }
            return .forward(forwarded, to: Target(className: className, instanceName: instance), port: port)
        }
    }

    /// Calls out of the mesh; the rest is decided (and sent) without a task, but a Worker's `fetch` does it all.
    func fetch(_ request: EdgeRequest, env: Environment) async throws -> EdgeResponse {
        guard case .internet(let host, let port, let path) = policy.decide(authority: request.authority, path: request.path) else {
            return await env.fetch(decide(request))
        }
        guard let internet else {
            return .failure(MeshError(code: .internal, message: "no internet client although the policy allows the internet", component: "sidecar"))
        }
        let destination = Endpoint(className: EventNames.internetClass, instanceID: "\(host):\(port)", port: UInt32(port))
        return await env.outside(request, to: destination) { request in
            if request.method == "CONNECT" { return await tunnel(request, to: host, port: port) }
            return await send(request, to: host, port: port, path: path, over: internet)
        }
    }

    static let proxyHint = "http_proxy=$BERTH_URL, or $BERTH_URL/CLASS/PATH"

    /// A TCP tunnel out of the mesh (CONNECT host:port, as HTTPS through a proxy asks): 200 once the connection is made,
    /// then the client's bytes go to it and its bytes come back, each way as the other side takes them, until both
    /// sides are done. The bytes are not looked at.
    private func tunnel(_ request: EdgeRequest, to host: String, port: Int) async -> EdgeResponse {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(timeout.milliseconds))
                .channelOption(.allowRemoteHalfClosure, value: true)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                    }
                }
        } catch {
            return .failure(MeshError(code: .appUnreachable, message: "the tunnel to \(host):\(port) outside the mesh failed: \(error)", component: "sidecar"))
        }
        let (body, writer) = Body.makeStream()
        Task {
            do {
                try await channel.executeThenClose { inbound, outbound in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            // The client's side: when it closes its half, so does the tunnel.
                            for try await piece in request.body { try await outbound.write(piece) }
                            outbound.finish()
                        }
                        for try await piece in inbound { try await writer.write(piece) }
                        writer.finish()
                        group.cancelAll()
                    }
                }
            } catch {
                writer.fail("the tunnel to \(host):\(port) broke: \(error)")
            }
        }
        return EdgeResponse(status: 200, body: body)
    }

    /// An HTTP/1.1 request out of the mesh.
    private func send(_ request: EdgeRequest, to host: String, port: Int, path: String, over client: HTTPClient) async -> EdgeResponse {
        let hostPart = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        var outgoing = HTTPClientRequest(url: "http://\(hostPart):\(port)\(path)\(request.query.isEmpty ? "" : "?" + request.query)")
        outgoing.method = HTTPMethod(rawValue: request.method)
        for header in request.headers where !Self.hopByHop(header.name) {
            outgoing.headers.add(name: header.name, value: header.value)
        }
        if request.body.isStream {
            outgoing.body = .stream(request.body, length: request.body.length.map { .known(Int64($0)) } ?? .unknown)
        } else if !request.body.isEmpty {
            outgoing.body = .bytes(request.body.buffer)
        }
        do {
            // The timeout runs until the answer's head; its body streams for as long as it takes.
            let response = try await client.execute(outgoing, timeout: .milliseconds(timeout.milliseconds))
            let headers = response.headers.filter { !Self.hopByHop($0.name) }.map { Header($0.name, $0.value) }
            let length = response.headers.first(name: "content-length").flatMap { Int($0) }
            return EdgeResponse(status: Int(response.status.code), headers: headers, body: Body(stream: response.body, length: length))
        } catch {
            return .failure(MeshError(code: .appUnreachable, message: "the call to \(host):\(port) outside the mesh failed: \(error)", component: "sidecar"))
        }
    }

    private static func hopByHop(_ name: String) -> Bool {
        HopByHop.contains(name) || name.caseInsensitiveEquals("host") || name.caseInsensitiveEquals("content-length")
    }
}

extension EdgeResponse {
    func with(header: Header) -> EdgeResponse {
        var response = self
        response.headers.append(header)
        return response
    }
}
