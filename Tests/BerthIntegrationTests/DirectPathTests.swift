import AsyncHTTPClient
import BerthBus
import BerthWire
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The router is not on a request's path: edges pick the instance from their copy of the directory and send
/// straight to its sidecar. Losing routers, sidecars and directory updates, as a user would, under load.
@Suite(.serialized)
struct DirectPathTests {
    @Test func killingTheOnlyRouterUnderLoadFailsNoRequest() async throws {
        try await withMesh { mesh in
            try await mesh.startInstances(2)
            let (statuses, failures) = try await mesh.load("/a/instance", connections: 16, for: .seconds(4)) { mesh.killRouter() }
            #expect(statuses.keys.sorted() == [200], "\(statuses) \(failures)\n\(mesh.logs)")
            #expect((statuses[200] ?? 0) > 100, "\(statuses)")

            // A sidecar started while no router runs joins once one is back.
            try mesh.addInstance(className: "ContainerA", id: "a-late")
            let (before, _) = try await mesh.get("/a/instance", headers: [("x-berth-instance", "a-late")])
            #expect(before.status == .ok, "a name maps to a live instance meanwhile")
            try mesh.startRouter()
            #expect(try await mesh.waitUntil("/a/instance", accept: { _, body in body == "a-late" }), "a-late never served:\n\(mesh.logs)")
        }
    }

    @Test func twoRoutersAndOneKilledUnderLoadFailsNoRequest() async throws {
        try await withMesh { mesh in
            try await mesh.startInstances(2, routers: 2)
            let (statuses, failures) = try await mesh.load("/a/instance", connections: 16, for: .seconds(4)) { mesh.killRouter() }
            #expect(statuses.keys.sorted() == [200], "\(statuses) \(failures)\n\(mesh.logs)")

            // The surviving router keeps the directory current: an instance that joins now is served.
            try mesh.addInstance(className: "ContainerA", id: "a-2")
            #expect(try await mesh.waitUntil("/a/instance", accept: { _, body in body == "a-2" }), "a-2 never served:\n\(mesh.logs)")
        }
    }

    @Test func killingOneSidecarOfThreeUnderGetLoadFailsNoGet() async throws {
        try await withMesh { mesh in
            try await mesh.startInstances(3)
            let (statuses, failures) = try await mesh.load("/a/instance", connections: 16, for: .seconds(4)) {
                mesh.instance("a-1")?.sidecar?.signal(SIGKILL)
            }
            #expect(statuses.keys.sorted() == [200], "\(statuses) \(failures)\n\(mesh.logs)")
        }
    }

    @Test func aPostInFlightOnAKilledSidecarGets502InstanceLostAtOnce() async throws {
        try await withMesh { mesh in
            try await mesh.startInstances(2, metrics: true)
            async let answer = mesh.send("/a/slow/5000", method: .POST, headers: [("x-berth-instance", "a-0")], body: ByteBuffer(string: "x"))
            // The POST is on a-0 once the edge counts it in the mesh; then a-0's sidecar dies.
            let metricsPort = try #require(mesh.edgeMetricsPort)
            #expect(try await mesh.waitUntil("/metrics", port: metricsPort, accept: EdgeHTTPTests.edgeInFlight(1)), "the POST never reached the mesh")
            let killed = ContinuousClock.now
            mesh.instance("a-0")?.sidecar?.signal(SIGKILL)
            let (response, body) = try await answer
            let waited = killed.duration(to: .now)
            #expect(response.status == .badGateway, "\(String(buffer: body))")
            #expect(response.headers["x-berth-error"] == ["instance-lost"])
            #expect(String(buffer: body).contains("ContainerA/a-0"), "\(String(buffer: body))")
            // The link's monitor says so when the connection breaks: well before the heartbeats would (3 × 300 ms).
            #expect(waited < .milliseconds(800), "the POST waited \(waited) after its sidecar died")
        }
    }

    @Test func theSameNameFromTwoEdgesReachesTheSameInstanceAndOnlyItsNamesMove() async throws {
        try await withMesh { mesh in
            try await mesh.startInstances(3)
            let otherPort = try mesh.startAnotherEdge(routes: ["/a/=ContainerA"])
            #expect(try await mesh.waitUntil("/a/instance", port: otherPort, accept: { response, _ in response.status == .ok }))
            let names = (0..<24).map { "user-\($0)" }
            func placement(port: Int?) async throws -> [String: String] {
                var placed: [String: String] = [:]
                for name in names {
                    let (response, body) = try await mesh.get("/a/instance", headers: [("x-berth-instance", name)], port: port)
                    #expect(response.status == .ok)
                    placed[name] = body
                }
                return placed
            }
            let first = try await placement(port: nil)
            let second = try await placement(port: otherPort)
            #expect(first == second, "two edges sent the same name to different instances")
            #expect(Set(first.values).count > 1, "24 names should spread over 3 instances: \(first)")

            // a-2 leaves (drains): its names move, the others stay.
            mesh.instance("a-2")?.sidecar?.signal(SIGTERM)
            #expect(await mesh.instance("a-2")?.sidecar?.waitForExit(timeout: .seconds(10)) == 0)
            let after = try await placement(port: nil)
            for name in names {
                if first[name] == "a-2" { #expect(after[name] != "a-2") } else { #expect(after[name] == first[name], "\(name) moved") }
            }
        }
    }

    /// The test plays the router: a real ROUTER socket that a real edge follows. An update is lost on purpose (the
    /// sequence skips one): the edge notices the gap and asks for the whole directory again.
    @Test func aLostDirectoryUpdateMakesTheEdgeAskForTheWholeDirectory() async throws {
        let router = try FakeRouter()
        let port = freePort()
        let edge = try ChildProcess(name: "edge", executable: Paths.executable("berth-edge"), arguments: [
            "--listen", "127.0.0.1:\(port)", "--router", router.endpoint, "--events", "tcp://127.0.0.1:\(freePort())",
            "--heartbeat", "5s", "--route", "/a/=ContainerA", "--log-level", "debug",
        ])
        defer { edge.stop() }
        let isDirectoryRequest: (Envelope) -> Bool = { if case .directoryRequest = $0 { true } else { false } }
        let first = try #require(try await router.receive(until: isDirectoryRequest), "the edge never asked for the directory:\n\(edge.output)")
        let identity = first.1[0].bytes
        let ready = { (id: String) in
            Ready(className: "ContainerA", instanceID: id, ports: [80], capacity: 1, heartbeatMilliseconds: 5_000, endpoint: "ipc:///nowhere-\(id)")
        }
        try router.send(.directory(Directory(epoch: 3, sequence: 5, instances: [ready("a-0")])), to: identity)
        try router.send(.directoryUpdate(DirectoryUpdate(epoch: 3, sequence: 6, instance: ready("a-1"), removed: false)), to: identity)
        // Update 7 is lost.
        try router.send(.directoryUpdate(DirectoryUpdate(epoch: 3, sequence: 8, instance: ready("a-2"), removed: false)), to: identity)
        let again = try await router.receive(timeout: .seconds(3), until: isDirectoryRequest)
        #expect(again != nil, "the edge did not ask again after a gap:\n\(edge.output)")
        #expect(edge.output.contains("missed a directory update"), "\(edge.output)")
    }

    /// 1,000 sidecars register (the test plays them, with real sockets): the edge holds their directory in little
    /// memory and opens no link to any it does not send to, while it keeps serving.
    @Test func aThousandRegisteredSidecarsCostTheEdgeLittle() async throws {
        try await withMesh { mesh in
            try await mesh.startInstances(1)
            let edge = try #require(mesh.edge)
            let before = try Self.residentKiB(of: edge.pid)
            var strangers: [Socket] = []
            for index in 0..<1_000 {
                var options = SocketOptions()
                options.immediate = false
                let socket = try Socket(.dealer, options: options)
                try socket.connect(mesh.backend)
                let ready = Ready(
                    className: "Crowd\(index % 10)", instanceID: "c-\(index)", ports: [80], capacity: 8, heartbeatMilliseconds: 300,
                    endpoint: "ipc:///tmp/berth-nowhere-\(index).sock"
                )
                _ = try socket.send([Frame(Envelope.ready(ready).encoded())])
                strangers.append(socket)
            }
            // Each stranger heartbeats while the edge takes the directory in, and requests keep being served.
            for _ in 0..<10 {
                for socket in strangers { _ = try socket.send([Frame(Envelope.heartbeat(Heartbeat()).encoded())]) }
                let (response, body) = try await mesh.get("/a/instance")
                #expect(response.status == .ok, "\(body)")
                try await Task.sleep(for: .milliseconds(200)) // the strangers' heartbeat pace, not a wait for the edge
            }
            let after = try Self.residentKiB(of: edge.pid)
            // Bus processes keep up to 8 MiB of freed blocks before trimming (CBerthMemory), so growth is judged above it.
            #expect(after - before < 12_288, "the edge grew by \(after - before) KiB for 1,000 instances")
            let links = try Self.openSockets(of: edge.pid)
            #expect(links < 100, "the edge holds \(links) sockets: it should link only to the sidecar it sends to")
        }
    }

    static func residentKiB(of pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
    }

    static func openSockets(of pid: Int32) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").filter { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"))?.hasPrefix("socket:") == true
        }.count
    }
}
