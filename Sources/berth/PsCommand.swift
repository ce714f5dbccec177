import ArgumentParser
import BerthCompose
import BerthLink
import BerthSupervisor
import BerthWire
import Foundation
import Logging

struct Ps: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the processes of a running mesh.")

    @OptionGroup var compose: ComposeOptions
    @Flag(help: "Print the state as JSON.") var json = false

    func run() async throws {
        let file = try compose.load()
        if let host = try compose.localHost(in: file) { return try wholeMesh(file, host: host) }
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

extension Ps {
    /// A multi-host mesh from any of its hosts: this host's share from the state berth up keeps, the others' from
    /// the routers' directory (sidecars) and from a connection to their port (edge, dashboard).
    func wholeMesh(_ file: ComposeFile, host: String) throws {
        let local = try? compose.runningState().0
        var logger = Logger(label: "berth.ps")
        logger.logLevel = .error
        let client = try ComposeOptions.client(of: file, logger: logger)
        let routers = MeshPlan.routers(of: file).map(\.frontend)
        let answer = DirectoryQuery.fetch(routers: routers, security: client.security, timeout: .seconds(2))
        let plan = MeshPlan(compose: file, executables: .besideThisProgram(), isolation: local?.isolation ?? .portPerInstance,
                            runtimeDirectory: "", host: host)
        if json {
            let rows = PsTable.meshRows(plan: plan, local: local, answer: answer)
            let objects = rows.dropFirst().map { row in Dictionary(uniqueKeysWithValues: zip(rows[0].map { $0.lowercased() }, row)) }
            let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("mesh \(file.name) on \(file.hosts.count) hosts; this is \(host)" + (answer.map { " (directory from \($0.router))" } ?? " (no router answered)"))
        print(PsTable.table(PsTable.meshRows(plan: plan, local: local, answer: answer)))
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
        let table = self.table(rows)
        let isolation = switch state.isolation {
        case .networkNamespace: "each instance in its own network namespace, all on the configured port"
        case .portPerInstance: "instance i on the configured port + i"
        }
        return "mesh \(state.name) (\(isolation))\n" + table
    }

    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// One row per service of every host: this host's from its state, the others' as the mesh sees them.
    static func meshRows(plan: MeshPlan, local: MeshState?, answer: (router: String, directory: Directory)?) -> [[String]] {
        var rows = [["HOST", "SERVICE", "INSTANCE", "STATE", "PID", "ENDPOINT"]]
        let live = Dictionary((answer?.directory.instances ?? []).map { ("\($0.className)/\($0.instanceID)", $0) }, uniquingKeysWith: { first, _ in first })
        for service in plan.everywhere {
            let mine = service.host == plan.host ? local?.services.first { $0.name == service.name } : nil
            let host = service.host ?? "-"
            switch service.kind {
            case .sidecar:
                let name = "\(service.className ?? "?")/\(service.instanceID ?? "?")"
                let state = mine.map { $0.state == "running" ? ($0.app?.state ?? "starting") : "sidecar \($0.state)" }
                    ?? (live[name] != nil ? "live" : "not in directory")
                rows.append([host, service.className ?? "?", service.instanceID ?? "?", state,
                             mine?.app?.pid.map(String.init) ?? "-", live[name]?.endpoint ?? "-"])
            case .router, .edge, .dashboard:
                let endpoint = Self.listenAddress(of: service) ?? "-"
                let state = mine?.state ?? (service.kind == .router
                    ? (answer.map { plan.routerFrontends.contains($0.router) } == true ? "answers" : "no answer")
                    : (Probe.accepts(endpoint) ? "listening" : "unreachable"))
                rows.append([host, service.name, "-", state, mine?.pid.map(String.init) ?? "-", endpoint])
            }
        }
        return rows
    }

    /// Where a router, edge or dashboard listens, from its command line.
    static func listenAddress(of service: MeshPlan.Service) -> String? {
        let flag = service.kind == .router ? "--frontend" : "--listen"
        guard let index = service.command.firstIndex(of: flag), index + 1 < service.command.count else { return nil }
        return service.command[index + 1]
    }

    static func uptime(_ since: Date?) -> String {
        guard let since else { return "-" }
        let seconds = Int(Date().timeIntervalSince(since))
        return seconds < 60 ? "\(seconds)s" : seconds < 3_600 ? "\(seconds / 60)m\(seconds % 60)s" : "\(seconds / 3_600)h\(seconds % 3_600 / 60)m"
    }
}

/// Whether something accepts TCP connections at `HOST:PORT` (or `tcp://HOST:PORT`), within a second.
enum Probe {
    static func accepts(_ address: String) -> Bool {
        var text = address.hasPrefix("tcp://") ? String(address.dropFirst(6)) : address
        guard let colon = text.lastIndex(of: ":") else { return false }
        let port = String(text[text.index(after: colon)...])
        text = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(text, port, &hints, &list) == 0, let first = list else { return false }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 { return true }
        guard errno == EINPROGRESS else { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, 1_000) == 1 else { return false }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        return error == 0
    }
}
