import ArgumentParser
import BerthBus
import BerthCommandLine
import BerthCompose
import BerthProcess
import BerthSupervisor
import Foundation
import Logging

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a whole mesh from a compose file: router, a sidecar and app per instance, and the edge.",
        discussion: """
            In the foreground, logs of every process are interleaved, prefixed and coloured; Ctrl-C stops everything \
            in reverse order (edge, sidecars, router) with each one's grace period. With -d, berth returns once every \
            instance is healthy; stop it with berth down. When an app cannot start (its command is missing, not \
            executable, or exits 126 or 127) or --timeout passes first, berth up -d says which and why, stops what \
            it started and exits with an error.
            """
    )

    @OptionGroup var compose: ComposeOptions
    @Flag(name: .shortAndLong, help: "Run in the background.") var detach = false
    @Option(help: "With -d: seconds to wait for every instance to become healthy before giving up.") var timeout = 120
    @Option(help: "netns (each instance in its own network namespace, all on the configured port) or port (instance i on port + i). Default: netns when allowed.")
    var isolation: Isolation?
    @Option(help: "Have the edge and every sidecar send their spans to this OpenTelemetry collector over OTLP/HTTP, e.g. http://127.0.0.1:4318 (a namespaced sidecar reaches only its own 127.0.0.1: use --isolation port for a local collector).")
    var otlpEndpoint: String?
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let file = try compose.load()
        let host = try compose.localHost(in: file)
        let folder = MeshState.folder(forMesh: file.name, host: host)
        if let existing = try? MeshState.read(folder: folder), existing.supervisorIsAlive {
            throw ValidationError("mesh '\(file.name)' is already running (berth pid \(existing.supervisorPID)); berth down -f \(compose.file) first")
        }
        if let spec = file.security {
            let made: [String]
            do { made = try MeshKeys.ensure(spec, mayCreate: host == nil || host == file.router.placement) } catch { throw ValidationError(error.description) }
            if !made.isEmpty {
                print("berth: made CURVE keys \(made.joined(separator: ", ")) in \(spec.keys) (copy this folder to every host of the mesh)")
            }
        }
        if detach { return try await startDetached(file, folder: folder, host: host) }

        let logger = common.bootstrap(label: "berth")
        let level = common.logLevel?.level.rawValue ?? ProcessEnvironment.value("LOG_LEVEL") ?? "info"
        let plan = MeshPlan(compose: file, executables: .besideThisProgram(), isolation: isolation ?? .detect(),
                            runtimeDirectory: folder, logLevel: level, ioScheduling: common.ioScheduling.rawValue,
                            otlpEndpoint: otlpEndpoint, host: host)
        logger.info("starting mesh", metadata: [
            "berth.mesh": "\(file.name)", "berth.isolation": "\(plan.isolation.rawValue)",
            "berth.edge": "\(plan.edgeURL)", "berth.host": "\(host ?? "-")",
            "berth.curve": "\(file.security.map { "on, keys in \($0.keys)" } ?? "off")",
        ])
        var security: BusSecurity?
        if let spec = file.security {
            do { security = try MeshKeys.start(spec, role: "client", logger: logger) } catch { throw ValidationError(error.description) }
        }
        let supervisor = try Supervisor(plan: plan, composeFile: compose.file, echo: true, security: security, logger: logger)
        try await runUntilSignalled(supervisor, logger: logger)
    }

    /// Starts `berth up` again in the background, then waits until every app is healthy.
    private func startDetached(_ file: ComposeFile, folder: String, host: String?) async throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var arguments = [Executables.thisProgram, "up", "-f", compose.file]
        if let host { arguments += ["--host", host] }
        if let isolation { arguments += ["--isolation", isolation.rawValue] }
        if let otlpEndpoint { arguments += ["--otlp-endpoint", otlpEndpoint] }
        if let level = common.logLevel?.level { arguments += ["--log-level", level.rawValue] }
        arguments += ["--io-scheduling", common.ioScheduling.rawValue]
        var spec = ProcessSpec(command: ["/bin/sh", "-c", "exec \"$0\" \"$@\" >>\"\(folder)/berth.log\" 2>&1"] + arguments)
        spec.parentDeathSignal = 0
        let child = try ChildProcess(spec)
        let expected = MeshPlan(compose: file, executables: .besideThisProgram(), isolation: .portPerInstance, runtimeDirectory: folder, host: host)
            .services.filter { $0.kind == .sidecar }.count
        let deadline = ContinuousClock.now + .seconds(timeout)
        while true {
            if let status = child.status {
                throw DetachedUpError(code: .stopped, lines: ["berth up stopped (\(status)); see \(folder)/berth.log"])
            }
            let state = try? MeshState.read(folder: folder)
            if let state, state.services.filter({ $0.app?.state == "healthy" }).count == expected,
               state.services.allSatisfy({ $0.kind == .sidecar || $0.state == "running" }) {
                print(PsTable.render(state))
                return
            }
            let failed = state?.services.filter {
                $0.app?.state == MeshState.App.failed || $0.state == MeshState.Service.failedToStart
            } ?? []
            if !failed.isEmpty {
                await child.stop(signal: SIGTERM, grace: .seconds(30))
                throw DetachedUpError(code: .cannotStart, lines: ["stopped the mesh; these cannot start:"] + failed.map(Self.why))
            }
            if ContinuousClock.now >= deadline {
                let waiting = state?.services.filter { $0.kind == .sidecar ? $0.app?.state != "healthy" : $0.state != "running" } ?? []
                await child.stop(signal: SIGTERM, grace: .seconds(30))
                throw DetachedUpError(code: .timedOut, lines: ["stopped the mesh; not healthy within \(timeout) s:"] + waiting.map(Self.why)
                    + ["their output: \(folder)/logs"])
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// One line about a service that is not where it should be: its state, and the reason its last event gave.
    static func why(_ service: MeshState.Service) -> String {
        guard service.kind == .sidecar else {
            return "  \(service.name): \(service.state)" + (service.message.map { ": \($0)" } ?? service.exitCode.map { ", exit code \($0)" } ?? "")
        }
        guard service.state == "running" else { return "  \(service.name): its sidecar \(service.state)" }
        guard let app = service.app else { return "  \(service.name): no word from its sidecar yet" }
        var line = "  \(service.name): \(app.state)"
        if app.restarts > 0 { line += " after \(app.restarts) restarts" }
        if let message = app.message, !message.isEmpty { line += ": \(message)" }
        return line
    }
}

/// Why `berth up -d` gave up. Not a usage error: the compose file was fine, the mesh was not.
struct DetachedUpError: Error, CustomStringConvertible {
    enum Code {
        /// An app or a service cannot start at all.
        case cannotStart
        /// Not every instance became healthy within `--timeout`.
        case timedOut
        /// The `berth up` in the background ended by itself.
        case stopped
    }

    var code: Code
    var lines: [String]

    var description: String { lines.joined(separator: "\n") }
}

extension Isolation: ExpressibleByArgument {}
