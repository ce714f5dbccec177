import Foundation
import Synchronization

/// Writes every service's output as `name | line`, coloured per service on a terminal, and keeps a log file per
/// service in the mesh's folder for `berth logs`.
public final class LogPrinter: Sendable {
    private struct Files: ~Copyable {
        var handles: [String: FileHandle] = [:]
    }

    private let folder: String
    private let toTerminal: Bool
    private let colours: Bool
    private let width: Int
    private let files = Mutex(Files())
    private static let palette = [36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96]

    /// - Parameters:
    ///   - echo: also print to standard output (foreground `berth up`).
    public init(folder: String, serviceNames: [String], echo: Bool) {
        self.folder = folder + "/logs"
        toTerminal = echo
        colours = echo && isatty(1) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        width = serviceNames.map(\.count).max() ?? 6
        try? FileManager.default.createDirectory(atPath: self.folder, withIntermediateDirectories: true)
    }

    public static func fileName(for service: String) -> String {
        service.replacingOccurrences(of: "/", with: "_") + ".log"
    }

    public func line(_ text: String, from service: String, index: Int) {
        let stamp = Date().formatted(.iso8601.time(includingFractionalSeconds: true))
        files.withLock { files in
            let handle: FileHandle? = files.handles[service] ?? {
                let path = folder + "/" + Self.fileName(for: service)
                FileManager.default.createFile(atPath: path, contents: nil)
                let handle = FileHandle(forWritingAtPath: path)
                handle?.seekToEndOfFile()
                files.handles[service] = handle
                return handle
            }()
            handle?.write(Data("\(stamp) \(text)\n".utf8))
        }
        guard toTerminal else { return }
        let name = service.padding(toLength: width, withPad: " ", startingAt: 0)
        let prefix = colours ? "\u{1b}[\(Self.palette[index % Self.palette.count])m\(name) |\u{1b}[0m" : "\(name) |"
        FileHandle.standardOutput.write(Data("\(prefix) \(text)\n".utf8))
    }
}
