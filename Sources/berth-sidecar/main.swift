import ArgumentParser
import BerthCommandLine
import BerthSpec
import BerthLink
import BerthOTLP
import BerthSidecar
import Foundation

@main
struct BerthSidecarCommand: BerthExecutable {
    static let configuration = CommandConfiguration(
        commandName: "berth-sidecar",
        abstract: "One per container instance: turns requests from the bus into HTTP requests on the app's port."
    )

    @Option(help: "Every router's backend endpoint, separated by commas: the sidecar registers with each.") var router = "tcp://127.0.0.1:7701"
    @Option(help: "Where to bind the socket edges send requests to (tcp://ADDRESS:PORT, port * for any, or ipc://PATH); default: an ipc:// file any process on this machine reaches.")
    var endpoint: String?
    @Option(help: "The router's events-in endpoint.") var events = "tcp://127.0.0.1:7702"
    @Option(name: .customLong("class"), help: "The container class of this instance.") var className = "ContainerA"
    @Option(help: "This instance's id, unique within its class.") var instance = "a-0"
    @Option(help: "The port the app listens on.") var port = 8080
    @Option(name: .customLong("extra-port"), help: "Another port the app listens on (repeatable).") var extraPorts: [Int] = []
    @Option(help: "The host the app listens on.") var appHost = "127.0.0.1"
    @Flag(help: "Run the app in a network namespace of its own, with only loopback: it listens on --port whatever other instances do, as in a container. The sidecar itself stays in the namespace it was started in, where routers and edges reach it. Linux; needs root or CAP_SYS_ADMIN.")
    var networkNamespace = false
    @Option(help: "Requests handled at once.") var capacity = 64
    @Option(help: "Heartbeat interval.") var heartbeat = DurationArgument(.seconds(1))
    @Option(help: "How long SIGTERM waits for requests in flight.") var drainTimeout = DurationArgument(.seconds(10))
    @Option(name: .customLong("env"), help: "KEY=VALUE for the app's environment (repeatable).") var environment: [String] = []
    @Option(help: "Folder the app runs in.") var workdir: String?
    @Option(help: "Stop the app after this long without requests; the next request starts it again.") var sleepAfter: DurationArgument?
    @Option(help: "A path that must answer 2xx before the app counts as healthy.") var readinessPath: String?
    @Option(help: "How long the app may take to become healthy.") var startTimeout = DurationArgument(.seconds(30))
    @Option(help: "always, on-failure or no.") var restart = "on-failure"
    @Option(help: "First restart delay; it doubles on each failure in a row.") var restartBackoff = DurationArgument(.milliseconds(250))
    @Option(help: "Longest restart delay.") var restartBackoffMax = DurationArgument(.seconds(10))
    @Option(help: "Signal that stops the app (number or name, e.g. SIGTERM).") var stopSignal = "SIGTERM"
    @Option(help: "How long the app gets to stop before SIGKILL.") var stopGracePeriod = DurationArgument(.seconds(10))
    @Argument(parsing: .postTerminator, help: "The app to start and own: -- PROGRAM ARGS...") var command: [String] = []
    @OptionGroup var security: SecurityOptions
    @Option(help: "Serve the app an egress listener on HOST:PORT (port 0: any free port) and tell it where in $BERTH_URL: its calls to other classes (and, with --internet, out of the mesh) go through this sidecar.")
    var egressListen: HostPort?
    @Option(help: "Every router's frontend endpoint, separated by commas, where the egress listener learns the mesh.")
    var egressRouter = "tcp://127.0.0.1:7700"
    @Option(help: "The classes the app may call through its egress listener, separated by commas (repeatable); default: every class.")
    var egress: [String] = []
    @Flag(help: "Let the app's egress calls leave the mesh.") var internet = false
    @Option(help: "Every class of the mesh, separated by commas: a proxy request to any other host goes to the internet.")
    var meshClasses: String?
    @Option(help: "Send every span (each traffic event, the egress listener's too) to this OpenTelemetry collector over OTLP/HTTP, e.g. http://127.0.0.1:4318.")
    var otlpEndpoint: String?
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var common: CommonOptions

    /// `--egress`, each value a comma-separated list; nil when not given (every class).
    private var egressList: [String]? { egress.isEmpty ? nil : egress.flatMap(Self.list) }

    private static func list(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func validate() throws {
        guard (1...65_535).contains(port) else { throw ValidationError("--port \(port) is not a TCP port (1-65535)") }
        guard capacity >= 1 else { throw ValidationError("--capacity must be at least 1") }
        guard AppConfiguration.RestartPolicy(rawValue: restart) != nil else {
            throw ValidationError("--restart '\(restart)' is not one of always, on-failure, no")
        }
        guard SignalParser.parse(stopSignal) != nil else { throw ValidationError("--stop-signal '\(stopSignal)' is not a signal") }
        if let endpoint, LocalEndpoint.isWildcard(endpoint) {
            throw ValidationError("--endpoint \(endpoint) binds every address, but edges connect to the address it names: give one they can reach")
        }
        guard !RouterList.parse(router).isEmpty else { throw ValidationError("--router names no endpoint") }
        if networkNamespace && command.isEmpty {
            throw ValidationError("--network-namespace is for an app the sidecar starts: give it after --")
        }
        for pair in environment where !pair.contains("=") {
            throw ValidationError("--env '\(pair)' is not KEY=VALUE")
        }
    }

    func run() async throws {
        let logger = common.bootstrap(label: "berth-sidecar")
        var configuration = SidecarConfiguration()
        configuration.security = try security.start(logger: logger)
        configuration.routers = RouterList.parse(router)
        configuration.busEndpoint = endpoint
        configuration.events = events
        configuration.className = className
        configuration.instanceID = instance
        configuration.port = port
        configuration.extraPorts = extraPorts
        configuration.appHost = appHost
        configuration.appNetworkNamespace = networkNamespace
        configuration.capacity = capacity
        configuration.heartbeatInterval = heartbeat.duration
        configuration.drainTimeout = drainTimeout.duration
        if !command.isEmpty {
            var app = AppConfiguration(command: command)
            for pair in environment {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                app.environment[String(parts[0])] = String(parts[1])
            }
            app.workingDirectory = workdir
            app.sleepAfter = sleepAfter?.duration
            app.readinessPath = readinessPath
            app.startTimeout = startTimeout.duration
            app.restart = AppConfiguration.RestartPolicy(rawValue: restart)!
            app.restartBackoffInitial = restartBackoff.duration
            app.restartBackoffMax = restartBackoffMax.duration
            app.stopSignal = SignalParser.parse(stopSignal)!
            app.stopGracePeriod = stopGracePeriod.duration
            configuration.app = app
        }
        // The egress listener is opened before the app starts, so that its BERTH_URL names the port the kernel chose.
        let network = networkNamespace ? try AppNetwork.isolated() : AppNetwork.host
        let listener = try egressListen.map { try EgressListener.open(host: $0.host, port: $0.port, network: network) }
        if let listener { configuration.app?.environment[EgressConfiguration.urlVariable] = listener.url }
        var services = metrics.services(logger: logger)
        if let otlpEndpoint {
            let exporter = OTLPExporter(
                configuration: .init(endpoint: otlpEndpoint, serviceName: "berth-sidecar", instance: "\(className)/\(instance)"), logger: logger
            )
            configuration.spans = exporter
            services.append(exporter)
        }
        services.append(SidecarService(configuration: configuration, network: network, logger: logger))
        if let listener {
            var egress = EgressConfiguration(policy: EgressPolicy(
                caller: "\(className)/\(instance)", allowed: egressList, internet: internet,
                meshClasses: meshClasses.map { Set(Self.list($0)) }
            ))
            egress.routers = RouterList.parse(egressRouter)
            services.append(EgressService(egress, listener: listener, sidecar: configuration, logger: logger))
        }
        try await runUntilSignalled(services, logger: logger)
    }
}
