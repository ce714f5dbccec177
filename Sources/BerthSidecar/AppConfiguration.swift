/// How the sidecar runs its app, when it owns one (the Container class of `@cloudflare/containers` is the model).
public struct AppConfiguration: Sendable {
    public enum RestartPolicy: String, Sendable {
        case always
        case onFailure = "on-failure"
        case no
    }

    /// The program and its arguments.
    public var command: [String]
    /// Added to the sidecar's own environment, with PORT and BERTH_* on top.
    public var environment: [String: String] = [:]
    public var workingDirectory: String?
    /// Stop the app after this long without requests; the next request starts it again. nil: never.
    public var sleepAfter: Duration?
    /// A path that must answer 2xx before the app counts as healthy; nil: an open port is enough.
    public var readinessPath: String?
    public var readinessInterval: Duration = .milliseconds(100)
    public var readinessTimeout: Duration = .seconds(2)
    /// How long the app may take to open its port (and pass readiness).
    public var startTimeout: Duration = .seconds(30)
    public var restart: RestartPolicy = .onFailure
    public var restartBackoffInitial: Duration = .milliseconds(250)
    public var restartBackoffMax: Duration = .seconds(10)
    public var stopSignal: Int32 = 15
    public var stopGracePeriod: Duration = .seconds(10)

    public init(command: [String]) {
        self.command = command
    }
}
