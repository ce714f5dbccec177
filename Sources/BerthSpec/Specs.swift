import Glibc

/// Where the router listens (the `router:` section).
public struct RouterSpec: Sendable, Equatable {
    /// ZeroMQ endpoint clients (edges, workers) send requests to.
    public var frontend: String
    /// ZeroMQ endpoint sidecars connect to for work.
    public var backend: String
    /// ZeroMQ endpoint that collects traffic events.
    public var eventsIn: String
    /// ZeroMQ endpoint that publishes traffic events (what `berth tap` subscribes to).
    public var eventsOut: String
    /// How often peers and the router tell each other they are alive.
    public var heartbeat: Duration
    /// How many routers run: each is a full copy of the directory, and traffic flows while any one (or none) is up.
    /// Replica i listens on the endpoints above with i × 10 added to each tcp:// port (`replica(_:)`).
    public var replicas: Int
    /// The host the routers run on (`host:`), in a file with `hosts:`.
    public var placement: String?

    public init(
        frontend: String = "tcp://127.0.0.1:7700",
        backend: String = "tcp://127.0.0.1:7701",
        eventsIn: String = "tcp://127.0.0.1:7702",
        eventsOut: String = "tcp://127.0.0.1:7703",
        heartbeat: Duration = .seconds(1),
        replicas: Int = 1
    ) {
        self.frontend = frontend
        self.backend = backend
        self.eventsIn = eventsIn
        self.eventsOut = eventsOut
        self.heartbeat = heartbeat
        self.replicas = replicas
    }

    /// The replicas a compose file may ask for.
    public static let replicaRange = 1...9

    /// The endpoints of replica `index` (0 is this spec itself).
    public func replica(_ index: Int) -> RouterSpec {
        guard index > 0 else { return self }
        func shifted(_ endpoint: String) -> String {
            guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":"),
                  let port = Int(endpoint[endpoint.index(after: colon)...])
            else { return endpoint + "-\(index)" }
            return endpoint[...colon] + String(port + 10 * index)
        }
        var copy = self
        copy.frontend = shifted(frontend)
        copy.backend = shifted(backend)
        copy.eventsIn = shifted(eventsIn)
        copy.eventsOut = shifted(eventsOut)
        return copy
    }
}

/// The HTTP front door (the `edge:` section).
public struct EdgeSpec: Sendable, Equatable {
    /// Address to listen on, from `listen: HOST:PORT`.
    public var host: String
    /// Port to listen on, from `listen: HOST:PORT`.
    public var port: Int
    /// Declarative routes, in file order; each becomes a `--route` argument.
    public var routes: [RouteSpec]
    /// A Worker executable to run instead of `berth-edge`, given the same flags; nil runs `berth-edge`.
    /// Relative paths are relative to the directory `berth up` runs in.
    public var command: [String]?
    /// Deadline for a request that does not carry its own.
    public var timeout: Duration
    /// The host the edge runs on (`host:`), in a file with `hosts:`; it listens on that host's address.
    public var placement: String?

    public init(
        host: String = "127.0.0.1",
        port: Int = 8787,
        routes: [RouteSpec] = [],
        command: [String]? = nil,
        timeout: Duration = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.routes = routes
        self.command = command
        self.timeout = timeout
    }
}

/// One declarative edge route: requests under `prefix` go to `container` (the instance `instance`, or any).
public struct RouteSpec: Sendable, Equatable {
    /// Path prefix, starting with `/`; the edge strips it before forwarding.
    public var prefix: String
    /// The container (class) that serves it.
    public var container: String
    /// A particular instance, or nil for any instance of `container`.
    public var instance: String?

    public init(prefix: String, container: String, instance: String? = nil) {
        self.prefix = prefix
        self.container = container
        self.instance = instance
    }

    /// The route as `berth-edge --route` takes it: `PREFIX=CLASS[@NAME]`.
    public var argument: String {
        "\(prefix)=\(container)\(instance.map { "@\($0)" } ?? "")"
    }
}

/// One environment variable given to a container's app, as written in the file.
public struct EnvironmentVariable: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// How a container's app is checked for readiness before it gets traffic.
public struct ReadinessSpec: Sendable, Equatable {
    /// HTTP path that answers 2xx when the app is ready, e.g. `/health`.
    public var path: String
    /// Time between checks.
    public var interval: Duration
    /// How long one check may take.
    public var timeout: Duration

    public init(path: String, interval: Duration = .seconds(1), timeout: Duration = .seconds(2)) {
        self.path = path
        self.interval = interval
        self.timeout = timeout
    }
}

/// When a container's app is started again after it exits.
public enum RestartPolicy: String, Sendable, Equatable, CaseIterable {
    /// Whatever the exit status.
    case always
    /// Only after a non-zero exit or a signal.
    case onFailure = "on-failure"
    /// Never.
    case no
}

/// Exponential backoff between restarts: `initial`, doubling up to `max`.
public struct BackoffSpec: Sendable, Equatable {
    public var initial: Duration
    public var max: Duration

    public init(initial: Duration = .milliseconds(250), max: Duration = .seconds(10)) {
        self.initial = initial
        self.max = max
    }
}

/// One container (a class of instances) of the mesh: the app a sidecar starts and how to run it.
///
/// Relative paths in `command` and `workingDir` are relative to the directory `berth up` runs in (in this repo,
/// the repo root), not to the compose file; ``ComposeFile/directory`` is there for tools that prefer the latter.
public struct ContainerSpec: Sendable, Equatable {
    /// The container's name, its class in routes and topics: letters, digits, `-` and `_`.
    public var name: String
    /// The app's executable and arguments.
    public var command: [String]
    /// The port the app listens on (given to it as `$PORT`).
    public var port: Int
    /// Further ports the app listens on.
    public var ports: [Int]
    /// How many instances to run.
    public var instances: Int
    /// Environment for the app, in file order.
    public var environment: [EnvironmentVariable]
    /// Directory to start the app in; nil for the directory `berth up` runs in.
    public var workingDir: String?
    /// Stop an idle instance after this long without requests; nil keeps it running.
    public var sleepAfter: Duration?
    /// How to tell the app is ready; nil means ready once started.
    public var readiness: ReadinessSpec?
    /// When to start the app again after it exits.
    public var restart: RestartPolicy
    /// Delay between restarts.
    public var restartBackoff: BackoffSpec
    /// The signal that asks the app to stop.
    public var stopSignal: Int32
    /// How long the app may take to stop before it is killed.
    public var stopGracePeriod: Duration
    /// How long the app may take to become ready before the start counts as failed.
    public var startTimeout: Duration
    /// Requests one instance handles at once.
    public var capacity: Int
    /// The hosts its instances run on, in turn (`hosts:`), in a file with `hosts:`; empty: all of them.
    public var placement: [String]
    /// `egress:` the classes its app may call through its sidecar (`$BERTH_URL`); nil: every class of the mesh.
    public var egress: [String]? = nil
    /// `internet:` whether its app's calls through its sidecar may leave the mesh.
    public var internet = false

    /// A container with the defaults for everything the file may leave out.
    public init(name: String, command: [String], port: Int) {
        self.name = name
        self.command = command
        self.port = port
        self.ports = []
        self.instances = 1
        self.environment = []
        self.workingDir = nil
        self.sleepAfter = nil
        self.readiness = nil
        self.restart = .onFailure
        self.restartBackoff = BackoffSpec()
        self.stopSignal = SIGTERM
        self.stopGracePeriod = .seconds(10)
        self.startTimeout = .seconds(30)
        self.capacity = 64
        self.placement = []
    }
}

/// Reads the signal names compose files use for `stop_signal`.
public enum SignalParser {
    /// The signal `text` names: `SIGTERM` or `TERM` (any case) for the common stop signals, or a number 1...64.
    public static func parse(_ text: String) -> Int32? {
        if let number = Int32(text) {
            return (1...64).contains(number) ? number : nil
        }
        let upper = text.uppercased()
        return signals[upper.hasPrefix("SIG") ? String(upper.dropFirst(3)) : upper]
    }

    /// The names `parse` takes, without `SIG`.
    public static let names = ["TERM", "INT", "KILL", "HUP", "QUIT", "USR1", "USR2"]

    private static let signals: [String: Int32] = [
        "TERM": SIGTERM, "INT": SIGINT, "KILL": SIGKILL, "HUP": SIGHUP, "QUIT": SIGQUIT, "USR1": SIGUSR1, "USR2": SIGUSR2,
    ]
}

/// `dashboard: { listen: 127.0.0.1:8788 }`: a live page of the mesh's traffic, served by `berth up`.
public struct DashboardSpec: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// The host it runs on (`host:`), in a file with `hosts:`.
    public var placement: String?

    public init(host: String = "127.0.0.1", port: Int = 8788) {
        self.host = host
        self.port = port
    }
}

/// One machine of a multi-host mesh (`hosts: { h1: 10.77.0.1 }`).
public struct HostSpec: Sendable, Equatable {
    public var name: String
    /// The address every other host reaches it on; its services listen there.
    public var address: String

    public init(name: String, address: String) {
        self.name = name
        self.address = address
    }

    /// `tcp://ADDRESS:PORT`, or `tcp://[v6]:PORT`.
    public func tcp(port: Int) -> String { tcp(port: String(port)) }

    /// `tcp://ADDRESS:*`: any free port on the host's address, for a socket that says where it bound.
    public var tcpAnyPort: String { tcp(port: "*") }

    private func tcp(port: String) -> String {
        "tcp://\(address.contains(":") ? "[\(address)]" : address):\(port)"
    }
}

/// `security: { keys: DIR }`: CURVE on every bus socket, with the keys in DIR.
public struct SecuritySpec: Sendable, Equatable {
    /// The keys folder: every role's key pair, and the public keys the mesh admits. Relative to the directory
    /// `berth up` runs in.
    public var keys: String
    /// The key pairs the mesh's processes use, one per role; `berth up` makes the missing ones.
    public static let roles = ["router", "edge", "sidecar", "client"]

    public init(keys: String) {
        self.keys = keys
    }

    /// The secret key file of `role`.
    public func secretKey(_ role: String) -> String { keys + "/" + role + ".key_secret" }
}
