import BerthCompose
import Foundation

/// How instances of one class can all use the same port.
public enum Isolation: String, Sendable, Codable {
    /// Each sidecar and its app get their own network namespace: every instance listens on the configured port,
    /// as containers do. Needs root (or user namespaces) and `unshare`.
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
    }

    public var name: String
    public var isolation: Isolation
    /// Folder for the mesh's state, logs and ipc endpoints.
    public var runtimeDirectory: String
    public var services: [Service]
    /// Where subscribers (berth tap, berth ps) reach the event stream.
    public var eventsOut: String

    /// `logLevel` and `ioScheduling` go to every process of the mesh as `--log-level` and `--io-scheduling`;
    /// `otlpEndpoint` to the edge and every sidecar as `--otlp-endpoint`.
    public init(
        compose: ComposeFile, executables: Executables, isolation: Isolation, runtimeDirectory: String,
        logLevel: String = "info", ioScheduling: String = "batch", otlpEndpoint: String? = nil
    ) {
        name = compose.name
        self.isolation = isolation
        self.runtimeDirectory = runtimeDirectory
        eventsOut = compose.router.eventsOut
        let router = compose.router
        let heartbeat = Self.text(router.heartbeat)
        let everyProcess = ["--log-level", logLevel, "--io-scheduling", ioScheduling]

        // Sidecars in their own network namespace cannot reach 127.0.0.1 of this one: they use ipc:// endpoints,
        // which each router binds beside its tcp:// ones.
        let namespaced = isolation == .networkNamespace
        let replicas = (0..<router.replicas).map { router.replica($0) }
        let backendIPC = replicas.indices.map { "ipc://" + Self.backendSocket(in: runtimeDirectory, replica: $0) }
        let eventsIPC = replicas.indices.map { "ipc://" + Self.eventsInSocket(in: runtimeDirectory, replica: $0) }
        // A namespaced sidecar's egress listener follows the directory as an edge does, over an ipc:// frontend.
        let frontendIPC = replicas.indices.map { "ipc://" + Self.frontendSocket(in: runtimeDirectory, replica: $0) }
        var services: [Service] = []
        for (index, replica) in replicas.enumerated() {
            services.append(Service(
                name: replicas.count == 1 ? "router" : "router-\(index)", kind: .router,
                command: [executables.router,
                          "--frontend", namespaced ? "\(replica.frontend),\(frontendIPC[index])" : replica.frontend,
                          "--backend", namespaced ? "\(replica.backend),\(backendIPC[index])" : replica.backend,
                          "--events-in", namespaced ? "\(replica.eventsIn),\(eventsIPC[index])" : replica.eventsIn,
                          "--events-out", replica.eventsOut,
                          "--heartbeat", heartbeat] + everyProcess,
                stopGracePeriod: .seconds(5)
            ))
        }
        let sidecarRouters = (namespaced ? backendIPC : replicas.map(\.backend)).joined(separator: ",")
        let sidecarEvents = (namespaced ? eventsIPC : replicas.map(\.eventsIn)).joined(separator: ",")
        let egressRouters = (namespaced ? frontendIPC : replicas.map(\.frontend)).joined(separator: ",")
        let meshClasses = compose.containers.map(\.name).joined(separator: ",")

        for container in compose.containers {
            for index in 0..<container.instances {
                let instance = "\(Self.instancePrefix(container.name))-\(index)"
                let offset = namespaced ? 0 : index
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
                               "--stop-grace-period", Self.text(container.stopGracePeriod)] + everyProcess
                for port in container.ports { command += ["--extra-port", String(port + offset)] }
                // The app's own egress listener ($BERTH_URL): the same port in every namespace, a free one where
                // instances share the network.
                command += ["--egress-listen", namespaced ? "127.0.0.1:\(Self.egressPort)" : "127.0.0.1:0",
                            "--egress-router", egressRouters, "--mesh-classes", meshClasses]
                if let egress = container.egress { command += ["--egress", egress.joined(separator: ",")] }
                if container.internet { command.append("--internet") }
                if let otlpEndpoint { command += ["--otlp-endpoint", otlpEndpoint] }
                if let sleepAfter = container.sleepAfter { command += ["--sleep-after", Self.text(sleepAfter)] }
                if let readiness = container.readiness { command += ["--readiness-path", readiness.path] }
                if let workingDir = container.workingDir { command += ["--workdir", workingDir] }
                for variable in container.environment { command += ["--env", "\(variable.name)=\(variable.value)"] }
                command += ["--"] + executables.resolve(container.command)
                if namespaced {
                    command = ["/usr/bin/unshare", "--net", "--", "/bin/sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""] + command
                }
                services.append(Service(
                    name: "\(container.name)/\(instance)", kind: .sidecar, command: command,
                    className: container.name, instanceID: instance, appPort: container.port + offset,
                    stopGracePeriod: container.stopGracePeriod + .seconds(2)
                ))
            }
        }

        let edge = compose.edge
        var edgeCommand = (edge.command.map(executables.resolve) ?? [executables.edge]) + [
            "--listen", "\(edge.host):\(edge.port)", "--router", replicas.map(\.frontend).joined(separator: ","),
            "--events", replicas.map(\.eventsIn).joined(separator: ","),
            "--timeout", Self.text(edge.timeout), "--heartbeat", heartbeat,
        ] + everyProcess
        for route in edge.routes { edgeCommand += ["--route", route.argument] }
        if let otlpEndpoint { edgeCommand += ["--otlp-endpoint", otlpEndpoint] }
        services.append(Service(name: "edge", kind: .edge, command: edgeCommand, stopGracePeriod: .seconds(10)))
        if let dashboard = compose.dashboard {
            services.append(Service(
                name: "dashboard", kind: .dashboard,
                command: [executables.berth, "dashboard", "--listen", "\(dashboard.host):\(dashboard.port)",
                          "--events-out", router.eventsOut, "--edge", "http://\(edge.host):\(edge.port)"] + everyProcess,
                stopGracePeriod: .seconds(5)
            ))
        }
        self.services = services
    }

    /// The port of a sidecar's egress listener in its instance's network namespace.
    public static let egressPort = 15001

    static func backendSocket(in folder: String, replica: Int) -> String { folder + "/backend-\(replica).ipc" }
    static func frontendSocket(in folder: String, replica: Int) -> String { folder + "/frontend-\(replica).ipc" }
    static func eventsInSocket(in folder: String, replica: Int) -> String { folder + "/events-in-\(replica).ipc" }

    /// The socket files a mesh's routers may leave in `folder` (for namespaced sidecars): removed when it stops.
    public static func socketFiles(in folder: String) -> [String] {
        (0..<RouterSpec.replicaRange.upperBound).flatMap {
            [backendSocket(in: folder, replica: $0), eventsInSocket(in: folder, replica: $0), frontendSocket(in: folder, replica: $0)]
        }
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
