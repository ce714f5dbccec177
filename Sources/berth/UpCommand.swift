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
            instance is healthy; stop it with berth down.
            """
    )

    @OptionGroup var compose: ComposeOptions
    @Flag(name: .shortAndLong, help: "Run in the background.") var detach = false
    @Option(help: "netns (each instance in its own network namespace, all on the configured port) or port (instance i on port + i). Default: netns when allowed.")
    var isolation: Isolation?
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let file = try compose.load()
        let folder = MeshState.folder(forMesh: file.name)
        if let existing = try? MeshState.read(folder: folder), existing.supervisorIsAlive {
            throw ValidationError("mesh '\(file.name)' is already running (berth pid \(existing.supervisorPID)); berth down -f \(compose.file) first")
        }
        if detach { return try await startDetached(file, folder: folder) }

        let logger = common.bootstrap(label: "berth")
        let level = common.logLevel?.level.rawValue ?? ProcessEnvironment.value("LOG_LEVEL") ?? "info"
        let plan = MeshPlan(compose: file, executables: .besideThisProgram(), isolation: isolation ?? .detect(),
                            runtimeDirectory: folder, logLevel: level, ioScheduling: common.ioScheduling.rawValue)
        logger.info("starting mesh", metadata: [
            "berth.mesh": "\(file.name)", "berth.isolation": "\(plan.isolation.rawValue)",
            "berth.edge": "\(file.edge.host):\(file.edge.port)",
        ])
        let supervisor = try Supervisor(plan: plan, composeFile: compose.file, echo: true, logger: logger)
        try await runUntilSignalled(supervisor, logger: logger)
    }

    /// Starts `berth up` again in the background, then waits until every app is healthy.
    private func startDetached(_ file: ComposeFile, folder: String) async throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var arguments = [CommandLine.arguments[0], "up", "-f", compose.file]
        if let isolation { arguments += ["--isolation", isolation.rawValue] }
        if let level = common.logLevel?.level { arguments += ["--log-level", level.rawValue] }
        arguments += ["--io-scheduling", common.ioScheduling.rawValue]
        var spec = ProcessSpec(command: ["/bin/sh", "-c", "exec \"$0\" \"$@\" >>\"\(folder)/berth.log\" 2>&1"] + arguments)
        spec.parentDeathSignal = 0
        let child = try ChildProcess(spec)
        let expected = file.containers.reduce(0) { $0 + $1.instances }
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if let status = child.status {
                throw ValidationError("berth up stopped (\(status)); see \(folder)/berth.log")
            }
            if let state = try? MeshState.read(folder: folder),
               state.services.filter({ $0.app?.state == "healthy" }).count == expected {
                print(PsTable.render(state))
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("not every instance became healthy within 120 s; see berth ps and \(folder)/logs")
    }
}

extension Isolation: ExpressibleByArgument {}
