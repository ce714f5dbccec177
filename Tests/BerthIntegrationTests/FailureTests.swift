import AsyncHTTPClient
import BerthBus
import BerthWire
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// Every request gets an answer that says which part failed and why; none hangs.
@Suite(.serialized)
struct FailureTests {
    @Test func appNotListeningIs502AndNoInstanceIs503() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0", app: false)
            try mesh.startEdge(routes: ["/a/=ContainerA", "/c/=ContainerC"])
            #expect(try await mesh.waitUntil("/a/x") { response, _ in response.status == .badGateway }, "\(mesh.logs)")

            let (refused, refusedBody) = try await mesh.get("/a/x")
            #expect(refused.status == .badGateway)
            #expect(refused.headers["x-berth-error"] == ["app-unreachable"])
            #expect(refusedBody.contains("not listening on port"), "\(refusedBody)")

            let (none, noneBody) = try await mesh.get("/c/x")
            #expect(none.status == .serviceUnavailable)
            #expect(none.headers["retry-after"] == ["1"])
            #expect(noneBody.contains("no live instance of container class ContainerC"), "\(noneBody)")
        }
    }

    @Test func appSlowerThanTheDeadlineIs504() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok })

            let started = ContinuousClock.now
            let (response, body) = try await mesh.get("/a/slow/5000", headers: [("x-berth-timeout-ms", "500")])
            #expect(response.status == .gatewayTimeout, "\(body)")
            #expect(response.headers["x-berth-error"] == ["deadline-exceeded"])
            #expect(started.duration(to: .now) < .seconds(4), "the answer should come at the deadline, not when the app finishes")
        }
    }

    @Test func sidecarKilledMidRequestIsAnsweredWithinTheHeartbeatWindow() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok })

            // POST is not idempotent: it is not retried, so the client learns the instance was lost.
            async let answer = mesh.send("/a/slow/20000", method: .POST, body: ByteBuffer(string: "x"))
            try await Task.sleep(for: .milliseconds(500))
            let killed = ContinuousClock.now
            mesh.instance("a-0")?.sidecar?.signal(SIGKILL)
            let (response, body) = try await answer
            #expect(response.status == .badGateway, "\(String(buffer: body))")
            #expect(response.headers["x-berth-error"] == ["instance-lost"])
            // Heartbeat 300 ms × 3, plus the router's sweep: well within 3 s.
            #expect(killed.duration(to: .now) < .seconds(3))
        }
    }

    @Test func idempotentRequestOfAKilledSidecarIsRetriedOnAnotherInstance() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.addInstance(className: "ContainerA", id: "a-1")
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            for id in ["a-0", "a-1"] {
                #expect(try await mesh.waitUntil("/a/instance", accept: { _, body in body == id }), "\(id) never came up")
            }

            async let answer = mesh.get("/a/slow/1500", headers: [("x-berth-instance", "a-0")])
            try await Task.sleep(for: .milliseconds(300))
            mesh.instance("a-0")?.sidecar?.signal(SIGKILL)
            let (response, body) = try await answer
            #expect(response.status == .ok, "GET should have been retried on a-1: \(body)\n\(mesh.logs)")
            #expect(body == "slow\n")
        }
    }

    @Test func aRestartedRouterGetsItsSidecarsAndEdgesBack() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok })

            // The router is not on the request's path: the edge keeps serving on the directory it has.
            mesh.killRouter()
            let (down, downBody) = try await mesh.get("/a/instance")
            #expect(down.status == .ok, "with the router gone: \(downBody)")

            try mesh.startRouter()
            let back = try await mesh.waitUntil("/a/instance", timeout: .seconds(10)) { response, body in
                response.status == .ok && body == "a-0"
            }
            #expect(back, "requests should succeed again without restarting anything else:\n\(mesh.logs)")
        }
    }

    /// An app whose port takes no more connections (its accept queue is full, so the kernel drops the SYN) is a 502
    /// after the sidecar's 2 s connect timeout, not a hang until the request's deadline.
    @Test func anAppThatAcceptsNoConnectionIs502AtTheConnectTimeout() async throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        #expect(listen(listener, 0) == 0)
        // Never accepted: these fill the queue.
        let fillers = (0..<3).map { _ in socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0) }
        defer { fillers.forEach { close($0) } }
        for filler in fillers {
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, length) } }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))

        let router = try FakeRouter()
        let sidecar = try ChildProcess(name: "sidecar", executable: Paths.executable("berth-sidecar"), arguments: [
            "--router", router.endpoint, "--events", "tcp://127.0.0.1:\(freePort())", "--port", String(port), "--heartbeat", "5s",
        ])
        defer { sidecar.stop() }
        let edge = try #require(try await FakeEdge.linked(to: router), "the sidecar never registered:\n\(sidecar.output)")
        let started = ContinuousClock.now
        try edge.send(.request(Request(id: 7, target: Target(className: "ContainerA"), method: "GET", path: "/", timeoutMilliseconds: 20_000)), to: edge.sidecarID)
        let answer = try await edge.receive(timeout: .seconds(10)) { if case .response(let response) = $0, response.id == 7 { true } else { false } }
        guard case .response(let response)? = answer?.0 else {
            Issue.record("no answer:\n\(sidecar.output)")
            return
        }
        #expect(response.error?.code == .appUnreachable, "\(response)")
        #expect(response.error?.message.contains("did not accept a connection in time") == true, "\(response)")
        let waited = started.duration(to: .now)
        #expect(waited < .seconds(5), "answered after \(waited), not at the connect timeout")
    }

    /// An app that is up but not ready is probed every 100 ms; each probe closes its connection instead of leaving
    /// it behind (the count is sampled every 100 ms for two seconds).
    @Test func readinessProbesOfAnAppNotReadyYetDoNotPileUpConnections() async throws {
        let appPort = freePort()
        let router = try FakeRouter()
        let sidecar = try ChildProcess(name: "sidecar", executable: Paths.executable("berth-sidecar"), arguments: [
            "--router", router.endpoint, "--events", "tcp://127.0.0.1:\(freePort())", "--port", String(appPort),
            "--readiness-path", "/status/503", "--start-timeout", "30s", "--log-level", "debug",
            "--", "/usr/bin/env", "python3", Paths.echoApp.path, String(appPort),
        ])
        defer { sidecar.stop() }
        try awaitPort(appPort)
        var counts: [Int] = []
        for _ in 0..<20 {
            try await Task.sleep(for: .milliseconds(100))
            counts.append(try Self.establishedConnections(toPort: appPort))
        }
        #expect(counts.contains { $0 >= 1 }, "the sidecar should be probing the app:\n\(sidecar.output)")
        #expect(counts.allSatisfy { $0 <= 2 }, "connections to the app, every 100 ms of probes: \(counts)")
    }

    /// Connections in ESTABLISHED state to 127.0.0.1:`port`, from /proc/net/tcp (the app's side not counted).
    static func establishedConnections(toPort port: Int) throws -> Int {
        // Read to the end: the kernel makes the table a page per read, and a single read stops at the first.
        let file = try #require(FileHandle(forReadingAtPath: "/proc/net/tcp"))
        defer { try? file.close() }
        let table = String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
        let remote = String(format: "0100007F:%04X", port)
        return table.split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[2] == remote && fields[3] == "01"
        }.count
    }

    @Test func anAppThatClosesKeptAliveConnectionsLosesNoRequest() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok })

            // Each /close leaves the sidecar holding a connection the app has closed; the next request must not
            // be lost on it, whatever its method.
            for round in 0..<20 {
                let (closing, _) = try await mesh.get("/a/close")
                #expect(closing.status == .ok, "round \(round)")
                let method: HTTPMethod = round.isMultiple(of: 2) ? .GET : .POST
                let (response, body) = try await mesh.send("/a/echo", method: method, body: ByteBuffer(string: "round \(round)"))
                #expect(response.status == .ok, "round \(round), \(method): \(String(buffer: body))")
            }
        }
    }

    /// A request an edge sent just before it heard the sidecar's DISCONNECT reaches the sidecar after the drain
    /// began, with nothing else in flight: it is served, because the sidecar gives edges a heartbeat interval to hear
    /// that it leaves before it calls the drain over.
    @Test func aRequestInTransitWhenTheDrainBeginsIsServed() async throws {
        try await withLoneSidecar(heartbeat: "2s") { edge, sidecar, identity in
            sidecar.signal(SIGTERM)
            let leaving = try await edge.receive { if case .disconnect = $0 { true } else { false } }
            #expect(leaving != nil, "no DISCONNECT to the edge after SIGTERM:\n\(sidecar.output)")
            let request = Request(id: 7, target: Target(className: "ContainerA"), method: "POST", path: "/echo", timeoutMilliseconds: 5_000)
            try edge.send(.request(request), body: [Frame("in transit")], to: identity)

            let answer = try await edge.receive { if case .response(let response) = $0, response.id == 7 { true } else { false } }
            let (envelope, frames) = try #require(answer, "the request in transit was not answered:\n\(sidecar.output)")
            guard case .response(let response) = envelope else { Issue.record("not a response"); return }
            #expect(response.status == 200, "\(response)\n\(sidecar.output)")
            #expect(String(decoding: frames.dropFirst(2).flatMap(\.bytes), as: UTF8.self).contains("\"bodyLength\": 10"))
            #expect(await sidecar.waitForExit(timeout: .seconds(5)) == 0, "\(sidecar.output)")
        }
    }

    /// A drain waits for the requests in flight without spinning.
    @Test func aDrainWithoutTheRoutersAnswerWaitsQuietly() async throws {
        try await withLoneSidecar(heartbeat: "200ms") { edge, sidecar, identity in
            let request = Request(id: 8, target: Target(className: "ContainerA"), method: "GET", path: "/slow/2000", timeoutMilliseconds: 5_000)
            try edge.send(.request(request), to: identity)
            // The sidecar holds the request once the answer to a heartbeat counts it.
            try edge.send(.heartbeat(Heartbeat()), to: identity)
            let holding = try await edge.receive(timeout: .seconds(5)) { if case .heartbeat(let beat) = $0, beat.inFlight == 1 { true } else { false } }
            #expect(holding != nil, "no heartbeat counted the request:\n\(sidecar.output)")
            sidecar.signal(SIGTERM)
            let cpuBefore = sidecar.cpuTime
            let answer = try await edge.receive(timeout: .seconds(5)) { if case .response(let response) = $0, response.id == 8 { true } else { false } }
            let cpuUsed = sidecar.cpuTime - cpuBefore
            #expect(answer != nil, "the request in flight was not answered:\n\(sidecar.output)")
            #expect(cpuUsed < .milliseconds(500), "the sidecar used \(cpuUsed) of CPU waiting ~2 s for one request")
            #expect(await sidecar.waitForExit(timeout: .seconds(5)) == 0, "\(sidecar.output)")
        }
    }

    @Test func sigtermDrainsInFlightRequestsThenExitsZero() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok })

            async let throughSidecar = mesh.send("/a/slow/800", method: .POST, body: ByteBuffer(string: "x"))
            try await Task.sleep(for: .milliseconds(200))
            mesh.instance("a-0")?.sidecar?.signal(SIGTERM)
            let (response, body) = try await throughSidecar
            #expect(response.status == .ok, "the request in flight should finish: \(String(buffer: body))\n\(mesh.logs)")
            #expect(await mesh.instance("a-0")?.sidecar?.waitForExit(timeout: .seconds(5)) == 0)

            mesh.edge?.signal(SIGTERM)
            #expect(await mesh.edge?.waitForExit(timeout: .seconds(5)) == 0)
            mesh.router?.signal(SIGTERM)
            #expect(await mesh.router?.waitForExit(timeout: .seconds(5)) == 0)
        }
    }
}
