import Glibc
import BerthBus
import BerthWire
import Logging

extension Envelope {
    /// Decodes a bus message's envelope frame; what is malformed is logged, naming `peer`, and gives nil.
    public static func decode(_ frame: Frame, from peer: String, logger: Logger) -> Envelope? {
        try? decoding(frame, from: peer, logger: logger).get()
    }

    /// The envelope, or why it is none (logged): for a receiver that answers the sender with the reason.
    public static func decoding(_ frame: Frame, from peer: String, logger: Logger) -> Result<Envelope, WireError> {
        do {
            return .success(try frame.withUnsafeBytes { bytes throws(WireError) in try Envelope(decoding: bytes) })
        } catch {
            logger.warning("rejected malformed envelope", metadata: [
                "berth.peer": "\(peer)", "berth.error": "\(error)", "berth.bytes": "\(frame.count)",
            ])
            return .failure(error)
        }
    }

    /// The frames of a bus message: this envelope, then `body`.
    public func frames(body: some Sequence<Frame> = [Frame]()) -> [Frame] {
        var frames = [Frame(encoded())]
        frames.append(contentsOf: body)
        return frames
    }
}

/// Where a process binds a socket others on this machine reach: an `ipc://` file under
/// `$XDG_RUNTIME_DIR/berth-UID/KIND/` (or under /tmp), named for the process, so that every process on this machine
/// reaches it whether or not it is in its own network namespace. Files of processes that died are removed first.
public enum LocalEndpoint {
    public static func make(kind: String, name: String) -> String {
        let base = getenv("XDG_RUNTIME_DIR").map { String(cString: $0) } ?? "/tmp"
        let directory = "\(base)/berth-\(getuid())/\(kind)"
        mkdir("\(base)/berth-\(getuid())", 0o700)
        mkdir(directory, 0o700)
        removeStaleFiles(in: directory)
        let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }.prefix(40))
        return "ipc://\(directory)/\(safe)-\(getpid())-\(String(UInt64.random(in: 1...UInt64.max), radix: 16)).sock"
    }

    /// Removes the file of an `ipc://` endpoint this process bound. libzmq removes it when the socket closes, but on
    /// its I/O thread, which a process on its way out does not wait for.
    public static func removeFile(of bound: String) {
        guard bound.hasPrefix("ipc://") else { return }
        unlink(String(bound.dropFirst("ipc://".count)))
    }

    /// A `tcp://` endpoint on every address: fine to bind, useless to name, since a peer would connect to itself.
    public static func isWildcard(_ endpoint: String) -> Bool {
        ["tcp://*:", "tcp://0.0.0.0:", "tcp://[::]:", "tcp://[*]:"].contains { endpoint.hasPrefix($0) }
    }

    private static func removeStaleFiles(in directory: String) {
        guard let folder = opendir(directory) else { return }
        defer { closedir(folder) }
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasSuffix(".sock") else { continue }
            let parts = name.dropLast(".sock".count).split(separator: "-")
            guard parts.count >= 3, let pid = pid_t(parts[parts.count - 2]) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink("\(directory)/\(name)") }
        }
    }
}

