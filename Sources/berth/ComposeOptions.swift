import ArgumentParser
import BerthCompose
import BerthSupervisor

/// `-f FILE`, shared by the commands that act on a mesh.
struct ComposeOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The compose file.") var file = "Compose/demo.yaml"

    func load() throws -> ComposeFile { try Self.load(file) }

    func runningState() throws -> (MeshState, folder: String) { try Self.runningState(file) }

    static func load(_ file: String) throws -> ComposeFile {
        do {
            return try ComposeFile.load(path: file)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// The state `berth up` keeps for this file's mesh.
    static func runningState(_ file: String) throws -> (MeshState, folder: String) {
        let compose = try load(file)
        let folder = MeshState.folder(forMesh: compose.name)
        guard let state = try? MeshState.read(folder: folder) else {
            throw ValidationError("mesh '\(compose.name)' is not running (no state in \(folder)); start it with berth up -f \(file)")
        }
        return (state, folder)
    }
}
