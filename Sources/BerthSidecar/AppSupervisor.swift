import BerthProcess
import CoreMetrics
import BerthWire
import Logging
import Synchronization

import Glibc

/// Why a request cannot reach the app right now.
struct AppUnavailable: Error {
    var message: String
}

/// Owns the app process: starts it, waits for its port, restarts it with backoff, stops it after `sleepAfter`
/// without requests and starts it again on the next one. Concurrent requests share one cold start, and the app is
/// never stopped while a request is in flight.
///
/// States: `stopped → starting → healthy → stopping → stopped` (or `sleeping` when stopped for idleness),
/// and `exited(code)` when it ends by itself, followed by a restart when the policy allows. An app that cannot
/// start (its program is missing or not executable, or it exits 126 or 127 before it ever served) is not
/// restarted: it would fail the same way. The next request tries again.
actor AppSupervisor {
    enum State: Equatable, CustomStringConvertible {
        case stopped
        case starting
        case healthy
        case stopping
        case sleeping
        case exited(ExitStatus)
        /// Waiting out the backoff before the next start.
        case backingOff(until: ContinuousClock.Instant, after: ExitStatus)

        var description: String {
            switch self {
            case .stopped: "stopped"
            case .starting: "starting"
            case .healthy: "healthy"
            case .stopping: "stopping"
            case .sleeping: "sleeping"
            case .exited(let status): "exited (\(status))"
            case .backingOff(_, let status): "restarting (\(status))"
            }
        }
    }

    private let app: AppConfiguration
    private let sidecar: SidecarConfiguration
    private let network: AppNetwork
    private let logger: Logger
    private let probe: @Sendable (String?) async -> Bool
    private let events: @Sendable (Event) -> Void

    private(set) var state: State = .stopped {
        didSet { admission.withLock { $0.open = state == .healthy } }
    }
    private var process: ChildProcess?
    private var generation = 0
    private(set) var restarts = 0
    private var consecutiveFailures = 0
    /// Requests in flight and the last activity, shared with `admitIfHealthy` and `finish`, which take requests
    /// without a hop to the actor while the app is healthy.
    private struct Admission {
        var open = false
        var inFlight = 0
        var lastActivity = ContinuousClock.now
    }

    private nonisolated let admission = Mutex(Admission())
    private var waiters: [CheckedContinuation<Void, any Error>] = []
    private var shuttingDown = false
    /// The last lifecycle event, published again unchanged every `announceInterval` so that subscribers who joined
    /// late (a dashboard, a restarted `berth up`) learn the state: a repeat carries the `time_us` of the change.
    private var lastLifecycle: LifecycleEvent?
    static let announceInterval = Duration.seconds(5)

    init(
        app: AppConfiguration, sidecar: SidecarConfiguration, network: AppNetwork, logger: Logger,
        probe: @escaping @Sendable (String?) async -> Bool, events: @escaping @Sendable (Event) -> Void
    ) {
        self.app = app
        self.sidecar = sidecar
        self.network = network
        self.logger = logger
        self.probe = probe
        self.events = events
    }

    var pid: Int32? { process?.pid }

    // MARK: Requests

    /// Marks a request as started when the app is healthy, from any thread. Pair a true answer with `finish()`;
    /// on false, call `begin()`.
    nonisolated func admitIfHealthy() -> Bool {
        admission.withLock { admission in
            guard admission.open else { return false }
            admission.inFlight += 1
            admission.lastActivity = .now
            return true
        }
    }

    /// Marks a request as started, starting the app first when it is not running. Pair with `finish()`.
    func begin() async throws {
        admission.withLock {
            $0.inFlight += 1
            $0.lastActivity = .now
        }
        do {
            try await ensureHealthy()
        } catch {
            admission.withLock { $0.inFlight -= 1 }
            throw error
        }
    }

    nonisolated func finish() {
        admission.withLock {
            $0.inFlight -= 1
            $0.lastActivity = .now
        }
    }

    /// Something passed on an exchange that no longer counts as in flight (a WebSocket's message): the idle timer of
    /// `sleepAfter` starts again, as Cloudflare's does.
    nonisolated func touch() {
        admission.withLock { $0.lastActivity = .now }
    }

    private func ensureHealthy() async throws {
        switch state {
        case .healthy:
            return
        case .backingOff(let until, let status):
            let left = ContinuousClock.now.duration(to: until)
            let milliseconds = left.components.seconds * 1_000 + left.components.attoseconds / 1_000_000_000_000_000
            throw AppUnavailable(message: "the app \(status); restart \(restarts) in \(max(0, milliseconds))ms")
        case .stopped, .sleeping, .exited:
            // An app that ended and is not restarted by its policy still starts again for the next request.
            Counter(label: "berth_sidecar_cold_starts_total", dimensions: [("class", sidecar.className), ("instance", sidecar.instanceID)]).increment()
            startInBackground(cold: true)
        case .starting, .stopping:
            break
        }
        try await withCheckedThrowingContinuation { waiters.append($0) }
    }

    private func wake(with error: (any Error)?) {
        let waiting = waiters
        waiters.removeAll()
        for waiter in waiting {
            if let error { waiter.resume(throwing: error) } else { waiter.resume() }
        }
    }

    // MARK: Starting and stopping

    /// Runs until shutdown: starts the app, then watches for idleness. Returns after the app is stopped.
    func run() async {
        startInBackground(cold: false)
        var lastAnnounced = ContinuousClock.now
        while !Task.isCancelled && !shuttingDown {
            try? await Task.sleep(for: .milliseconds(250))
            await sleepIfIdle()
            if lastAnnounced.duration(to: .now) >= Self.announceInterval, let lastLifecycle {
                lastAnnounced = .now
                events(.lifecycle(lastLifecycle))
            }
        }
    }

    private func startInBackground(cold: Bool) {
        guard state != .starting, !shuttingDown else { return }
        state = .starting
        generation += 1
        let generation = generation
        Task { await self.start(generation: generation, cold: cold) }
    }

    private func start(generation: Int, cold: Bool) async {
        var environment = app.environment
        environment["PORT"] = String(sidecar.port)
        environment["BERTH_CLASS"] = sidecar.className
        environment["BERTH_INSTANCE"] = sidecar.instanceID
        environment["BERTH_PORT"] = String(sidecar.port)
        var spec = ProcessSpec(command: app.command)
        spec.environment = environment
        spec.workingDirectory = app.workingDirectory
        spec.parentDeathSignal = SIGKILL
        spec.networkNamespace = network.processNamespace
        publish(.starting, message: cold ? "cold start" : "starting")
        let child: ChildProcess
        do {
            child = try ChildProcess(spec)
        } catch {
            cannotStart(error.exitStatus, pid: nil, reason: error.reason)
            return
        }
        process = child
        logger.info("app started", metadata: ["berth.pid": "\(child.pid)", "berth.command": "\(app.command.joined(separator: " "))"])
        Task { await self.pump(child) }
        Task {
            let status = await child.wait()
            self.ended(status, pid: child.pid, generation: generation)
        }

        let deadline = ContinuousClock.now + app.startTimeout
        while ContinuousClock.now < deadline {
            guard self.generation == generation, state == .starting, child.status == nil else { return }
            if await probe(app.readinessPath) {
                state = .healthy
                publish(.healthy, message: "listening on \(sidecar.port)")
                logger.info("app healthy", metadata: ["berth.port": "\(sidecar.port)"])
                wake(with: nil)
                return
            }
            try? await Task.sleep(for: app.readinessInterval)
        }
        guard self.generation == generation, state == .starting else { return }
        logger.error("app did not become ready in time", metadata: ["berth.timeout": "\(app.startTimeout)"])
        wake(with: AppUnavailable(message: "the app did not open port \(sidecar.port)\(app.readinessPath.map { " and answer \($0)" } ?? "") within \(app.startTimeout)"))
        child.signal(SIGKILL)
    }

    /// The app's output goes to the sidecar's own output, and onto the bus as log events.
    private nonisolated func pump(_ child: ChildProcess) async {
        for await line in child.output {
            // Unbuffered: a pipe to berth up would otherwise hold the lines back until the buffer fills.
            var text = line.text + "\n"
            text.withUTF8 { bytes in
                _ = write(line.stream == .stdout ? STDOUT_FILENO : STDERR_FILENO, bytes.baseAddress, bytes.count)
            }
            let event = LogLine(timeMicroseconds: WallClock.nowMicroseconds(), container: sidecar.endpoint,
                                stream: line.stream == .stdout ? .stdout : .stderr, line: line.text)
            events(.log(event))
        }
    }

    private func ended(_ status: ExitStatus, pid: Int32, generation: Int) {
        guard self.generation == generation else { return }
        process = nil
        if state == .stopping || shuttingDown {
            return
        }
        if state == .starting && status.isStartFailure {
            return cannotStart(status, pid: pid, reason: "it \(status) before it opened port \(sidecar.port)")
        }
        let wasHealthy = state == .healthy
        logger.warning("app exited", metadata: ["berth.status": "\(status)"])
        publish(.exited, exitCode: status.code, pid: pid, message: "\(status)")
        if wasHealthy { consecutiveFailures = 0 }
        consecutiveFailures += 1
        let restart = switch app.restart {
        case .always: true
        case .onFailure: status != .exited(0)
        case .no: false
        }
        guard restart else {
            state = .exited(status)
            wake(with: AppUnavailable(message: "the app \(status) and its restart policy is '\(app.restart.rawValue)'"))
            return
        }
        let backoff = min(app.restartBackoffMax, app.restartBackoffInitial * (1 << min(consecutiveFailures - 1, 20)))
        let until = ContinuousClock.now + backoff
        state = .backingOff(until: until, after: status)
        wake(with: AppUnavailable(message: "the app \(status); restarting in \(backoff)"))
        restarts += 1
        Counter(label: "berth_sidecar_app_restarts_total", dimensions: [("class", sidecar.className), ("instance", sidecar.instanceID)]).increment()
        let generation = self.generation
        Task {
            try? await Task.sleep(until: until)
            self.restartAfterBackoff(generation: generation)
        }
    }

    /// The app could not start: said once, loudly, and not retried until a request asks for it again.
    private func cannotStart(_ status: ExitStatus, pid: Int32?, reason: String) {
        process = nil
        let message = "cannot start '\(app.command.joined(separator: " "))': \(reason)"
        logger.error("\(message)", metadata: ["berth.command": "\(app.command.joined(separator: " "))", "berth.status": "\(status)"])
        state = .exited(status)
        publish(.exited, exitCode: status.code, pid: pid, message: message)
        wake(with: AppUnavailable(message: "the app \(message)"))
    }

    private func restartAfterBackoff(generation: Int) {
        guard self.generation == generation, case .backingOff = state, !shuttingDown else { return }
        publish(.restarting, message: "restart \(restarts)")
        state = .stopped
        startInBackground(cold: false)
    }

    private func sleepIfIdle() async {
        guard let sleepAfter = app.sleepAfter, state == .healthy else { return }
        // Closed in the same step as the check, so no request slips in while the app is being stopped.
        let idle = admission.withLock { admission in
            guard admission.inFlight == 0, admission.lastActivity.duration(to: .now) >= sleepAfter else { return false }
            admission.open = false
            return true
        }
        guard idle else { return }
        logger.info("app idle; stopping it until the next request", metadata: ["berth.sleep_after": "\(sleepAfter)"])
        await stopProcess(because: "idle for \(sleepAfter)")
        if state == .stopped {
            state = .sleeping
            publish(.sleeping, message: "idle for \(sleepAfter)")
        }
    }

    private func stopProcess(because reason: String) async {
        guard let child = process else {
            state = .stopped
            return
        }
        state = .stopping
        generation += 1
        publish(.stopping, pid: child.pid, message: "\(reason): signal \(app.stopSignal), then SIGKILL after \(app.stopGracePeriod)")
        let status = await child.stop(signal: app.stopSignal, grace: app.stopGracePeriod)
        process = nil
        state = .stopped
        publish(.exited, exitCode: status.code, pid: child.pid, message: "stopped (\(status))")
    }

    /// Stops the app for good (SIGTERM drain of the sidecar).
    func shutdown() async {
        shuttingDown = true
        wake(with: AppUnavailable(message: "the sidecar is shutting down"))
        await stopProcess(because: "the sidecar is shutting down")
    }

    // MARK: Events

    /// `pid` defaults to the running app's: an event about an app that has ended names the pid it had.
    private func publish(_ state: LifecycleState, exitCode: Int32 = 0, pid: Int32? = nil, message: String) {
        let event = LifecycleEvent(
            timeMicroseconds: WallClock.nowMicroseconds(), container: sidecar.endpoint, state: state, exitCode: exitCode,
            restarts: UInt32(restarts), pid: UInt32(pid ?? process?.pid ?? 0), message: message
        )
        lastLifecycle = event
        events(.lifecycle(event))
    }

}
