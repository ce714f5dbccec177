import Foundation

/// What `berth up` writes about a running mesh, for `berth ps`, `berth down` and `berth logs`.
public struct MeshState: Codable, Sendable {
    public struct Service: Codable, Sendable {
        public var name: String
        public var kind: MeshPlan.Kind
        public var className: String?
        public var instanceID: String?
        public var appPort: Int?
        /// The process berth started (router, edge or sidecar).
        public var pid: Int32?
        public var state: String
        public var restarts: Int
        public var startedAt: Date?
        public var exitCode: Int32?
        /// For sidecars, the app as its lifecycle events tell it.
        public var app: App?
        /// Why it is in its state, when berth knows: the error that kept its command from starting.
        public var message: String?

        /// The state of a service whose own command could not be started (not found, not executable).
        public static let failedToStart = "failed to start"
    }

    public struct App: Codable, Sendable {
        /// A lifecycle state's name (`starting`, `healthy`, …), or `failed` when the app could not start at all.
        public var state: String
        public var pid: Int32?
        public var restarts: Int
        public var exitCode: Int32?
        public var since: Date
        /// The last lifecycle event's message: why it is in its state.
        public var message: String?

        /// The state of an app whose command cannot start (missing, not executable, or exits 126 or 127 before it
        /// served): the sidecar does not restart it, and `berth up -d` gives up.
        public static let failed = "failed"
    }

    public var name: String
    public var composeFile: String
    public var supervisorPID: Int32
    public var isolation: Isolation
    public var eventsOut: String
    public var services: [Service]

    /// `host`: this machine's host in a multi-host file; each host's share keeps its own state, so that hosts that
    /// share a filesystem (network namespaces on one machine) do not mix theirs.
    public static func folder(forMesh name: String, host: String? = nil) -> String {
        let base = ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"] ?? "/tmp"
        return "\(base)/berth-\(getuid())/\(name)" + (host.map { "@\($0)" } ?? "")
    }

    public static func path(in folder: String) -> String { folder + "/state.json" }

    public static func read(folder: String) throws -> MeshState {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(in: folder)))
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try decoder.decode(MeshState.self, from: data)
    }

    func write(folder: String) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(self)
        let temporary = folder + "/.state.json.tmp"
        try data.write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, Self.path(in: folder)) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    /// Whether the `berth up` that wrote this still runs.
    public var supervisorIsAlive: Bool { kill(supervisorPID, 0) == 0 }
}
