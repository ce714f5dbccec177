import BerthCompose
import BerthSupervisor
import Testing

/// What each host of a multi-host file runs, and with which endpoints and keys.
@Suite struct MeshPlanTests {
    static let file = try! ComposeFile.parse(yaml: """
        hosts: { h1: 10.77.0.1, h2: 10.77.0.2, h3: 10.77.0.3 }
        security: { keys: /k }
        router: { host: h1, replicas: 2 }
        edge: { host: h1, listen: 0.0.0.0:8787 }
        containers:
          A: { command: [./a], port: 8080, instances: 3, hosts: [h2, h3] }
          B: { command: [./b], port: 3000, hosts: [h3] }
        """, path: "m.yaml")

    static func plan(_ host: String?, _ file: ComposeFile = file) -> MeshPlan {
        MeshPlan(compose: file, executables: Executables(directory: "/bin"), isolation: .networkNamespace, runtimeDirectory: "/run/m", host: host)
    }

    static func argument(_ flag: String, of service: MeshPlan.Service) -> String? {
        service.command.firstIndex(of: flag).map { service.command[$0 + 1] }
    }

    @Test func eachHostRunsItsShareAndInstancesTakeTheirHostsInTurn() {
        #expect(Self.plan("h1").services.map(\.name) == ["router-0", "router-1", "edge"])
        #expect(Self.plan("h2").services.map(\.name) == ["A/a-0", "A/a-2"])
        #expect(Self.plan("h3").services.map(\.name) == ["A/a-1", "B/b-0"])
        #expect(Self.plan("h2").everywhere.count == 7)
    }

    @Test func endpointsCarryTheHostsAddresses() throws {
        let h1 = Self.plan("h1")
        #expect(Self.argument("--frontend", of: h1.services[1]) == "tcp://10.77.0.1:7710")
        #expect(Self.argument("--listen", of: h1.services[2]) == "10.77.0.1:8787")
        #expect(Self.argument("--router", of: h1.services[2]) == "tcp://10.77.0.1:7700,tcp://10.77.0.1:7710")
        let sidecar = Self.plan("h3").services[0]
        #expect(Self.argument("--endpoint", of: sidecar) == "tcp://10.77.0.3:*")
        #expect(Self.argument("--router", of: sidecar) == "tcp://10.77.0.1:7701,tcp://10.77.0.1:7711")
        #expect(Self.argument("--port", of: sidecar) == "8080", "every instance on the configured port in its own namespace")
        #expect(h1.eventsOut == "tcp://10.77.0.1:7703,tcp://10.77.0.1:7713", "subscribers follow every replica")
        #expect(h1.edgeURL == "http://10.77.0.1:8787")
    }

    @Test func everyProcessGetsItsRolesKeyAndTheMeshsFolder() {
        for service in Self.plan("h1").everywhere {
            let role = switch service.kind { case .router: "router"; case .edge: "edge"; case .sidecar: "sidecar"; case .dashboard: "client" }
            #expect(Self.argument("--curve-key", of: service) == "/k/\(role).key_secret", "\(service.name)")
            #expect(Self.argument("--curve-authorized", of: service) == "/k", "\(service.name)")
        }
    }

    @Test func aFileWithoutHostsOrSecurityRunsEverythingHereAsBefore() throws {
        let file = try ComposeFile.parse(yaml: "containers:\n  A: { command: [./a], port: 80, instances: 2 }\n", path: "m.yaml")
        let plan = Self.plan("h9", file)
        #expect(plan.host == nil && plan.services.count == 4)
        #expect(plan.services.allSatisfy { !$0.command.contains("--curve-key") && !$0.command.contains("--endpoint") })
    }
}
