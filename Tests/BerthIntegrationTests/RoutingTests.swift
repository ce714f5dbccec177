import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing

/// Named requests are sticky, unnamed ones spread, and an instance that leaves takes only its own names along.
@Suite(.serialized)
struct RoutingTests {
    static let names = (0..<30).map { "user-\($0)" }

    /// Which instance answers each name.
    static func placement(_ mesh: TestMesh, names: [String]) async throws -> [String: String] {
        var placed: [String: String] = [:]
        for name in names {
            let (response, body) = try await mesh.get("/a/instance", headers: [("x-berth-instance", name)])
            #expect(response.status == .ok, "\(name): \(response.status) \(body)")
            placed[name] = body
        }
        return placed
    }

    static func startThreeInstances(_ mesh: TestMesh) async throws {
        try mesh.startRouter()
        for index in 0..<3 { try mesh.addInstance(className: "ContainerA", id: "a-\(index)") }
        try mesh.startEdge(routes: ["/a/=ContainerA"])
        // All three registered: unnamed requests reach each of them.
        var seen: Set<String> = []
        let deadline = ContinuousClock.now + .seconds(10)
        while seen.count < 3 && ContinuousClock.now < deadline {
            if let (response, body) = try? await mesh.get("/a/instance"), response.status == .ok { seen.insert(body) }
        }
        #expect(seen == ["a-0", "a-1", "a-2"], "instances never all came up: \(seen)\n\(mesh.logs)")
    }

    @Test func aNamedInstanceIsStickyAndUnnamedRequestsSpread() async throws {
        try await withMesh { mesh in
            try await Self.startThreeInstances(mesh)
            let first = try await Self.placement(mesh, names: Self.names)
            let second = try await Self.placement(mesh, names: Self.names)
            #expect(first == second, "the same name landed on different instances")
            #expect(Set(first.values).count == 3, "30 names should use all 3 instances: \(first)")

            // An instance id used as a name reaches that very instance.
            for id in ["a-0", "a-1", "a-2"] {
                let (_, body) = try await mesh.get("/a/instance", headers: [("x-berth-instance", id)])
                #expect(body == id)
            }

            var counts: [String: Int] = [:]
            for _ in 0..<60 {
                let (_, body) = try await mesh.get("/a/instance")
                counts[body, default: 0] += 1
            }
            #expect(counts.count == 3 && counts.values.allSatisfy { $0 >= 10 }, "unnamed requests should spread: \(counts)")
        }
    }

    @Test func stoppingOneInstanceMovesOnlyItsNames() async throws {
        try await withMesh { mesh in
            try await Self.startThreeInstances(mesh)
            let before = try await Self.placement(mesh, names: Self.names)
            let leaving = "a-1"
            mesh.instance(leaving)?.sidecar?.signal(SIGTERM)
            #expect(await mesh.instance(leaving)?.sidecar?.waitForExit(timeout: .seconds(10)) == 0, "sidecar should drain and exit 0")

            let after = try await Self.placement(mesh, names: Self.names)
            for name in Self.names {
                if before[name] == leaving {
                    #expect(after[name] != leaving, "\(name) still on the stopped instance")
                } else {
                    #expect(after[name] == before[name], "\(name) moved from \(before[name] ?? "?") to \(after[name] ?? "?") though its instance stayed")
                }
            }
        }
    }
}
