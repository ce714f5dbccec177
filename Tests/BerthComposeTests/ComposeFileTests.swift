import BerthCompose
import Foundation
import Testing

@Suite struct ComposeFileTests {
    @Test func aFullFileParsesIntoItsValues() throws {
        let yaml = """
            name: port-forwarding
            router: { frontend: tcp://127.0.0.1:7800, backend: tcp://127.0.0.1:7801, events_in: ipc:///tmp/in, events_out: tcp://*:7803, heartbeat: 500ms }
            edge:
              listen: 0.0.0.0:9000
              routes:
                - { path: /a/, container: ContainerA }
                - { path: /b/, container: ContainerB, instance: b }
              command: [".build/debug/demo-edge", "--verbose"]
              timeout: 1m30s
            containers:
              ContainerA:
                command: ["demo-container-a"]
                port: 8080
                ports: [9090, 9091]
                instances: 3
                environment: { GREETING: hello, COUNT: 3, DEBUG: true, RATIO: 1.50 }
                working_dir: .
                sleep_after: 10m
                readiness: { path: /health, interval: 2s, timeout: 3s }
                restart: always
                restart_backoff: { initial: 100ms, max: 1m }
                stop_signal: SIGINT
                stop_grace_period: 0s
                start_timeout: 45
                capacity: 8
              ContainerB:
                command: python3 Compose/apps/container-b/app.py
                port: 3000
            """
        let file = try ComposeFile.parse(yaml: yaml, path: "Compose/demo.yaml")

        #expect(file.name == "port-forwarding")
        #expect(file.path == "Compose/demo.yaml")
        #expect(file.directory == "Compose")
        #expect(file.router == RouterSpec(
            frontend: "tcp://127.0.0.1:7800", backend: "tcp://127.0.0.1:7801",
            eventsIn: "ipc:///tmp/in", eventsOut: "tcp://*:7803", heartbeat: .milliseconds(500)))
        #expect(file.edge == EdgeSpec(
            host: "0.0.0.0", port: 9000,
            routes: [RouteSpec(prefix: "/a/", container: "ContainerA"), RouteSpec(prefix: "/b/", container: "ContainerB", instance: "b")],
            command: [".build/debug/demo-edge", "--verbose"], timeout: .seconds(90)))
        #expect(file.edge.routes.map(\.argument) == ["/a/=ContainerA", "/b/=ContainerB@b"])
        #expect(file.containers.map(\.name) == ["ContainerA", "ContainerB"])

        var a = ContainerSpec(name: "ContainerA", command: ["demo-container-a"], port: 8080)
        a.ports = [9090, 9091]
        a.instances = 3
        a.environment = [
            EnvironmentVariable(name: "GREETING", value: "hello"), EnvironmentVariable(name: "COUNT", value: "3"),
            EnvironmentVariable(name: "DEBUG", value: "true"), EnvironmentVariable(name: "RATIO", value: "1.50"),
        ]
        a.workingDir = "."
        a.sleepAfter = .seconds(600)
        a.readiness = ReadinessSpec(path: "/health", interval: .seconds(2), timeout: .seconds(3))
        a.restart = .always
        a.restartBackoff = BackoffSpec(initial: .milliseconds(100), max: .seconds(60))
        a.stopSignal = SIGINT
        a.stopGracePeriod = .zero
        a.startTimeout = .seconds(45)
        a.capacity = 8
        #expect(file.containers[0] == a)
        #expect(file.containers[1].command == ["python3", "Compose/apps/container-b/app.py"])
        #expect(file.container(named: "ContainerB")?.port == 3000)
        #expect(file.container(named: "ContainerC") == nil)
    }

    @Test func routerReplicasEachGetTheirOwnEndpoints() throws {
        let yaml = "router: { replicas: 3, events_in: ipc:///tmp/in }\ncontainers:\n  web: { command: [./web], port: 80 }\n"
        let router = try ComposeFile.parse(yaml: yaml, path: "mesh.yaml").router
        #expect(router.replicas == 3)
        #expect(router.replica(0) == router)
        let second = router.replica(2)
        #expect(second.frontend == "tcp://127.0.0.1:7720")
        #expect(second.backend == "tcp://127.0.0.1:7721")
        #expect(second.eventsIn == "ipc:///tmp/in-2")
        #expect(second.eventsOut == "tcp://127.0.0.1:7723")
    }

    @Test func defaultsApplyToEverythingLeftOut() throws {
        let file = try ComposeFile.parse(yaml: "containers:\n  web:\n    command: [./web]\n    port: 80\n", path: "mesh.yaml")

        #expect(file.name == "mesh")
        #expect(file.directory == ".")
        #expect(file.router == RouterSpec(
            frontend: "tcp://127.0.0.1:7700", backend: "tcp://127.0.0.1:7701",
            eventsIn: "tcp://127.0.0.1:7702", eventsOut: "tcp://127.0.0.1:7703", heartbeat: .seconds(1)))
        #expect(file.edge == EdgeSpec(host: "127.0.0.1", port: 8787, routes: [], command: nil, timeout: .seconds(30)))
        let web = try #require(file.containers.first)
        #expect(web == ContainerSpec(name: "web", command: ["./web"], port: 80))
        #expect(web.ports == [])
        #expect(web.instances == 1)
        #expect(web.environment == [])
        #expect(web.workingDir == nil)
        #expect(web.sleepAfter == nil)
        #expect(web.readiness == nil)
        #expect(web.restart == .onFailure)
        #expect(web.restartBackoff == BackoffSpec(initial: .milliseconds(250), max: .seconds(10)))
        #expect(web.stopSignal == SIGTERM)
        #expect(web.stopGracePeriod == .seconds(10))
        #expect(web.startTimeout == .seconds(30))
        #expect(web.capacity == 64)
    }

    @Test func readinessDefaultsAndShorthand() throws {
        let file = try ComposeFile.parse(yaml: """
            containers:
              a: { command: [x], port: 1, readiness: { path: /ready } }
              b: { command: [x], port: 2, readiness: /health }
            """, path: "m.yaml")
        #expect(file.containers[0].readiness == ReadinessSpec(path: "/ready", interval: .seconds(1), timeout: .seconds(2)))
        #expect(file.containers[1].readiness == ReadinessSpec(path: "/health"))
    }

    @Test(arguments: [
        ("always", RestartPolicy.always), ("on-failure", .onFailure), ("no", .no), ("\"no\"", .no), ("false", .no), ("off", .no),
    ])
    func restartPolicies(written: String, expected: RestartPolicy) throws {
        let file = try ComposeFile.parse(yaml: "containers:\n  a: { command: [x], port: 1, restart: \(written) }\n", path: "m.yaml")
        #expect(file.containers[0].restart == expected)
    }

    @Test(arguments: [
        ("SIGTERM", SIGTERM), ("TERM", SIGTERM), ("sigint", SIGINT), ("KILL", SIGKILL), ("SIGHUP", SIGHUP), ("QUIT", SIGQUIT),
        ("SIGUSR1", SIGUSR1), ("USR2", SIGUSR2), ("9", 9), ("\"15\"", 15),
    ])
    func stopSignals(written: String, expected: Int32) throws {
        let file = try ComposeFile.parse(yaml: "containers:\n  a: { command: [x], port: 1, stop_signal: \(written) }\n", path: "m.yaml")
        #expect(file.containers[0].stopSignal == expected)
    }

    @Test func extensionKeysAndAliasesAreAllowedAtTheTop() throws {
        let file = try ComposeFile.parse(yaml: """
            x-env: &env { GREETING: hi }
            containers:
              a: { command: [x], port: 1, environment: *env }
            """, path: "m.yaml")
        #expect(file.containers[0].environment == [EnvironmentVariable(name: "GREETING", value: "hi")])
    }

    @Test func egressAndInternetPerContainer() throws {
        let file = try ComposeFile.parse(yaml: """
            containers:
              A: { command: [./a], port: 1, egress: [B], internet: true }
              B: { command: [./b], port: 2, egress: [] }
              C: { command: [./c], port: 3 }
            """, path: "mesh.yaml")
        #expect(file.containers.map(\.egress) == [["B"], [], nil])
        #expect(file.containers.map(\.internet) == [true, false, false])
    }

    @Test func nullValuesMeanTheDefault() throws {
        let file = try ComposeFile.parse(yaml: "router:\nedge:\ncontainers:\n  a:\n    command: [x]\n    port: 1\n    working_dir:\n", path: "m.yaml")
        #expect(file.router == RouterSpec())
        #expect(file.edge == EdgeSpec())
        #expect(file.containers[0].workingDir == nil)
    }

    @Test func theEgressDemoComposeFileParses() throws {
        let repo = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try ComposeFile.load(path: repo.appendingPathComponent("Compose/egress.yaml").path)
        #expect(file.name == "egress")
        let a = try #require(file.container(named: "ContainerA"))
        #expect(a.egress == ["ContainerB"] && a.internet == false)
        #expect(a.environment.map(\.value) == ["hello from A, through its sidecar"])
        #expect(file.container(named: "ContainerB")?.egress == [])
    }

    @Test func theDemoComposeFileParses() throws {
        let repo = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = repo.appendingPathComponent("Compose/demo.yaml").path
        let file = try ComposeFile.load(path: path)

        #expect(file.name == "port-forwarding")
        #expect(file.router == RouterSpec())
        #expect(file.edge.host == "127.0.0.1")
        #expect(file.edge.port == 8787)
        #expect(file.edge.command == ["demo-edge"])
        #expect(file.dashboard == DashboardSpec(host: "127.0.0.1", port: 8788))
        #expect(file.edge.routes.map(\.argument) == ["/a/=ContainerA", "/b/=ContainerB"])

        let a = try #require(file.container(named: "ContainerA"))
        #expect(a.command == ["demo-container-a"])
        #expect(a.port == 8080)
        #expect(a.instances == 3)
        #expect(a.environment.map(\.name) == ["GREETING"])
        #expect(a.readiness?.path == "/health")
        #expect(a.sleepAfter == .seconds(600))

        let b = try #require(file.container(named: "ContainerB"))
        #expect(b.command == ["python3", "Compose/apps/container-b/app.py"])
        #expect(b.port == 3000)
        #expect(b.instances == 3)
        #expect(b.readiness?.path == "/health")
        #expect(file.containers.map(\.name) == ["ContainerA", "ContainerB"])
    }

    @Test func loadingAFileThatIsNotThereSaysSo() {
        #expect {
            try ComposeFile.load(path: "/nonexistent/berth.yaml")
        } throws: { error in
            let error = error as? ComposeError
            return error?.code == .unreadable && error?.file == "/nonexistent/berth.yaml" && error?.line == nil
                && error?.description == "/nonexistent/berth.yaml: cannot read the compose file: no such file"
        }
    }
}

@Suite struct DurationParserTests {
    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)), ("30s", .seconds(30)), ("10m", .seconds(600)), ("1h", .seconds(3600)),
        ("1m30s", .seconds(90)), ("1h2m3s4ms", .milliseconds(3_723_004)), ("1.5s", .milliseconds(1500)), (".5s", .milliseconds(500)),
        ("30", .seconds(30)), ("0", .zero), ("0s", .zero),
    ])
    func valid(text: String, expected: Duration) {
        #expect(DurationParser.parse(text) == expected)
    }

    @Test(arguments: ["", "-1s", "-5", "s", "10x", "10 s", "1.5", "1.s", "ms", "10sec", "1d", "99999999999999999999s", "3000000h"])
    func invalid(text: String) {
        #expect(DurationParser.parse(text) == nil)
    }

    @Test(arguments: [
        (Duration.zero, "0s"), (.milliseconds(250), "250ms"), (.seconds(90), "1m30s"), (.seconds(3723) + .milliseconds(4), "1h2m3s4ms"),
        (.seconds(7200), "2h"), (.nanoseconds(1_000_500_000), "1.0005s"),
    ])
    func formatRoundTrips(duration: Duration, text: String) {
        #expect(DurationParser.format(duration) == text)
        #expect(DurationParser.parse(text) == duration)
    }
}

@Suite struct PlacementTests {
    @Test func hostsPlaceEveryServiceAndUnplacedOnesGoToTheFirstOrToEveryHost() throws {
        let file = try ComposeFile.parse(yaml: """
            hosts: { h1: 10.77.0.1, h2: 10.77.0.2, h3: "fd00::3" }
            security: { keys: keys/ }
            router: { host: h2 }
            dashboard: { listen: 127.0.0.1:8788 }
            containers:
              A: { command: [./a], port: 80, hosts: [h2, h3] }
              B: { command: [./b], port: 81 }
            """, path: "m.yaml")
        #expect(file.hosts.map(\.name) == ["h1", "h2", "h3"])
        #expect(file.host(named: "h3")?.tcp(port: 7700) == "tcp://[fd00::3]:7700")
        #expect(file.security == SecuritySpec(keys: "keys"))
        #expect(file.router.placement == "h2")
        #expect(file.edge.placement == "h1")
        #expect(file.dashboard?.placement == "h1")
        #expect(file.containers.map(\.placement) == [["h2", "h3"], ["h1", "h2", "h3"]])
    }

    @Test func aFileWithoutHostsPlacesNothing() throws {
        let file = try ComposeFile.parse(yaml: "containers:\n  A: { command: [./a], port: 80 }\n", path: "m.yaml")
        #expect(file.hosts.isEmpty && file.router.placement == nil && file.containers[0].placement.isEmpty && file.security == nil)
    }
}
