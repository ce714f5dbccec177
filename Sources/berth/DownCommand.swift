import ArgumentParser
import BerthSupervisor
import Foundation

struct Down: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a mesh started with berth up: edge, sidecars and apps, router, and nothing left behind."
    )

    @OptionGroup var compose: ComposeOptions
    @Option(help: "How long to wait for a graceful stop before killing what is left.") var timeout = 30

    func run() async throws {
        let (state, folder) = try compose.runningState()
        if state.supervisorIsAlive {
            kill(state.supervisorPID, SIGTERM)
            let deadline = ContinuousClock.now + .seconds(timeout)
            while state.supervisorIsAlive && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        // Whatever is still there (berth itself was killed, or the grace ran out) goes now: every child has its own
        // process group, so the group takes its app along.
        var killed = 0
        for service in state.services {
            guard let pid = service.pid, kill(pid, 0) == 0 else { continue }
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
            killed += 1
        }
        if state.supervisorIsAlive { kill(state.supervisorPID, SIGKILL) }
        // berth up removes these as it ends; not when it was killed.
        try? FileManager.default.removeItem(atPath: MeshState.path(in: folder))
        print("mesh '\(state.name)' stopped" + (killed > 0 ? " (\(killed) processes had to be killed)" : ""))
    }
}
