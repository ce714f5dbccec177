import BerthBus
import BerthProcess
import BerthTap
import BerthWire
import Foundation
import Logging
import ServiceLifecycle

/// `berth up`: runs every process of a mesh, restarts what crashes (with backoff), keeps their logs, keeps
/// `state.json` current, and on graceful shutdown stops everything in reverse order: edge, sidecars, router.
///
/// Every child is started with a parent-death signal and in its own process group, so a crash of `berth` itself
/// leaves nothing behind either.
public actor Supervisor: Service {
    private let plan: MeshPlan
    private let security: BusSecurity?
    private let composeFile: String
    private let printer: LogPrinter
    private let logger: Logger
    private var running: [String: ChildProcess] = [:]
    private var state: MeshState
    private var stopping = false

    /// `security`: the mesh's CURVE settings for `berth up`'s own subscriber, when the mesh has keys.
    public init(plan: MeshPlan, composeFile: String, echo: Bool, security: BusSecurity? = nil, logger: Logger) throws {
        self.plan = plan
        self.security = security
        self.composeFile = composeFile
        self.logger = logger
        try FileManager.default.createDirectory(atPath: plan.runtimeDirectory, withIntermediateDirectories: true)
        printer = LogPrinter(folder: plan.runtimeDirectory, serviceNames: plan.services.map(\.name), echo: echo)
        state = MeshState(
            name: plan.name, composeFile: composeFile, supervisorPID: getpid(), isolation: plan.isolation,
            eventsOut: plan.eventsOut,
            services: plan.services.map {
                MeshState.Service(name: $0.name, kind: $0.kind, className: $0.className, instanceID: $0.instanceID,
                                  appPort: $0.appPort, state: "created", restarts: 0)
            }
        )
    }

    public func run() async throws {
        saveState()
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await self.followLifecycleEvents() }
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { services in
                    for (index, service) in plan.services.enumerated() {
                        services.addTask { await self.supervise(service, index: index) }
                        // The router first: the others connect to it (and would reconnect anyway).
                        if service.kind == .router { try? await Task.sleep(for: .milliseconds(100)) }
                    }
                }
            } onGracefulShutdown: {
                Task { await self.stopAll() }
            }
            group.cancelAll()
        }
        // Nothing left behind but the logs, which berth logs reads after the mesh is gone.
        try? FileManager.default.removeItem(atPath: MeshState.path(in: plan.runtimeDirectory))
    }

    // MARK: One service

    private func supervise(_ service: MeshPlan.Service, index: Int) async {
        var failures = 0
        while !stopping {
            let started = ContinuousClock.now
            let child: ChildProcess
            do {
                var spec = ProcessSpec(command: service.command)
                spec.parentDeathSignal = SIGKILL
                child = try ChildProcess(spec)
            } catch {
                printer.line("berth: \(error)", from: service.name, index: index)
                update(service.name) {
                    $0.state = MeshState.Service.failedToStart
                    $0.exitCode = error.exitStatus.code
                    $0.message = "\(error)"
                }
                return
            }
            running[service.name] = child
            update(service.name) {
                $0.pid = child.pid
                $0.state = "running"
                $0.startedAt = Date()
                $0.exitCode = nil
            }
            let printer = printer
            let status = await withTaskGroup(of: ExitStatus?.self) { group in
                group.addTask {
                    for await line in child.output { printer.line(line.text, from: service.name, index: index) }
                    return nil
                }
                group.addTask { await child.wait() }
                var status: ExitStatus = .exited(0)
                for await result in group { if let result { status = result } }
                return status
            }
            running[service.name] = nil
            update(service.name) {
                $0.state = self.stopping ? "stopped" : "exited"
                $0.exitCode = status.code
            }
            guard !stopping else { return }

            // Crashed: restart with exponential backoff, reset after a run of 10 s.
            failures = started.duration(to: .now) > .seconds(10) ? 1 : failures + 1
            let backoff = min(Duration.seconds(10), .milliseconds(250) * (1 << min(failures - 1, 10)))
            printer.line("berth: \(service.name) \(status); restarting in \(backoff)", from: service.name, index: index)
            update(service.name) {
                $0.state = "restarting"
                $0.restarts += 1
            }
            try? await Task.sleep(for: backoff)
        }
    }

    /// The dashboard and the edge first, then every sidecar at once, then the router; each gets its grace period,
    /// then SIGKILL.
    private func stopAll() async {
        guard !stopping else { return }
        stopping = true
        logger.info("stopping the mesh")
        for kind in [MeshPlan.Kind.dashboard, .edge, .sidecar, .router] {
            await withTaskGroup(of: Void.self) { group in
                for service in plan.services where service.kind == kind {
                    guard let child = running[service.name] else { continue }
                    group.addTask { await child.stop(signal: SIGTERM, grace: service.stopGracePeriod) }
                }
            }
        }
    }

    // MARK: State

    private func update(_ name: String, _ change: (inout MeshState.Service) -> Void) {
        guard let index = state.services.firstIndex(where: { $0.name == name }) else { return }
        change(&state.services[index])
        saveState()
    }

    private func saveState() {
        do {
            try state.write(folder: plan.runtimeDirectory)
        } catch {
            logger.warning("cannot write the mesh state", metadata: ["berth.error": "\(error)"])
        }
    }

    /// Apps' states come from the sidecars' lifecycle events, as any subscriber sees them.
    private nonisolated func followLifecycleEvents() async {
        let subscriber = TapSubscriber(configuration: TapConfiguration(endpoint: plan.eventsOut, topics: ["lifecycle."], security: security), logger: logger)
        while !Task.isCancelled {
            do {
                try await subscriber.withEvents { items in
                    for try await item in items {
                        guard case .event(let tapped) = item, case .lifecycle(let event) = tapped.event else { continue }
                        await self.record(event)
                    }
                }
            } catch {
                logger.debug("lifecycle subscription ended", metadata: ["berth.error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    private func record(_ event: LifecycleEvent) {
        let name = "\(event.container.className)/\(event.container.instanceID)"
        // An edge's word that it picks the instance again: as far as `ps` tells, it is healthy.
        var appState = Names.lifecycleState(event.state == .returned ? .healthy : event.state)
        // The sidecar's rule: an app that exits as a shell does for a command it cannot run, before it ever served,
        // could not start, and is not restarted.
        let previous = state.services.first { $0.name == name }?.app?.state
        var cannotStart = false
        if event.state == .exited, ExitStatus.exited(event.exitCode).isStartFailure,
           previous == nil || previous == "starting" || previous == MeshState.App.failed {
            appState = MeshState.App.failed
            cannotStart = previous != MeshState.App.failed
        }
        // The state is written before the line is printed: whoever reads the line finds the state that goes with it.
        defer {
            if cannotStart, let index = plan.services.firstIndex(where: { $0.name == name }) {
                printer.line("berth: \(name): \(event.message)", from: name, index: index)
            }
        }
        update(name) { service in
            var app = service.app ?? MeshState.App(state: appState, restarts: 0, since: Date())
            if app.state != appState { app.since = Date() }
            app.state = appState
            app.message = event.message
            app.restarts = Int(event.restarts)
            if event.pid != 0 { app.pid = Int32(event.pid) }
            if event.state == .exited {
                app.exitCode = event.exitCode
            } else if event.state == .starting {
                app.exitCode = nil
            }
            service.app = app
        }
    }
}
