import AsyncHTTPClient
import BerthTap
import BerthWire
import Foundation
import NIOHTTP1
import Testing

/// Container to container through the caller's own sidecar ($BERTH_URL), and out of the mesh, as an app does it:
/// the echo app's `/call` makes the call from inside container A.
@Suite(.serialized)
struct EgressTests {
    /// A router; ContainerB/b-0 and ContainerC/c-0 (echo apps); ContainerA/a-0, whose sidecar starts its echo app with
    /// an egress listener given `egress` (arguments); an edge that routes `/a/`. Returns once A's app can call B.
    static func start(_ mesh: TestMesh, egress: [String]) async throws {
        try mesh.startRouter()
        try mesh.addInstance(className: "ContainerB", id: "b-0")
        try mesh.addInstance(className: "ContainerC", id: "c-0")
        try mesh.addInstance(className: "ContainerA", id: "a-0", owned: true, egress: egress)
        try mesh.startEdge(routes: ["/a/=ContainerA"])
        let up = try await mesh.waitUntil("/a/call?target=/ContainerB/instance", timeout: .seconds(20)) { response, body in
            response.status == .ok && body == "b-0"
        }
        guard up else { throw MeshNotUp(logs: mesh.logs) }
    }

    @Test func aContainerCallsAnotherThroughItsSidecarAndTheEventNamesTheCaller() async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, egress: ["--egress", "ContainerB"])
            let (response, body) = try await mesh.get("/a/call?target=/ContainerB/echo%3Fq%3D1")
            #expect(response.status == .ok, "\(body)")
            let echoed = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], "\(body)")
            #expect(echoed["path"] as? String == "/echo" && echoed["query"] as? String == "q=1", "B's app sees the path without the class: \(body)")

            // B's sidecar reports the exchange with A's instance as its source, and A's egress listener its own side.
            let (served, called) = try await EventStreamTests.withSubscription(mesh, topics: ["traffic."]) { items in
                let sending = Task {
                    while !Task.isCancelled {
                        _ = try? await mesh.get("/a/call?target=/ContainerB/instance")
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                defer { sending.cancel() }
                var served: TrafficEvent?
                var called: TrafficEvent?
                for try await item in items {
                    guard case .event(let tapped) = item, case .traffic(let event) = tapped.event, event.path == "/instance" else { continue }
                    if event.kind == .sidecar && event.destination.className == "ContainerB" { served = event }
                    if event.kind == .egress { called = event }
                    if let served, let called, served.traceID == called.traceID { return (served, called) }
                }
                throw MeshNotUp(logs: mesh.logs)
            }
            #expect(served.source == Endpoint(className: "ContainerA", instanceID: "a-0", port: UInt32(mesh.instance("a-0")!.appPort)))
            #expect(served.destination.instanceID == "b-0")
            #expect(called.source.className == "ContainerA" && called.destination.className == "ContainerB", "\(called)")
            #expect(served.parentSpanID == called.spanID, "B's span is a child of A's call: \(served) \(called)")
        }
    }

    @Test func aClassOutsideTheEgressListIsRefusedWith403NamingTheRule() async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, egress: ["--egress", "ContainerB"])
            let (response, body) = try await mesh.get("/a/call?target=/ContainerC/instance")
            #expect(response.status == .forbidden, "\(body)")
            #expect(response.headers["x-berth-error"].first == "egress-denied")
            #expect(body.contains("ContainerA/a-0's egress: [ContainerB] does not list ContainerC"), "\(body)")
            #expect(body.split(separator: "\n").count == 1, "one line: \(body)")
            // The same class is refused as a proxy's host too.
            let (proxied, proxiedBody) = try await mesh.get("/a/call?url=http://ContainerC/instance")
            #expect(proxied.status == .forbidden, "\(proxiedBody)")
        }
    }

    @Test func aCallNamesTheInstanceAsTheEdgeAllows() async throws {
        try await withMesh { mesh in
            try mesh.addInstance(className: "ContainerB", id: "b-1")
            try await Self.start(mesh, egress: ["--egress", "ContainerB"])
            for _ in 0..<4 {
                let (response, body) = try await mesh.get("/a/call?target=/ContainerB/instance", headers: [("x-berth-call-instance", "b-1")])
                #expect(response.status == .ok && body == "b-1", "\(body)")
            }
            let (response, body) = try await mesh.get("/a/call?target=/ContainerB/instance", headers: [("x-berth-call-port", "0")])
            #expect(response.status == .badRequest && body.contains("x-berth-port: \"0\" is not a TCP port"), "\(body)")
        }
    }

    @Test func theProxyModeReachesAClassByItsHostName() async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, egress: ["--egress", "ContainerB"])
            let (response, body) = try await mesh.get("/a/call?url=http://ContainerB/instance")
            #expect(response.status == .ok && body == "b-0", "\(body)")
        }
    }

    @Test func theInternetIsRefusedUnlessAllowedAndReachedWhenAllowed() async throws {
        let outsidePort = freePort()
        let outside = try ChildProcess(name: "outside", executable: URL(fileURLWithPath: "/usr/bin/env"),
                                       arguments: ["python3", Paths.echoApp.path, String(outsidePort)],
                                       environment: ["APP_NAME": "outside"])
        defer { outside.stop() }
        try awaitPort(outsidePort)

        try await withMesh { mesh in
            try await Self.start(mesh, egress: ["--egress", "ContainerB"])
            let (response, body) = try await mesh.get("/a/call?url=http://127.0.0.1:\(outsidePort)/instance")
            #expect(response.status == .forbidden, "\(body)")
            #expect(response.headers["x-berth-error"].first == "egress-denied")
            #expect(body.contains("internet: false"), "\(body)")
        }
        try await withMesh { mesh in
            try await Self.start(mesh, egress: ["--internet"])
            let (response, body) = try await mesh.get("/a/call?url=http://127.0.0.1:\(outsidePort)/instance")
            #expect(response.status == .ok && body == "outside", "\(body)\n\(mesh.logs)")
            // Every class is allowed when no list is given.
            let (inside, insideBody) = try await mesh.get("/a/call?target=/ContainerC/instance")
            #expect(inside.status == .ok && insideBody == "c-0", "\(insideBody)")
        }
    }

    /// A call out of the mesh streams as calls into it do: a download larger than any body read whole (32 MiB)
    /// reaches the app whole, and the event of the call comes at its end with its bytes; an upload over 1 MiB streams
    /// out whole.
    @Test func aDownloadFromOutsideStreamsThroughTheSidecar() async throws {
        let size = 40_000_000
        let outsidePort = freePort()
        let outside = try ChildProcess(name: "outside", executable: URL(fileURLWithPath: "/usr/bin/env"),
                                       arguments: ["python3", Paths.streamApp.path, String(outsidePort)])
        defer { outside.stop() }
        try awaitPort(outsidePort)
        let expected = try await StreamingTests.runWatchingMemory("python3 \(Paths.streamApp.path) --sha256 \(size)", of: []).1
        try await withMesh { mesh in
            try await Self.start(mesh, egress: ["--internet"])
            let event: TrafficEvent = try await EventStreamTests.withSubscription(mesh, topics: ["traffic."]) { items in
                let calling = Task {
                    for index in 0..<20 {
                        let (response, body) = try await mesh.get(
                            "/a/call?url=http://127.0.0.1:\(outsidePort)/download/\(size)&digest=1", headers: [("x-request-id", "download-\(index)")]
                        )
                        #expect(response.status == .ok && body.contains("\"length\": \(size)") && body.contains(expected.prefix(64)), "\(body)")
                        try await Task.sleep(for: .milliseconds(200))
                    }
                }
                defer { calling.cancel() }
                for try await item in items {
                    guard case .event(let tapped) = item, case .traffic(let event) = tapped.event,
                          event.xRequestID.hasPrefix("download-"), event.destination.className == EventNames.internetClass else { continue }
                    return event
                }
                throw MeshNotUp(logs: mesh.logs)
            }
            #expect(event.bytesOut == UInt64(size) && event.streamed && event.status == 200, "\(event)")
            let posted = 3_000_000
            let xs = try await StreamingTests.runWatchingMemory("python3 -c 'import hashlib; print(hashlib.sha256(b\"x\" * \(posted)).hexdigest())'", of: []).1
            let (response, body) = try await mesh.get("/a/call?url=http://127.0.0.1:\(outsidePort)/upload&post=\(posted)")
            #expect(response.status == .ok && body.contains("\"length\": \(posted)") && body.contains(xs.prefix(64)), "\(body)")
        }
    }

    /// HTTPS through the sidecar as a proxy: CONNECT host:port opens a tunnel out of the mesh when the policy allows
    /// the internet, and the bytes go through it both ways as they are, each side's end closing the other's; refused
    /// (403) when it does not, and 400 for a class of the mesh, which is called over plain HTTP.
    @Test func connectTunnelsOutOfTheMeshWhenTheInternetIsAllowed() async throws {
        let outsidePort = freePort()
        // A TCP echo server that answers the bytes it got, upper-cased, once the client has closed its half.
        let echo = "import socket; s = socket.create_server(('127.0.0.1', \(outsidePort)))\nwhile True:\n c, _ = s.accept(); d = b''\n while (p := c.recv(4096)): d += p\n c.sendall(d.upper()); c.close()"
        let outside = try ChildProcess(name: "outside", executable: URL(fileURLWithPath: "/usr/bin/env"), arguments: ["python3", "-c", echo])
        defer { outside.stop() }
        try awaitPort(outsidePort)
        try await withMesh { mesh in
            try await Self.start(mesh, egress: ["--egress", "ContainerB"])
            let (_, refused) = try await mesh.get("/a/tunnel?to=127.0.0.1:\(outsidePort)&send=secret")
            #expect(refused.contains(" 403 ") && refused.contains("internet: false"), "\(refused)")
        }
        try await withMesh { mesh in
            try await Self.start(mesh, egress: ["--internet"])
            let (response, body) = try await mesh.get("/a/tunnel?to=127.0.0.1:\(outsidePort)&send=hello%20through%20the%20tunnel")
            #expect(response.status == .ok && body.contains("HTTP/1.1 200 ") && body.contains("\"received\": \"HELLO THROUGH THE TUNNEL\""), "\(body)")
            #expect(!body.lowercased().contains("transfer-encoding") && !body.lowercased().contains("content-length"), "a tunnel's 200 has no body framing: \(body)")
            let (_, unreachable) = try await mesh.get("/a/tunnel?to=127.0.0.1:\(freePort())&send=x")
            #expect(unreachable.contains(" 502 ") && unreachable.contains("the tunnel to 127.0.0.1:"), "\(unreachable)")
            let (_, mesh400) = try await mesh.get("/a/tunnel?to=ContainerB:80&send=x")
            #expect(mesh400.contains(" 400 ") && mesh400.contains("CONNECT makes tunnels out of the mesh only"), "\(mesh400)")
        }
    }

    /// Compose/egress.yaml's containers, under `berth up`: A posts to B through its own sidecar, with the port of its
    /// egress listener fixed in its network namespace, or chosen per instance where instances share the network.
    @Test(arguments: ["netns", "port"])
    func theEgressDemoRunsUnderBerthUp(isolation: String) async throws {
        if isolation == "netns" && getuid() != 0 { return }
        let containers = """
              ContainerA:
                command: [demo-container-a]
                port: 8080
                instances: 2
                readiness: { path: /health }
                egress: [ContainerB]
              ContainerB:
                command: ["python3", "$ROOT/Compose/apps/container-b/app.py"]
                port: 3000
                instances: 2
                readiness: { path: /health }
                egress: []

            """
        let file = try ComposeUpTests.MeshFile(containers: containers, routes: ["{ path: /a/, container: ContainerA }"])
        try await ComposeUpTests.withUp(file, isolation: isolation) { up, client in
            #expect(try await ComposeUpTests.waitFor { ComposeUpTests.healthyApps(file).count == 4 }, "\(up.output.suffix(3_000))")
            let ok = try await ComposeUpTests.waitFor(.seconds(15)) {
                (try? await ComposeUpTests.get(client, "http://127.0.0.1:\(file.edgePort)/a/send-to-b"))?.0 == .ok
            }
            #expect(ok, "\(up.output.suffix(3_000))")
            let (status, body) = try await ComposeUpTests.get(client, "http://127.0.0.1:\(file.edgePort)/a/send-to-b")
            #expect(status == .ok && body.contains("\"from\": \"ContainerB\"") && body.contains("\"from\": \"ContainerA\""), "\(body)")
        }
    }
}
