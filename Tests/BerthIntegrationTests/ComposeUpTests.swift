import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// `berth up` on real compose files: the demo, sleep_after, crashes, and broken files.
@Suite(.serialized)
struct ComposeUpTests {
    /// A compose file in a temporary folder, on free ports, with a unique mesh name.
    struct MeshFile {
        let name = "test-\(UUID().uuidString.prefix(8).lowercased())"
        let edgePort = freePort()
        let ports = (0..<4).map { _ in freePort() }
        let path: String

        init(containers: String, edgeCommand: String? = nil, routes: [String] = []) throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).yaml").path
            let products = Paths.products.path
            var yaml = """
                name: \(name)
                router:
                  frontend: tcp://127.0.0.1:\(ports[0])
                  backend: tcp://127.0.0.1:\(ports[1])
                  events_in: tcp://127.0.0.1:\(ports[2])
                  events_out: tcp://127.0.0.1:\(ports[3])
                  heartbeat: 300ms
                edge:
                  listen: 127.0.0.1:\(edgePort)

                """
            // A bare name, as Compose/demo.yaml has it: found beside the berth that runs the file.
            if let edgeCommand { yaml += "  command: [\(edgeCommand)]\n" }
            if !routes.isEmpty {
                yaml += "  routes:\n" + routes.map { "    - \($0)\n" }.joined()
            }
            yaml += "containers:\n" + containers.replacingOccurrences(of: "$PRODUCTS", with: products)
                .replacingOccurrences(of: "$ROOT", with: Paths.packageRoot.path)
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        }

        var stateFolder: String { "\(ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"] ?? "/tmp")/berth-\(getuid())/\(name)" }

        /// The compose file and the mesh's folder (its logs), once the mesh is down.
        func remove() {
            try? FileManager.default.removeItem(atPath: stateFolder)
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// `berth down`, then the compose file and the mesh's folder go: a test run leaves nothing behind.
    static func down(_ file: MeshFile) async {
        _ = try? await berth(["down", "-f", file.path])
        file.remove()
    }

    static func berth(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let process = try ChildProcess(name: "berth-\(arguments.first ?? "")", executable: Paths.executable("berth"), arguments: arguments)
        let status = await process.waitForExit(timeout: .seconds(60)) ?? -1
        return (status, process.output)
    }

    /// `berth ps --json`, decoded loosely.
    static func state(_ file: MeshFile) -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: file.stateFolder + "/state.json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let services = object["services"] as? [[String: Any]]
        else { return [] }
        return services
    }

    static func healthyApps(_ file: MeshFile) -> [String] {
        state(file).compactMap { service in
            guard let app = service["app"] as? [String: Any], app["state"] as? String == "healthy" else { return nil }
            return service["name"] as? String
        }
    }

    static func pids(_ file: MeshFile) -> [Int32] {
        state(file).flatMap { service -> [Int32] in
            let own = (service["pid"] as? Int).map { [Int32($0)] } ?? []
            let app = ((service["app"] as? [String: Any])?["pid"] as? Int).map { [Int32($0)] } ?? []
            return own + app
        }
    }

    /// Runs `berth up` in the foreground for the test, and `berth down` after it, whatever happened.
    static func withUp<T>(
        _ file: MeshFile, isolation: String? = nil, options: [String] = [], _ body: (ChildProcess, HTTPClient) async throws -> T
    ) async throws -> T {
        var arguments = ["up", "-f", file.path] + options
        if let isolation { arguments += ["--isolation", isolation] }
        let up = try ChildProcess(name: "berth-up", executable: Paths.executable("berth"), arguments: arguments)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let result = try await body(up, client)
            _ = try await berth(["down", "-f", file.path])
            _ = await up.waitForExit(timeout: .seconds(30))
            // Only the logs stay, for berth logs: no state, no socket files (the router's ipc endpoints, as root).
            let left = (try? FileManager.default.contentsOfDirectory(atPath: file.stateFolder)) ?? []
            #expect(left.allSatisfy { $0 == "logs" }, "berth down left files behind in \(file.stateFolder): \(left)")
            // Then they go too; when the test failed they stay, to say why.
            file.remove()
            try await client.shutdown()
            return result
        } catch {
            _ = try? await berth(["down", "-f", file.path])
            up.stop()
            try? await client.shutdown()
            throw error
        }
    }

    static func get(_ client: HTTPClient, _ url: String) async throws -> (HTTPResponseStatus, String) {
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (response.status, String(buffer: body))
    }

    static func waitFor(_ timeout: Duration = .seconds(30), _ condition: () async -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// The demo's containers, as Compose/demo.yaml has them: A in Swift, found beside `berth` as the demo names it,
    /// and B in Python, found on PATH; three instances each.
    static let demoContainers = """
          ContainerA:
            command: [demo-container-a]
            port: 8080
            instances: 3
            readiness: { path: /health }
          ContainerB:
            command: ["python3", "$ROOT/Compose/apps/container-b/app.py"]
            port: 3000
            instances: 3
            readiness: { path: /health }

        """

    @Test func theDemoRunsAndLeavesNothingBehind() async throws {
        let file = try MeshFile(containers: Self.demoContainers, edgeCommand: "demo-edge",
                                routes: ["{ path: /a/, container: ContainerA }", "{ path: /b/, container: ContainerB }"])
        var pids: [Int32] = []
        try await Self.withUp(file) { up, client in
            let healthy = try await Self.waitFor { Self.healthyApps(file).count == 6 }
            #expect(healthy, "apps never all became healthy: \(Self.state(file))\n\(up.output.suffix(3_000))")

            let (status, body) = try await Self.get(client, "http://127.0.0.1:\(file.edgePort)/")
            #expect(status == .ok, "\(body)")
            #expect(body.contains("\"from\": \"ContainerB\""), "B's answer: \(body)")
            #expect(body.contains("\"from\": \"ContainerA\""), "containing A's payload: \(body)")

            let ps = try await Self.berth(["ps", "-f", file.path])
            #expect(ps.status == 0)
            for instance in ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2"] {
                #expect(ps.output.split(separator: "\n").contains { $0.contains(instance) && $0.contains("healthy") },
                        "berth ps should list \(instance) healthy:\n\(ps.output)")
            }
            pids = Self.pids(file)
            #expect(pids.count >= 14, "router, edge, 6 sidecars and 6 apps: \(pids)")
        }
        let gone = try await Self.waitFor(.seconds(10)) { pids.allSatisfy { kill($0, 0) != 0 } }
        #expect(gone, "berth down left processes behind: \(pids.filter { kill($0, 0) == 0 })")
    }

    @Test func anIdleAppSleepsAndTheNextRequestWakesIt() async throws {
        let file = try MeshFile(containers: """
              Echo:
                command: ["python3", "$ROOT/Tests/BerthIntegrationTests/Apps/echo_app.py"]
                port: \(freePort())
                instances: 1
                sleep_after: 2s

            """, routes: ["{ path: /e/, container: Echo }"])
        try await Self.withUp(file, isolation: "port") { up, client in
            #expect(try await Self.waitFor { Self.healthyApps(file).count == 1 }, "\(up.output.suffix(2_000))")
            let (first, _) = try await Self.get(client, "http://127.0.0.1:\(file.edgePort)/e/instance")
            #expect(first == .ok)
            let asleep = try await Self.waitFor(.seconds(10)) {
                Self.state(file).contains { ($0["app"] as? [String: Any])?["state"] as? String == "sleeping" }
            }
            #expect(asleep, "the app should sleep after 2 s idle: \(Self.state(file))")
            let (woken, body) = try await Self.get(client, "http://127.0.0.1:\(file.edgePort)/e/instance")
            #expect(woken == .ok, "the next request starts it again: \(body)")
            #expect(body == "Echo-0" || body.hasPrefix("echo"), "\(body)")
        }
    }

    @Test func aCrashingAppIsRestartedWithBackoffAndRequestsMeanwhileAreAnswered() async throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("crash-\(UUID().uuidString)").path
        // Crashes on its first two starts, then serves.
        let script = """
            import os, sys, subprocess
            n = int(open("\(marker)").read()) if os.path.exists("\(marker)") else 0
            open("\(marker)", "w").write(str(n + 1))
            if n < 2:
                print("crashing on start", n, flush=True)
                sys.exit(3)
            os.execvp("python3", ["python3", "\(Paths.echoApp.path)"])
            """
        let scriptPath = marker + ".py"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        defer { for path in [marker, scriptPath] { try? FileManager.default.removeItem(atPath: path) } }
        let file = try MeshFile(containers: """
              Flaky:
                command: ["python3", "\(scriptPath)"]
                port: \(freePort())
                restart: on-failure
                restart_backoff: { initial: 500ms, max: 2s }

            """, routes: ["{ path: /f/, container: Flaky }"])
        try await Self.withUp(file, isolation: "port") { up, client in
            // While it crashes and backs off, requests are answered at once with a clear reason.
            let registered = try await Self.waitFor(.seconds(15)) {
                guard let (status, body) = try? await Self.get(client, "http://127.0.0.1:\(file.edgePort)/f/instance") else { return false }
                return status == .serviceUnavailable && body.contains("exited with code 3")
            }
            #expect(registered, "requests during the crash loop should say the app exited:\n\(up.output.suffix(3_000))")
            let served = try await Self.waitFor(.seconds(20)) {
                (try? await Self.get(client, "http://127.0.0.1:\(file.edgePort)/f/instance"))?.0 == .ok
            }
            #expect(served, "the app should be restarted and serve:\n\(up.output.suffix(3_000))")
            let restarts = Self.state(file).compactMap { ($0["app"] as? [String: Any])?["restarts"] as? Int }.first
            #expect(restarts == 2, "two restarts: \(Self.state(file))")
        }
    }

    static let twoEchoes = """
          Echo:
            command: ["python3", "$ROOT/Tests/BerthIntegrationTests/Apps/echo_app.py"]
            port: 18000
            instances: 2

        """

    @Test func killingBerthItselfLeavesNoProcessBehind() async throws {
        let file = try MeshFile(containers: Self.twoEchoes, routes: ["{ path: /e/, container: Echo }"])
        let up = try ChildProcess(name: "berth-up", executable: Paths.executable("berth"), arguments: ["up", "-f", file.path])
        defer { up.stop() }
        #expect(try await Self.waitFor { Self.healthyApps(file).count == 2 }, "\(up.output.suffix(2_000))")
        let pids = Self.pids(file)
        #expect(pids.count == 6, "router, edge, 2 sidecars, 2 apps: \(pids)")
        up.signal(SIGKILL)
        let gone = try await Self.waitFor(.seconds(10)) { pids.allSatisfy { kill($0, 0) != 0 } }
        #expect(gone, "still running after berth was killed: \(pids.filter { kill($0, 0) == 0 })")
        await Self.down(file)
    }

    /// `berth up --io-scheduling` reaches every process it starts: the router, the sidecars and the edge.
    @Test(arguments: [([], IOSchedulingTests.schedBatch), (["--io-scheduling", "normal"], IOSchedulingTests.schedOther)])
    func everyProcessOfTheMeshSchedulesItsIOThreadsAsAsked(options: [String], policy: Int) async throws {
        let file = try MeshFile(containers: Self.twoEchoes, routes: ["{ path: /e/, container: Echo }"])
        try await Self.withUp(file, isolation: "port", options: options) { up, _ in
            let healthy = try await Self.waitFor { Self.healthyApps(file).count == 2 }
            #expect(healthy, "\(up.output)")
            let processes = Self.state(file).compactMap { service in (service["pid"] as? Int).map { (service["name"] as? String ?? "?", Int32($0)) } }
            #expect(processes.count == 4, "router, two sidecars and the edge: \(processes)")
            for (name, pid) in processes {
                let policies = try await IOSchedulingTests.ioThreadPolicies(of: pid)
                #expect(!policies.isEmpty && policies.allSatisfy { $0 == policy }, "\(name): policies \(policies)")
            }
        }
    }

    @Test func detachedUpReturnsWhenHealthyAndDownStopsIt() async throws {
        let file = try MeshFile(containers: Self.twoEchoes, routes: ["{ path: /e/, container: Echo }"])
        let up = try await Self.berth(["up", "-d", "-f", file.path, "--isolation", "port"])
        #expect(up.status == 0, "\(up.output)")
        #expect(up.output.contains("echo-0") && up.output.contains("echo-1") && up.output.contains("healthy"), "\(up.output)")
        let ps = try await Self.berth(["ps", "-f", file.path])
        #expect(ps.output.contains("18000") && ps.output.contains("18001"), "port isolation: instance i on port + i:\n\(ps.output)")
        let pids = Self.pids(file)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let (status, body) = try await Self.get(client, "http://127.0.0.1:\(file.edgePort)/e/instance")
        try await client.shutdown()
        #expect(status == .ok, "\(body)")

        let logs = try await Self.berth(["logs", "--file", file.path, "Echo/echo-0"])
        #expect(logs.output.split(separator: "\n").contains { $0.hasPrefix("Echo/echo-0 | ") && $0.hasSuffix(" listening on 18000") },
                "berth logs keeps each process's output:\n\(logs.output)")

        let down = try await Self.berth(["down", "-f", file.path])
        #expect(down.status == 0, "\(down.output)")
        let gone = try await Self.waitFor(.seconds(10)) { pids.allSatisfy { kill($0, 0) != 0 } }
        #expect(gone, "berth down left: \(pids.filter { kill($0, 0) == 0 })")
        file.remove()
    }

    /// `berth` run by its bare name from PATH, as an installed one is: argv[0] is then just "berth", and the
    /// executables beside it must be found all the same.
    @Test func aBerthFoundOnPathFindsItsExecutablesBesideIt() async throws {
        let file = try MeshFile(containers: Self.twoEchoes, edgeCommand: "demo-edge", routes: ["{ path: /e/, container: Echo }"])
        let path = Paths.products.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        for detach in [false, true] {
            let up = try ChildProcess(name: "berth-up-from-path", executable: URL(fileURLWithPath: "/usr/bin/env"),
                                      arguments: ["berth", "up", "-f", file.path, "--isolation", "port"] + (detach ? ["-d"] : []),
                                      environment: ["PATH": path])
            let healthy = try await Self.waitFor { Self.healthyApps(file).count == 2 }
            _ = try await Self.berth(["down", "-f", file.path])
            _ = await up.waitForExit(timeout: .seconds(30))
            #expect(healthy, "berth up\(detach ? " -d" : ""): \(up.output.suffix(2_000))")
        }
        file.remove()
    }

    @Test(arguments: [
        ("name: x\ncontainers:\n  A:\n    command: [a]\n    port: 8080\n    instances: [\n", "broken.yaml:7"),
        ("name: x\ncontainers:\n  A:\n    comand: [a]\n    port: 8080\n", "containers.A.comand"),
        ("name: x\ncontainers:\n  A:\n    command: [a]\n    port: 70000\n", "containers.A.port"),
        ("name: x\ncontainers:\n  A:\n    command: [a]\n    port: 80\n    instances: -2\n", "containers.A.instances"),
        ("name: x\ncontainers:\n  A:\n    port: 8080\n", "containers.A.command"),
    ])
    func aBrokenComposeFileNamesTheLineAndKeyAndStartsNothing(yaml: String, expected: String) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("broken.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try await Self.berth(["up", "-f", path])
        #expect(status != 0)
        #expect(output.contains(expected), "the error should name \(expected):\n\(output)")
        #expect(output.range(of: #"broken\.yaml:\d+"#, options: .regularExpression) != nil, "and the line: \(output)")
    }
}
