import ArgumentParser
import BerthSupervisor
import Foundation

struct Ps: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the processes of a running mesh.")

    @OptionGroup var compose: ComposeOptions
    @Flag(help: "Print the state as JSON.") var json = false

    func run() async throws {
        let (state, folder) = try compose.runningState()
        guard state.supervisorIsAlive else {
            throw ValidationError("mesh '\(state.name)' is not running (berth pid \(state.supervisorPID) is gone); berth down -f \(compose.file) cleans up")
        }
        if json {
            print(try String(contentsOfFile: folder + "/state.json", encoding: .utf8))
        } else {
            print(PsTable.render(state))
        }
    }
}

/// `berth ps` as a table: one row per process, and for sidecars the app they run.
enum PsTable {
    static func render(_ state: MeshState) -> String {
        var rows = [["SERVICE", "INSTANCE", "STATE", "PID", "PORT", "RESTARTS", "UPTIME", "EXIT"]]
        for service in state.services {
            switch service.kind {
            case .router, .edge, .dashboard:
                rows.append([service.name, "-", service.state, service.pid.map(String.init) ?? "-", "-",
                             String(service.restarts), uptime(service.state == "running" ? service.startedAt : nil),
                             service.exitCode.map(String.init) ?? "-"])
            case .sidecar:
                let app = service.app
                let appState = service.state == "running" ? (app?.state ?? "starting") : "sidecar \(service.state)"
                rows.append([service.className ?? "?", service.instanceID ?? "?", appState,
                             app?.pid.map(String.init) ?? "-", service.appPort.map(String.init) ?? "-",
                             String(app?.restarts ?? 0),
                             uptime(app?.state == "healthy" ? app?.since : nil), app?.exitCode.map(String.init) ?? "-"])
            }
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        let table = rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        let isolation = switch state.isolation {
        case .networkNamespace: "each instance in its own network namespace, all on the configured port"
        case .portPerInstance: "instance i on the configured port + i"
        }
        return (["mesh \(state.name) (\(isolation))"] + table).joined(separator: "\n")
    }

    static func uptime(_ since: Date?) -> String {
        guard let since else { return "-" }
        let seconds = Int(Date().timeIntervalSince(since))
        return seconds < 60 ? "\(seconds)s" : seconds < 3_600 ? "\(seconds / 60)m\(seconds % 60)s" : "\(seconds / 3_600)h\(seconds % 3_600 / 60)m"
    }
}
