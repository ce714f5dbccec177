import BerthCompose
import Foundation

/// How instances of one class can all use the same port.
public enum Isolation: String, Sendable, Codable {
    /// Each app gets its own network namespace from its sidecar (`berth-sidecar --network-namespace`), which stays
    /// in the host's: every instance listens on the configured port, as containers do. Needs root.
    case networkNamespace = "netns"
    /// Instance i listens on the configured port + i and learns it from `$PORT`.
    case portPerInstance = "port"

    /// Network namespaces when this process may make them, ports otherwise.
    public static func detect() -> Isolation {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), geteuid() == 0 else { return .portPerInstance }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        probe.arguments = ["--net", "--", "/bin/true"]
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return .portPerInstance }
        probe.waitUntilExit()
        return probe.terminationStatus == 0 ? .networkNamespace : .portPerInstance
    }
}

/// Where the Berth executables are: beside the running `berth`, unless told otherwise.
public struct Executables: Sendable {
    /// The folder they are in.
    public var directory: String
    public var router: String
    public var sidecar: String
    public var edge: String
    /// `berth` itself, which serves the dashboard.
    public var berth: String

    public init(directory: String) {
        self.directory = directory
        router = directory + "/berth-router"
        sidecar = directory + "/berth-sidecar"
        edge = directory + "/berth-edge"
        berth = directory + "/berth"
    }

    /// A compose file's command, with its program found: a bare name (`demo-edge`, `my-worker`) is looked for
    /// beside `berth` first, so that a compose file names Berth's executables, and those built with it, the same
    /// way in a debug build, a release build and an installation; otherwise it is left for PATH (`python3`). A
    /// program with a slash in it is a path, relative to the folder `berth up` runs in.
    public func resolve(_ command: [String]) -> [String] {
        guard let program = command.first, !program.isEmpty, !program.contains("/") else { return command }
        let beside = directory + "/" + program
        guard FileManager.default.isExecutableFile(atPath: beside) else { return command }
        return [beside] + command.dropFirst()
    }

    /// The folder of the running executable.
    public static func besideThisProgram() -> Executables {
        Executables(directory: URL(fileURLWithPath: thisProgram).deletingLastPathComponent().path)
    }

    /// The running executable's path, symbolic links resolved. From /proc, not argv[0]: a `berth` found on PATH
    /// has only its bare name there, which would be taken for a file in the current folder.
    public static var thisProgram: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
    }
}

/// Every process of a mesh, in start order, with its command line: the compose file made concrete.
public struct MeshPlan: Sendable {
    public enum Kind: String, Sendable, Codable { case router, sidecar, edge, dashboard }

    public struct Service: Sendable {
        /// `router`, `edge`, or `CLASS/INSTANCE`.
        public var name: String
        public var kind: Kind
        public var command: [String]
        /// For sidecars: the container class, instance id and the port its app listens on.
        public var className: String?
        public var instanceID: String?
        public var appPort: Int?
        public var stopGracePeriod: Duration
        /// The host it runs on, in a multi-host file; nil when the file has no `hosts:`.
        public var host: String?
    }

    public var name: String
    public var isolation: Isolation
    /// Folder for the mesh's state, logs and ipc endpoints.
    public var runtimeDirectory: String
    /// What this machine runs: every service, or in a multi-host file this host's share.
    public var services: [Service]
    /// Every service of the mesh, on every host.
    public var everywhere: [Service]
    /// This machine's host, in a multi-host file.
    public var host: String?
    /// Where subscribers (berth tap, berth ps) reach the event stream: every router's events-out, comma-separated.
    public var eventsOut: String
    /// Where clients reach the routers for the directory (`berth ps` across hosts).
    public var routerFrontends: [String]
    /// The edge's address, as `http://HOST:PORT`.
    public var edgeURL: String

    /// `logLevel` and `ioScheduling` go to every process of the mesh as `--log-level` and `--io-scheduling`;
    /// `otlpEndpoint` to the edge and every sidecar as `--otlp-endpoint`. `host`: the host of a multi-host file this
    /// machine is; ignored for a file without `hosts:`.
    public init(
        compose: ComposeFile, executables: Executables, isolation: Isolation, runtimeDirectory: String,
        logLevel: String = "info", ioScheduling: String = "batch", otlpEndpoint: String? = nil, host: String? = nil
    ) {
        name = compose.name
        self.isolation = isolation
        self.runtimeDirectory = runtimeDirectory
        let placed = Placement(compose)
        self.host = placed.isMultiHost ? host : nil
        let router = compose.router
        let heartbeat = Self.text(router.heartbeat)
        let everyProcess = ["--log-level", logLevel, "--io-scheduling", ioScheduling]
        func security(_ role: String) -> [String] {
            guard let security = compose.security else { return [] }
            return ["--curve-key", security.secretKey(role), "--curve-authorized", security.keys]
        }

        let replicas = Self.routers(of: compose)
        // Subscribers follow every replica, so that the event stream outlives any one router.
        eventsOut = replicas.map(\.eventsOut).joined(separator: ",")
        routerFrontends = replicas.map(\.frontend)
        var services: [Service] = []
        for (index, replica) in replicas.enumerated() {
            services.append(Service(
                name: replicas.count == 1 ? "router" : "router-\(index)", kind: .router,
                command: [executables.router,
                          "--frontend", replica.frontend,
                          "--backend", replica.backend,
                          "--events-in", replica.eventsIn,
                          "--events-out", replica.eventsOut,
                          "--heartbeat", heartbeat] + security("router") + everyProcess,
                stopGracePeriod: .seconds(5), host: router.placement
            ))
        }
        // Sidecars stay in the host's network namespace (only their apps get one of their own), so they reach the
        // routers on the same endpoints as everyone else.
        let sidecarRouters = replicas.map(\.backend).joined(separator: ",")
        let sidecarEvents = replicas.map(\.eventsIn).joined(separator: ",")
        let egressRouters = replicas.map(\.frontend).joined(separator: ",")
        let meshClasses = compose.containers.map(\.name).joined(separator: ",")

        for container in compose.containers {
            for index in 0..<container.instances {
                let instance = "\(Self.instancePrefix(container.name))-\(index)"
                let instanceHost = placed.isMultiHost ? container.placement[index % container.placement.count] : nil
                // Instances on one host share its ports unless each has a network namespace of its own.
                let offset = isolation == .networkNamespace ? 0 : index
                var command = [executables.sidecar,
                               "--router", sidecarRouters,
                               "--events", sidecarEvents,
                               "--class", container.name, "--instance", instance,
                               "--port", String(container.port + offset),
                               "--capacity", String(container.capacity), "--heartbeat", heartbeat,
                               "--start-timeout", Self.text(container.startTimeout),
                               "--restart", container.restart.rawValue,
                               "--restart-backoff", Self.text(container.restartBackoff.initial),
                               "--restart-backoff-max", Self.text(container.restartBackoff.max),
                               "--stop-signal", String(container.stopSignal),
                               "--stop-grace-period", Self.text(container.stopGracePeriod)] + security("sidecar") + everyProcess
                if let address = placed.address(instanceHost) {
                    command += ["--endpoint", HostSpec(name: "", address: address).tcpAnyPort]
                }
                for port in container.ports { command += ["--extra-port", String(port + offset)] }
                // The app's own egress listener ($BERTH_URL): the same port in every namespace, a free one where
                // instances share the network.
                command += ["--egress-listen", isolation == .networkNamespace ? "127.0.0.1:\(Self.egressPort)" : "127.0.0.1:0",
                            "--egress-router", egressRouters, "--mesh-classes", meshClasses]
                if let egress = container.egress { command += ["--egress", egress.joined(separator: ",")] }
                if container.internet { command.append("--internet") }
                if let otlpEndpoint { command += ["--otlp-endpoint", otlpEndpoint] }
                if let sleepAfter = container.sleepAfter { command += ["--sleep-after", Self.text(sleepAfter)] }
                if let readiness = container.readiness { command += ["--readiness-path", readiness.path] }
                if let workingDir = container.workingDir { command += ["--workdir", workingDir] }
                for variable in container.environment { command += ["--env", "\(variable.name)=\(variable.value)"] }
                if isolation == .networkNamespace { command.append("--network-namespace") }
                command += ["--"] + executables.resolve(container.command)
                services.append(Service(
                    name: "\(container.name)/\(instance)", kind: .sidecar, command: command,
                    className: container.name, instanceID: instance, appPort: container.port + offset,
                    stopGracePeriod: container.stopGracePeriod + .seconds(2), host: instanceHost
                ))
            }
        }

        let edge = compose.edge
        let edgeListen = placed.address(edge.placement) ?? edge.host
        edgeURL = "http://\(edgeListen.contains(":") ? "[\(edgeListen)]" : edgeListen):\(edge.port)"
        var edgeCommand = (edge.command.map(executables.resolve) ?? [executables.edge]) + [
            "--listen", "\(edgeListen):\(edge.port)", "--router", replicas.map(\.frontend).joined(separator: ","),
            "--events", replicas.map(\.eventsIn).joined(separator: ","),
            "--timeout", Self.text(edge.timeout), "--heartbeat", heartbeat,
        ] + security("edge") + everyProcess
        for route in edge.routes { edgeCommand += ["--route", route.argument] }
        if let otlpEndpoint { edgeCommand += ["--otlp-endpoint", otlpEndpoint] }
        services.append(Service(name: "edge", kind: .edge, command: edgeCommand, stopGracePeriod: .seconds(10), host: edge.placement))
        if let dashboard = compose.dashboard {
            let listen = placed.address(dashboard.placement) ?? dashboard.host
            services.append(Service(
                name: "dashboard", kind: .dashboard,
                command: [executables.berth, "dashboard", "--listen", "\(listen):\(dashboard.port)",
                          "--events-out", eventsOut, "--edge", edgeURL] + security("client") + everyProcess,
                stopGracePeriod: .seconds(5), host: dashboard.placement
            ))
        }
        everywhere = services
        self.services = placed.isMultiHost ? services.filter { $0.host == host } : services
    }

    /// The port of a sidecar's egress listener in its instance's network namespace.
    public static let egressPort = 15001

    /// The routers' endpoints as every host reaches them: replica by replica, on the routers' host's address.
    public static func routers(of compose: ComposeFile) -> [RouterSpec] {
        let placed = Placement(compose)
        return (0..<compose.router.replicas).map { placed.router($0) }
    }

    /// `ContainerA` → `a`, `web` → `web`: short instance ids such as `a-0`, as in the demo.
    public static func instancePrefix(_ className: String) -> String {
        if className.hasPrefix("Container"), className.count > "Container".count {
            return className.dropFirst("Container".count).lowercased()
        }
        return className.lowercased()
    }

    static func text(_ duration: Duration) -> String { DurationParser.format(duration) }
}

/// Where a compose file's services run, and the endpoints that follow from it.
struct Placement {
    let compose: ComposeFile
    var isMultiHost: Bool { !compose.hosts.isEmpty }

    init(_ compose: ComposeFile) { self.compose = compose }

    func address(_ host: String?) -> String? { host.flatMap { compose.host(named: $0)?.address } }

    /// Router replica `index`, with its tcp:// endpoints on its host's address in a multi-host file.
    func router(_ index: Int) -> RouterSpec {
        var replica = compose.router.replica(index)
        guard let address = address(compose.router.placement) else { return replica }
        for path in [\RouterSpec.frontend, \.backend, \.eventsIn, \.eventsOut] {
            let endpoint = replica[keyPath: path]
            guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else { continue }
            replica[keyPath: path] = HostSpec(name: "", address: address).tcp(port: port)
        }
        return replica
    }
}
