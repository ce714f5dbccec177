import BerthBus
import Glibc
import Logging

/// The endpoint an edge binds for answers that skip the router: sidecars linked to it send answers there
/// (`Request.replyTo`), and the router only hears that the request is closed.
public enum ReplyEndpoint: Sendable, Hashable {
    /// An `ipc://` file of a name no other process has, in `$XDG_RUNTIME_DIR/berth-UID/replies` (or under /tmp):
    /// every sidecar on this machine reaches it, network namespace or not, and none on another machine, so those
    /// answer through the router. A failed bind only turns direct answers off.
    case automatic
    /// This endpoint; sidecars must be able to reach it. A failed bind stops the edge.
    case endpoint(String)
    /// Every answer comes through the router.
    case off

    public init?(argument: String) {
        switch argument {
        case "auto": self = .automatic
        case "off": self = .off
        case let endpoint where endpoint.hasPrefix("tcp://") || endpoint.hasPrefix("ipc://"): self = .endpoint(endpoint)
        default: return nil
        }
    }

    /// A `tcp://` endpoint on every address: fine to bind, useless to name, since a sidecar would connect to itself.
    public static func isWildcard(_ endpoint: String) -> Bool {
        ["tcp://*:", "tcp://0.0.0.0:", "tcp://[::]:", "tcp://[*]:"].contains { endpoint.hasPrefix($0) }
    }

    /// A bound ROUTER socket, or nil when answers all come through the router.
    func bind(logger: Logger) throws(BusError) -> Socket? {
        let chosen: String
        switch self {
        case .off: return nil
        case .endpoint(let endpoint): chosen = endpoint
        case .automatic: chosen = "ipc://" + Self.automaticPath()
        }
        let socket = try Socket(.router)
        do {
            try socket.bind(chosen)
        } catch {
            guard self == .automatic else { throw error }
            logger.warning("cannot bind an endpoint for direct answers; all answers come through the router", metadata: [
                "berth.reply_to": "\(chosen)", "berth.error": "\(error)",
            ])
            return nil
        }
        logger.info("taking direct answers from sidecars", metadata: ["berth.reply_to": "\(socket.lastEndpoint)"])
        return socket
    }

    /// Removes the file of an `ipc://` endpoint this edge bound. libzmq removes it when the socket closes, but that
    /// happens on its I/O thread, which a process on its way out does not wait for.
    static func removeFile(of bound: String) {
        guard bound.hasPrefix("ipc://") else { return }
        unlink(String(bound.dropFirst("ipc://".count)))
    }

    /// `.../replies/edge-PID-RANDOM.sock`, after removing the files of edges that died without closing theirs.
    private static func automaticPath() -> String {
        let base = getenv("XDG_RUNTIME_DIR").map { String(cString: $0) } ?? "/tmp"
        let directory = "\(base)/berth-\(getuid())/replies"
        mkdir("\(base)/berth-\(getuid())", 0o700)
        mkdir(directory, 0o700)
        removeStaleFiles(in: directory)
        return "\(directory)/edge-\(getpid())-\(String(UInt64.random(in: 1...UInt64.max), radix: 16)).sock"
    }

    private static func removeStaleFiles(in directory: String) {
        guard let folder = opendir(directory) else { return }
        defer { closedir(folder) }
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let parts = name.split(separator: "-")
            guard parts.count == 3, parts[0] == "edge", name.hasSuffix(".sock"), let pid = pid_t(parts[1]) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink("\(directory)/\(name)") }
        }
    }
}
