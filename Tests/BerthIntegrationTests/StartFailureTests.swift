import Foundation
import Testing

/// `berth up` with an app whose command cannot start: it says which, where and why, at once, and `-d` gives up.
@Suite(.serialized)
struct StartFailureTests {
    enum Broken: String, CaseIterable, Sendable {
        case missing, notExecutable, exits127

        /// The compose command, and what the message must say about it.
        func command(in folder: String) throws -> (yaml: String, named: String, reason: String) {
            switch self {
            case .missing:
                return ("[\"\(folder)/no-such-app\"]", "\(folder)/no-such-app", "No such file or directory")
            case .notExecutable:
                let path = folder + "/not-executable.sh"
                FileManager.default.createFile(atPath: path, contents: Data("#!/bin/sh\necho hi\n".utf8), attributes: [.posixPermissions: 0o644])
                return ("[\"\(path)\"]", path, "Permission denied")
            case .exits127:
                return ("[\"/bin/sh\", \"-c\", \"no-such-command-\(UUID().uuidString.prefix(6))\"]", "/bin/sh -c no-such-command", "exited with code 127")
            }
        }
    }

    static func compose(_ broken: Broken, folder: String) throws -> (ComposeUpTests.MeshFile, named: String, reason: String) {
        let (command, named, reason) = try broken.command(in: folder)
        let file = try ComposeUpTests.MeshFile(containers: """
              Echo:
                command: ["python3", "$ROOT/Tests/BerthIntegrationTests/Apps/echo_app.py"]
                port: \(freePort())
              Broken:
                command: \(command)
                port: \(freePort())

            """, routes: ["{ path: /e/, container: Echo }"])
        return (file, named, reason)
    }

    static func withFolder<T>(_ body: (String) async throws -> T) async throws -> T {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("berth-broken-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try await body(folder)
    }

    /// Whether nothing listens on `port` any more: it can be bound.
    static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    @Test(arguments: Broken.allCases)
    func detachedUpNamesTheCommandThatCannotStartExitsNonZeroAndStopsWhatItStarted(_ broken: Broken) async throws {
        try await Self.withFolder { folder in
            let (file, named, reason) = try Self.compose(broken, folder: folder)
            // The timeout is far off: berth up -d must give up because of the failure, not because of it.
            let up = try await ComposeUpTests.berth(["up", "-d", "-f", file.path, "--isolation", "port", "--timeout", "600"])
            #expect(up.status != 0 && up.status != -1, "berth up -d should fail at once (-1: still running after 60 s):\n\(up.output)")
            let line = up.output.split(separator: "\n").first { $0.contains("Broken/broken-0") } ?? ""
            #expect(line.contains(named) && line.contains(reason), "service, instance, command and reason in one line:\n\(up.output)")
            #expect(!up.output.contains("Echo/echo-0"), "only what failed is listed:\n\(up.output)")
            #expect(file.ports.allSatisfy(Self.isFree) && Self.isFree(file.edgePort), "the router and the edge are stopped")
            #expect(!FileManager.default.fileExists(atPath: file.stateFolder + "/state.json"))
            await ComposeUpTests.down(file)
        }
    }

    @Test func foregroundUpNamesTheCommandThatCannotStart() async throws {
        try await Self.withFolder { folder in
            let (file, named, _) = try Self.compose(.missing, folder: folder)
            try await ComposeUpTests.withUp(file, isolation: "port") { up, _ in
                let said = try await ComposeUpTests.waitFor(.seconds(20)) {
                    up.output.split(separator: "\n").contains { $0.contains("Broken/broken-0") && $0.contains("berth:") && $0.contains(named) }
                }
                #expect(said, "\(up.output.suffix(3_000))")
                let state = ComposeUpTests.state(file).first { $0["name"] as? String == "Broken/broken-0" }
                #expect((state?["app"] as? [String: Any])?["state"] as? String == "failed", "\(String(describing: state))")
            }
        }
    }

    @Test func detachedUpGivesUpAfterItsTimeoutAndSaysWhatIsNotHealthy() async throws {
        let file = try ComposeUpTests.MeshFile(containers: """
              Echo:
                command: ["python3", "$ROOT/Tests/BerthIntegrationTests/Apps/echo_app.py"]
                port: \(freePort())
              Silent:
                command: ["sleep", "600"]
                port: \(freePort())

            """, routes: ["{ path: /e/, container: Echo }"])
        let up = try await ComposeUpTests.berth(["up", "-d", "-f", file.path, "--isolation", "port", "--timeout", "3"])
        #expect(up.status != 0 && up.status != -1, "\(up.output)")
        #expect(up.output.contains("not healthy within 3 s"), "\(up.output)")
        #expect(up.output.split(separator: "\n").contains { $0.contains("Silent/silent-0") && $0.contains("starting") }, "\(up.output)")
        #expect(!up.output.contains("Echo/echo-0:"), "the healthy one is not listed:\n\(up.output)")
        #expect(file.ports.allSatisfy(Self.isFree) && Self.isFree(file.edgePort), "the router and the edge are stopped")
        await ComposeUpTests.down(file)
    }
}
