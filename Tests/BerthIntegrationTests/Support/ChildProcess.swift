import Foundation
import Synchronization

import Glibc

/// A real child process whose output goes to a log file, stopped for sure when the test is done.
final class ChildProcess: @unchecked Sendable {
    let name: String
    let process = Process()
    let logURL: URL

    init(name: String, executable: URL, arguments: [String], environment: [String: String] = [:]) throws {
        self.name = name
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent("berth-test-\(name)-\(UUID().uuidString.prefix(8)).log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// CPU time the process has used so far (user + system), from /proc.
    var cpuTime: Duration {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let afterName = stat.lastIndex(of: ")") else { return .zero }
        // Fields after the command name: state is field 3, utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: afterName)...].split(separator: " ")
        guard fields.count > 12, let user = Int64(fields[11]), let system = Int64(fields[12]) else { return .zero }
        return .milliseconds((user + system) * 1_000 / Int64(sysconf(Int32(_SC_CLK_TCK))))
    }
    var isRunning: Bool { process.isRunning }

    func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits up to `timeout` for the process to exit; returns its exit status, or nil if it still runs.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    var output: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    deinit { stop() }
}

/// Ports `freePort` handed out: the OS may offer a port again once its probe is closed, and two parts of one mesh
/// given the same port fail to start (an edge once got its router's events-out port).
private let portsHandedOut = Mutex<Set<Int>>([])

/// A TCP port nobody listens on right now, chosen by the OS, and not handed out before in this test process.
func freePort() -> Int {
    while true {
        let port = probePort()
        if portsHandedOut.withLock({ $0.insert(port).inserted }) { return port }
    }
}

private func probePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

enum Paths {
    /// The package's root folder.
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Where `swift build` put the executables: beside the test bundle.
    static let products: URL = {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if FileManager.default.fileExists(atPath: beside.appendingPathComponent("berth-router").path) { return beside }
        return packageRoot.appendingPathComponent(".build/debug")
    }()

    static func executable(_ name: String) -> URL { products.appendingPathComponent(name) }

    static let echoApp = packageRoot.appendingPathComponent("Tests/BerthIntegrationTests/Apps/echo_app.py")
    /// The app that streams its answers and reads streamed bodies (`stream_app.py`).
    static let streamApp = packageRoot.appendingPathComponent("Tests/BerthIntegrationTests/Apps/stream_app.py")
    /// A WebSocket echo app, and a client of scenarios, both on Python's `websockets`.
    static let webSocketApp = packageRoot.appendingPathComponent("Tests/BerthIntegrationTests/Apps/ws_echo_app.py")
    static let webSocketClient = packageRoot.appendingPathComponent("Tests/BerthIntegrationTests/Apps/ws_client.py")
}
