import ArgumentParser
import BerthCompose
import BerthBus
import BerthSupervisor
import Logging

/// `-f FILE`, shared by the commands that act on a mesh.
struct ComposeOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The compose file.") var file = "Compose/demo.yaml"
    @Option(help: "In a file with hosts: which host this machine is (default: the one whose address this machine has).")
    var host: String?

    func load() throws -> ComposeFile { try Self.load(file) }

    func runningState() throws -> (MeshState, folder: String) { try Self.runningState(file, host: host) }

    /// This machine's host in the file (nil for a file without hosts:).
    func localHost(in compose: ComposeFile) throws -> String? {
        do {
            return try HostDetection.localHost(in: compose, named: host)
        } catch {
            throw ValidationError(error.description)
        }
    }

    static func load(_ file: String) throws -> ComposeFile {
        do {
            return try ComposeFile.load(path: file)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// What a client of the mesh (tap, logs, ps) needs from the file: the routers' events-out, and the mesh's CURVE
    /// settings under the `client` key, with this process's handshake watcher started.
    static func client(of compose: ComposeFile, logger: Logger) throws -> (eventsOut: String, security: BusSecurity?) {
        let eventsOut = MeshPlan.routers(of: compose).map(\.eventsOut).joined(separator: ",")
        guard let spec = compose.security else { return (eventsOut, nil) }
        do {
            return (eventsOut, try MeshKeys.start(spec, role: "client", logger: logger))
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The state `berth up` keeps for this file's mesh.
    static func runningState(_ file: String, host: String? = nil) throws -> (MeshState, folder: String) {
        let compose = try load(file)
        let local: String?
        do { local = try HostDetection.localHost(in: compose, named: host) } catch { throw ValidationError(error.description) }
        let folder = MeshState.folder(forMesh: compose.name, host: local)
        guard let state = try? MeshState.read(folder: folder) else {
            throw ValidationError("mesh '\(compose.name)' is not running (no state in \(folder)); start it with berth up -f \(file)")
        }
        return (state, folder)
    }
}
