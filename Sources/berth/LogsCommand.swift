import ArgumentParser
import BerthBus
import BerthCommandLine
import BerthCompose
import BerthSupervisor
import BerthTap
import BerthWire
import Foundation

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show containers' output.",
        discussion: """
            With --events-out, or for a mesh that does not run on this machine, follows the apps' stdout and stderr \
            over the bus, from anywhere that reaches the router's events-out endpoint. Otherwise prints the logs \
            berth up keeps for each process (-f follows them).
            """
    )

    // `-f` is --follow here, as in docker compose logs.
    @Option(name: .customLong("file"), help: "The compose file.") var file = "Compose/demo.yaml"
    @Flag(name: .shortAndLong, help: "Follow: keep printing new lines.") var follow = false
    @Option(help: "Follow over the bus from these events-out endpoints (comma-separated), e.g. tcp://10.0.0.5:7703.") var eventsOut: String?
    @Option(help: "Exit after this many lines (for scripts).") var count: Int?
    @Argument(help: "CLASS or CLASS/INSTANCE (or router, edge); all when left out.") var service: String?
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let local = try? ComposeOptions.runningState(file)
        if eventsOut != nil || local == nil {
            return try await overTheBus()
        }
        guard let (_, folder) = local else { return }
        try await fromFiles(folder + "/logs")
    }

    private func overTheBus() async throws {
        let logger = common.bootstrap(label: "berth-logs")
        let mesh = try? ComposeOptions.load(file)
        let client = try mesh.map { try ComposeOptions.client(of: $0, logger: logger) }
        let endpoint = eventsOut ?? client?.eventsOut ?? "tcp://127.0.0.1:7703"
        let topic = "log." + (service.map { $0.replacingOccurrences(of: "/", with: ".") } ?? "")
        let subscriber = TapSubscriber(configuration: TapConfiguration(endpoint: endpoint, topics: [topic], security: client?.security), logger: logger)
        var printed = 0
        try await subscriber.withEvents { items in
            for try await item in items {
                guard case .event(let tapped) = item, case .log(let line) = tapped.event else { continue }
                // A topic prefix `log.ContainerA.a-1` would also take `a-10`: match the instance exactly.
                if let service, service.contains("/"), "\(line.container.className)/\(line.container.instanceID)" != service { continue }
                FileHandle.standardOutput.write(Data("\(line.container.className)/\(line.container.instanceID) | \(line.line)\n".utf8))
                printed += 1
                if let count, printed >= count { return }
            }
        }
    }

    private func fromFiles(_ folder: String) async throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".log") }.sorted()
        let wanted = names.filter { name in
            guard let service else { return true }
            let prefix = LogPrinter.fileName(for: service).dropLast(4)
            return name.hasPrefix(prefix)
        }
        guard !wanted.isEmpty else { throw ValidationError("no logs for \(service ?? "any service") in \(folder)") }
        var offsets: [String: UInt64] = [:]
        var printed = 0
        repeat {
            for name in wanted {
                guard let handle = FileHandle(forReadingAtPath: folder + "/" + name) else { continue }
                handle.seek(toFileOffset: offsets[name] ?? 0)
                let data = handle.readDataToEndOfFile()
                offsets[name] = handle.offsetInFile
                try? handle.close()
                let label = String(name.dropLast(4)).replacingOccurrences(of: "_", with: "/")
                for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                    FileHandle.standardOutput.write(Data("\(label) | \(line)\n".utf8))
                    printed += 1
                    if let count, printed >= count { return }
                }
            }
            if follow { try await Task.sleep(for: .milliseconds(200)) }
        } while follow
    }
}
