import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A real mesh for one test: a router, sidecars, apps and an edge, each its own process on free ports.
/// Everything it started is killed when it is stopped (tests call `stop()` in a `defer`).
final class TestMesh: @unchecked Sendable {
    struct Instance {
        var className: String
        var id: String
        var appPort: Int
        var app: ChildProcess?
        var sidecar: ChildProcess?
        var metricsPort: Int?
    }

    let frontend: String
    let backend: String
    let eventsIn: String
    let eventsOut: String
    let edgePort: Int
    let heartbeat = "300ms"
    /// A second router's endpoints: `startRouter(replica: 1)` starts it, and sidecars and edges started after
    /// `useTwoRouters()` use both.
    let replicaEndpoints: (frontend: String, backend: String, eventsIn: String, eventsOut: String)
    private(set) var routerCount = 1
    private(set) var router: ChildProcess?
    private(set) var secondRouter: ChildProcess?
    private(set) var otherEdges: [ChildProcess] = []
    private(set) var routerMetricsPort: Int?
    private(set) var edgeMetricsPort: Int?
    private(set) var edge: ChildProcess?
    private(set) var instances: [Instance] = []
    /// Given to every sidecar this mesh starts (`--otlp-endpoint URL`, say).
    var sidecarArguments: [String] = []
    /// Given to every echo app this mesh starts itself (`ECHO_LOG_REQUESTS=1`, say).
    var appEnvironment: [String: String] = [:]
    let client: HTTPClient

    init() {
        func endpoint() -> String { "tcp://127.0.0.1:\(freePort())" }
        frontend = endpoint()
        backend = endpoint()
        eventsIn = endpoint()
        eventsOut = endpoint()
        replicaEndpoints = (endpoint(), endpoint(), endpoint(), endpoint())
        edgePort = freePort()
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, decompression: .disabled)
        configuration.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func startRouter(metrics: Bool = false, replica: Int = 0) throws {
        if replica == 1 {
            let endpoints = replicaEndpoints
            secondRouter = try ChildProcess(name: "router-1", executable: Paths.executable("berth-router"), arguments: [
                "--frontend", endpoints.frontend, "--backend", endpoints.backend, "--events-in", endpoints.eventsIn,
                "--events-out", endpoints.eventsOut, "--heartbeat", heartbeat, "--log-level", "debug",
            ])
            return
        }
        if metrics { routerMetricsPort = routerMetricsPort ?? freePort() }
        router = try ChildProcess(name: "router", executable: Paths.executable("berth-router"), arguments: [
            "--frontend", frontend, "--backend", backend, "--events-in", eventsIn, "--events-out", eventsOut,
            "--heartbeat", heartbeat, "--log-level", "debug",
        ] + (routerMetricsPort.map { ["--metrics", "127.0.0.1:\($0)"] } ?? []))
    }

    /// Sidecars and edges started from now on register with, and follow, both routers.
    func useTwoRouters() {
        routerCount = 2
    }

    private var frontends: String { routerCount == 1 ? frontend : "\(frontend),\(replicaEndpoints.frontend)" }
    private var backends: String { routerCount == 1 ? backend : "\(backend),\(replicaEndpoints.backend)" }
    private var eventsIns: String { routerCount == 1 ? eventsIn : "\(eventsIn),\(replicaEndpoints.eventsIn)" }

    func killRouter() {
        router?.stop()
    }

    func killSecondRouter() {
        secondRouter?.stop()
    }

    /// Another edge on its own port, with the same routes and routers; returns its port.
    func startAnotherEdge(routes: [String]) throws -> Int {
        let port = freePort()
        otherEdges.append(try ChildProcess(name: "edge-\(otherEdges.count + 1)", executable: Paths.executable("berth-edge"), arguments: [
            "--listen", "127.0.0.1:\(port)", "--router", frontends, "--events", eventsIns, "--heartbeat", heartbeat,
            "--name", "edge-\(otherEdges.count + 1)", "--log-level", "debug",
        ] + routes.flatMap { ["--route", $0] }))
        try awaitPort(port)
        return port
    }

    /// Starts `berth-edge`, or `executable`: an edge of the same command line with its own Worker (`demo-edge`).
    /// `descriptorLimit` sets both its soft and hard limit on open files (through prlimit(1)).
    func startEdge(
        routes: [String], metrics: Bool = false, arguments: [String] = [], environment: [String: String] = [:], executable: String = "berth-edge",
        descriptorLimit: Int? = nil
    ) throws {
        if metrics { edgeMetricsPort = freePort() }
        let command = [
            "--listen", "127.0.0.1:\(edgePort)", "--router", frontends, "--events", eventsIns, "--heartbeat", heartbeat,
            "--log-level", "debug",
        ] + routes.flatMap { ["--route", $0] } + (edgeMetricsPort.map { ["--metrics", "127.0.0.1:\($0)"] } ?? []) + arguments
        if let descriptorLimit {
            edge = try ChildProcess(name: "edge", executable: URL(fileURLWithPath: "/usr/bin/prlimit"),
                                    arguments: ["--nofile=\(descriptorLimit):\(descriptorLimit)", "--", Paths.executable(executable).path] + command,
                                    environment: environment)
        } else {
            edge = try ChildProcess(name: "edge", executable: Paths.executable(executable), arguments: command, environment: environment)
        }
        try awaitPort(edgePort)
    }

    /// Starts an echo app (unless `app` is false) and its sidecar; waits until the app listens. With `owned`, the
    /// sidecar starts the app itself, on `port` when given, with `sidecarArguments` for the sidecar (besides the
    /// mesh's own `sidecarArguments`, which every sidecar gets).
    @discardableResult
    func addInstance(
        className: String, id: String, app: Bool = true, owned: Bool = false, capacity: Int = 64, metrics: Bool = false,
        script: URL = Paths.echoApp, port: Int? = nil, sidecarArguments extra: [String] = [], egress: [String]? = nil
    ) throws -> Int {
        let port = port ?? freePort()
        var instance = Instance(className: className, id: id, appPort: port)
        if metrics { instance.metricsPort = freePort() }
        if owned {
            instance.sidecar = try startSidecar(className: className, id: id, port: port, capacity: capacity, metricsPort: instance.metricsPort,
                                                arguments: extra, app: ["python3", script.path], egress: egress)
            instances.append(instance)
            return instances.count - 1
        }
        if app {
            instance.app = try ChildProcess(name: "app-\(id)", executable: URL(fileURLWithPath: "/usr/bin/env"),
                                            arguments: ["python3", script.path, String(port)],
                                            environment: appEnvironment.merging(["BERTH_INSTANCE": id]) { $1 })
            try awaitPort(port)
        }
        instance.sidecar = try startSidecar(className: className, id: id, port: port, capacity: capacity, metricsPort: instance.metricsPort)
        instances.append(instance)
        return instances.count - 1
    }

    /// `egress`: arguments for an egress listener on a free port (`--egress`, `--internet`...), which follows this
    /// mesh's routers; nil: none.
    func startSidecar(
        className: String, id: String, port: Int, capacity: Int = 64, metricsPort: Int? = nil, arguments: [String] = [], app: [String] = [],
        egress: [String]? = nil
    ) throws -> ChildProcess {
        let egressArguments = egress.map { ["--egress-listen", "127.0.0.1:0", "--egress-router", frontends] + $0 } ?? []
        return try ChildProcess(name: "sidecar-\(id)", executable: Paths.executable("berth-sidecar"), arguments: [
            "--router", backends, "--events", eventsIns, "--class", className, "--instance", id, "--port", String(port),
            "--capacity", String(capacity), "--heartbeat", heartbeat, "--log-level", "debug",
        ] + (metricsPort.map { ["--metrics", "127.0.0.1:\($0)"] } ?? []) + egressArguments + sidecarArguments + arguments + (app.isEmpty ? [] : ["--"] + app))
    }

    func instance(_ id: String) -> Instance? { instances.first { $0.id == id } }

    /// A router, `count` instances `a-0`, `a-1`... of ContainerA and an edge routing `/a/` to them; returns once
    /// each instance has answered through the edge.
    func startInstances(_ count: Int, routers: Int = 1, metrics: Bool = false) async throws {
        try startRouter()
        if routers == 2 {
            try startRouter(replica: 1)
            useTwoRouters()
        }
        for index in 0..<count { try addInstance(className: "ContainerA", id: "a-\(index)") }
        try startEdge(routes: ["/a/=ContainerA"], metrics: metrics)
        for index in 0..<count {
            guard try await waitUntil("/a/instance", accept: { _, body in body == "a-\(index)" }) else { throw MeshNotUp(logs: logs) }
        }
    }

    /// The mesh most tests need: a router, one instance `a-0` of ContainerA, and an edge that routes `/a/` to it;
    /// returns once a request through the edge is answered. `metrics` goes to the router and the edge.
    func startOneInstance(
        metrics: Bool = false, instanceMetrics: Bool = false, edgeArguments: [String] = [], edgeEnvironment: [String: String] = [:],
        edgeExecutable: String = "berth-edge"
    ) async throws {
        try startRouter(metrics: metrics)
        try addInstance(className: "ContainerA", id: "a-0", metrics: instanceMetrics)
        try startEdge(routes: ["/a/=ContainerA"], metrics: metrics, arguments: edgeArguments, environment: edgeEnvironment, executable: edgeExecutable)
        guard try await waitUntil("/a/instance", accept: { response, _ in response.status == .ok }) else { throw MeshNotUp(logs: logs) }
    }

    /// Polls `url` on the edge until `accept` says yes (or the timeout passes).
    @discardableResult
    func waitUntil(_ path: String, port: Int? = nil, timeout: Duration = .seconds(10), accept: (HTTPClientResponse, String) -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let (response, body) = try? await send(path, method: .GET, port: port), accept(response, String(buffer: body)) { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    func get(_ path: String, headers: [(String, String)] = [], port: Int? = nil) async throws -> (HTTPClientResponse, String) {
        let (response, body) = try await send(path, method: .GET, headers: headers, port: port)
        return (response, String(buffer: body))
    }

    /// What a closed-loop load of `connections` clients doing `method path` for `duration` got: statuses counted, and
    /// the first bodies of failures. `during` runs once the load is on (a kill, say).
    func load(
        _ path: String, method: HTTPMethod = .GET, connections: Int = 16, for duration: Duration, during: @escaping @Sendable () async throws -> Void
    ) async throws -> (statuses: [UInt: Int], failures: [String]) {
        let deadline = ContinuousClock.now + duration
        return try await withThrowingTaskGroup(of: ([UInt: Int], [String]).self) { group in
            for _ in 0..<connections {
                group.addTask {
                    var statuses: [UInt: Int] = [:]
                    var failures: [String] = []
                    while ContinuousClock.now < deadline {
                        do {
                            let (response, body) = try await self.send(path, method: method, body: method == .POST ? ByteBuffer(string: "x") : nil)
                            statuses[response.status.code, default: 0] += 1
                            if response.status.code != 200 && failures.count < 3 { failures.append("\(response.status.code): \(String(buffer: body))") }
                        } catch {
                            statuses[0, default: 0] += 1
                            if failures.count < 3 { failures.append("\(error)") }
                        }
                    }
                    return (statuses, failures)
                }
            }
            group.addTask {
                try await Task.sleep(for: duration / 4)
                try await during()
                return ([:], [])
            }
            var statuses: [UInt: Int] = [:]
            var failures: [String] = []
            for try await (some, failed) in group {
                statuses.merge(some, uniquingKeysWith: +)
                failures += failed
            }
            return (statuses, failures)
        }
    }

    func send(_ path: String, method: HTTPMethod, headers: [(String, String)] = [], body: ByteBuffer? = nil, port: Int? = nil) async throws -> (HTTPClientResponse, ByteBuffer) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port ?? edgePort)\(path)")
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(body) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return (response, bytes)
    }

    /// Logs of every process, for a failing test's message.
    var logs: String {
        ([router, secondRouter, edge] + otherEdges + instances.flatMap { [$0.sidecar, $0.app] }).compactMap { $0 }
            .map { "--- \($0.name)\n\($0.output.suffix(3_000))" }.joined(separator: "\n")
    }

    func stop() async {
        edge?.stop()
        for other in otherEdges { other.stop() }
        secondRouter?.stop()
        for instance in instances {
            instance.sidecar?.stop()
            instance.app?.stop()
        }
        router?.stop()
        try? await client.shutdown()
    }
}

struct MeshNotUp: Error, CustomStringConvertible {
    var logs: String
    var description: String { "the mesh did not answer through the edge in time:\n\(logs)" }
}

struct PortTimeout: Error, CustomStringConvertible {
    let port: Int
    var description: String { "nothing listened on 127.0.0.1:\(port) within 10 s" }
}

/// Waits until something accepts TCP connections on `port`.
func awaitPort(_ port: Int, timeout: Duration = .seconds(10)) throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if result == 0 { return }
        usleep(20_000)
    }
    throw PortTimeout(port: port)
}

/// Runs `body` with a fresh mesh and stops every process of it afterwards, whether `body` passed or threw.
func withMesh<T>(_ body: (TestMesh) async throws -> T) async throws -> T {
    let mesh = TestMesh()
    do {
        let result = try await body(mesh)
        await mesh.stop()
        return result
    } catch {
        await mesh.stop()
        throw error
    }
}
