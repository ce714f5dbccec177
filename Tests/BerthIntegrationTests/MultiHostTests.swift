import AsyncHTTPClient
import BerthBus
import BerthLink
import BerthWire
import BerthTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// A mesh spread over three network namespaces that act as machines (scripts/hosts.sh), with CURVE on every link:
/// the demo's relay, `berth ps` from another host, strangers refused, and a host's link cut and restored under load.
@Suite(.serialized, .enabled(if: geteuid() == 0, "network namespaces need root"))
struct MultiHostTests {
    /// A multi-host compose file with its own name and keys folder, started on the three namespaces.
    final class Mesh: @unchecked Sendable {
        let name = "mh-\(UUID().uuidString.prefix(8).lowercased())"
        let folder: URL
        var file: String { folder.appendingPathComponent("mesh.yaml").path }
        var keys: String { folder.appendingPathComponent("keys").path }
        let edge = "http://10.77.0.1:8787"

        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let root = Paths.packageRoot.path
            try """
                name: \(name)
                hosts: { h1: 10.77.0.1, h2: 10.77.0.2, h3: 10.77.0.3 }
                security: { keys: \(keys) }
                router: { host: h1, heartbeat: 300ms }
                edge:
                  host: h1
                  listen: 0.0.0.0:8787
                  command: [demo-edge]
                  routes:
                    - { path: /a/, container: ContainerA }
                    - { path: /b/, container: ContainerB }
                containers:
                  ContainerA:
                    hosts: [h2, h3]
                    command: [demo-container-a]
                    port: 8080
                    instances: 2
                    readiness: { path: /health }
                  ContainerB:
                    hosts: [h3]
                    command: ["python3", "\(root)/Compose/apps/container-b/app.py"]
                    port: 3000
                    instances: 2
                    readiness: { path: /health }
                """.write(toFile: file, atomically: true, encoding: .utf8)
        }

        /// `berth ARGS` run on `host`.
        func berth(on host: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
            let process = try ChildProcess(
                name: "berth-\(host)-\(arguments.first ?? "")", executable: URL(fileURLWithPath: "/usr/sbin/ip"),
                arguments: ["netns", "exec", "berth-\(host)", Paths.executable("berth").path] + arguments
            )
            let status = await process.waitForExit(timeout: .seconds(90)) ?? -1
            return (status, process.output)
        }

        func up() async throws {
            for host in ["h1", "h2", "h3"] {
                let (status, output) = try await berth(on: host, ["up", "-d", "-f", file])
                try #require(status == 0, "berth up on \(host) failed (\(status)):\n\(output)")
            }
        }

        func down() async {
            for host in ["h3", "h2", "h1"] { _ = try? await berth(on: host, ["down", "-f", file]) }
            for host in ["h1", "h2", "h3"] {
                try? FileManager.default.removeItem(atPath: "\(ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"] ?? "/tmp")/berth-\(getuid())/\(name)@\(host)")
            }
            try? FileManager.default.removeItem(at: folder)
        }

        func log(_ service: String, on host: String) -> String {
            let path = "\(ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"] ?? "/tmp")/berth-\(getuid())/\(name)@\(host)/logs/\(service).log"
            return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        }

        /// The security of a client with the mesh's own `client` key.
        func client() throws -> BusSecurity {
            try BusSecurity.load(keyFile: keys + "/client.key_secret", authorizedFolder: keys)
        }

        func directory() throws -> [Ready] {
            DirectoryQuery.fetch(routers: ["tcp://10.77.0.1:7700"], security: try client(), timeout: .seconds(2))?.directory.instances ?? []
        }

        func get(_ path: String, timeout: Duration = .seconds(10)) async throws -> (status: UInt, body: String) {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: edge + path), timeout: .seconds(timeout.components.seconds))
            let body = try await response.body.collect(upTo: 1 << 20)
            return (response.status.code, String(buffer: body))
        }
    }

    static func hosts(_ verb: String) throws {
        let process = Process()
        process.executableURL = Paths.packageRoot.appendingPathComponent("scripts/hosts.sh")
        process.arguments = [verb]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "scripts/hosts.sh \(verb) failed")
    }

    static func withMesh(_ body: (Mesh) async throws -> Void) async throws {
        try hosts("up")
        let mesh = try Mesh()
        do {
            try await mesh.up()
            try await body(mesh)
        } catch {
            await mesh.down()
            try? hosts("down")
            throw error
        }
        await mesh.down()
        try hosts("down")
    }

    @Test func theDemoRelaysAcrossHostsAndPsOnAnotherHostShowsEveryHost() async throws {
        try await Self.withMesh { mesh in
            let (status, body) = try await mesh.get("/send")
            #expect(status == 200, "\(body)")
            #expect(body.contains("\"from\": \"ContainerB\"") && body.contains("ContainerA"), "\(body)")

            // Container to container across hosts: A (on h2 or h3) posts to B (on h3) through its own sidecar.
            let (egressStatus, egressBody) = try await mesh.get("/a/send-to-b")
            #expect(egressStatus == 200 && egressBody.contains("ContainerB"), "\(egressBody)")

            // A subscriber in another language reads the certificates berth up wrote (pyzmq's format) and the stream.
            let python = try ChildProcess(name: "python-curve", executable: URL(fileURLWithPath: "/usr/bin/python3"), arguments: ["-c", """
                import sys, zmq, zmq.auth
                public, secret = zmq.auth.load_certificate(sys.argv[1] + "/client.key_secret")
                server, _ = zmq.auth.load_certificate(sys.argv[1] + "/router.key")
                socket = zmq.Context().socket(zmq.SUB)
                socket.curve_publickey, socket.curve_secretkey, socket.curve_serverkey = public, secret, server
                socket.setsockopt(zmq.SUBSCRIBE, b"traffic.")
                socket.connect("tcp://10.77.0.1:7703")
                print("subscribed", flush=True)
                print(socket.recv_multipart()[0].decode(), flush=True)
                """, mesh.keys])
            defer { python.stop() }
            var heard = false
            for _ in 0..<50 where !heard {
                _ = try? await mesh.get("/a/get-payload")
                try await Task.sleep(for: .milliseconds(100))
                heard = python.output.contains("traffic.")
            }
            #expect(heard, "pyzmq with the client key heard no traffic: \(python.output)")

            let (psStatus, ps) = try await mesh.berth(on: "h2", ["ps", "-f", mesh.file])
            #expect(psStatus == 0, "\(ps)")
            for row in ["h1    router", "h1    edge", "h2    ContainerA  a-0", "h3    ContainerA  a-1", "h3    ContainerB  b-0", "h3    ContainerB  b-1"] {
                #expect(ps.contains(row), "berth ps on h2 lacks '\(row)':\n\(ps)")
            }
            #expect(ps.contains("answers") && ps.contains("healthy") && ps.contains("listening"), "\(ps)")
            #expect(ps.contains("tcp://10.77.0.3:"), "sidecars on h3 bind h3's address:\n\(ps)")
        }
    }

    /// Strangers: a key the mesh does not list, and no CURVE at all. Each is refused by the router (as a sidecar
    /// registering), by a sidecar (as an edge sending a request) and by the event stream (as a subscriber).
    @Test(arguments: ["unlisted key", "no CURVE"])
    func aStrangerCannotRegisterSendOrSubscribe(_ stranger: String) async throws {
        try await Self.withMesh { mesh in
            let strangerKeys = mesh.folder.appendingPathComponent("stranger").path
            try CurveCertificate.write(CurveKeyPair.generate(), folder: strangerKeys, name: "me")
            try FileManager.default.copyItem(atPath: mesh.keys + "/router.key", toPath: strangerKeys + "/router.key")
            let security = stranger == "no CURVE" ? nil : try BusSecurity.load(keyFile: strangerKeys + "/me.key_secret", authorizedFolder: strangerKeys)
            let sidecarA = try #require(try mesh.directory().first { $0.instanceID == "a-0" })

            // A sidecar of its own, on h2, with the stranger's keys.
            var arguments = ["netns", "exec", "berth-h2", Paths.executable("berth-sidecar").path,
                             "--router", "tcp://10.77.0.1:7701", "--events", "tcp://10.77.0.1:7702", "--endpoint", "tcp://10.77.0.2:*",
                             "--class", "ContainerA", "--instance", "intruder", "--port", "18080", "--heartbeat", "300ms"]
            if security != nil { arguments += ["--curve-key", strangerKeys + "/me.key_secret", "--curve-authorized", strangerKeys] }
            let intruder = try ChildProcess(name: "intruder", executable: URL(fileURLWithPath: "/usr/sbin/ip"),
                                            arguments: arguments + ["--", Paths.executable("demo-container-a").path])
            defer { intruder.stop() }

            // As an edge: a request straight to a-0's sidecar, and as a subscriber: the event stream.
            let context = Context()
            var edgeOptions = SocketOptions()
            edgeOptions.curve = security.map { .client($0.keys, serverKey: sidecarA.curvePublicKey) }
            let edge = try Socket(.dealer, options: edgeOptions, context: context)
            let edgeMonitor = try edge.monitor(events: SocketEvent.handshakeFailures | SocketEvent.handshakeSucceeded, context: context)
            try edge.connect(sidecarA.endpoint)
            let request = Request(id: 1, target: Target(className: "ContainerA"), method: "GET", path: "/get-payload")
            _ = try edge.send([Frame(Envelope.request(request).encoded())])
            var subscriberOptions = SocketOptions()
            subscriberOptions.subscriptions = [""]
            subscriberOptions.curve = security?.toRouter
            let subscriber = try Socket(.sub, options: subscriberOptions, context: context)
            let subscriberMonitor = try subscriber.monitor(events: SocketEvent.handshakeFailures | SocketEvent.handshakeSucceeded, context: context)
            try subscriber.connect("tcp://10.77.0.1:7703")

            for (what, monitor) in [("the sidecar", edgeMonitor), ("the event stream", subscriberMonitor)] {
                let event = try #require(try monitor.receive(within: 5).flatMap(SocketEvent.init), "\(what) said nothing")
                #expect(event.handshakeFailure != nil, "\(what) let a stranger (\(stranger)) in: \(event)")
            }
            // Traffic flows meanwhile; none of it reaches the stranger, and the stranger's request got no answer.
            for _ in 0..<5 { #expect(try await mesh.get("/a/get-payload").status == 200) }
            #expect(try subscriber.receive(within: 1) == nil)
            #expect(try edge.receive(within: 0.5) == nil)
            // The intruder has had 10 heartbeats to register.
            try await Task.sleep(for: .seconds(3))
            let live = try mesh.directory().map(\.instanceID)
            #expect(!live.contains("intruder") && live.contains("a-0"), "directory: \(live)")
            if security != nil {
                #expect(mesh.log("router", on: "h1").contains("refused a peer"), "the router does not say it refused the intruder")
            }
        }
    }

    /// h2's link goes down under load: requests go on to h3 with none hung, and h2's instance rejoins when it is back.
    @Test func aHostLostUnderLoadHangsNoRequestAndRejoins() async throws {
        try await Self.withMesh { mesh in
            let record = Record()
            let deadline = ContinuousClock.now + .seconds(8)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        while ContinuousClock.now < deadline {
                            let started = ContinuousClock.now
                            let afterCut = record.cut.load(ordering: .acquiring)
                            var status: UInt = 0
                            var instance = ""
                            do {
                                let (code, body) = try await mesh.get("/a/get-payload", timeout: .seconds(15))
                                status = code
                                instance = body.contains("\"a-1\"") ? "a-1" : body.contains("\"a-0\"") ? "a-0" : "?"
                            } catch {}
                            let seconds = Double(started.duration(to: .now).components.attoseconds) / 1e18 + Double(started.duration(to: .now).components.seconds)
                            record.outcomes.withLock { $0.append((status, instance, afterCut, seconds)) }
                        }
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(2))
                    try Self.link("berth-h2", up: false)
                    record.cut.store(true, ordering: .releasing)
                }
                try await group.waitForAll()
            }
            let all = record.outcomes.withLock { $0 }
            let failed = all.filter { $0.status != 200 }
            print("host lost under load: \(all.count) requests, \(failed.count) failed, slowest \(all.map(\.seconds).max() ?? 0) s")
            #expect(all.count > 100, "only \(all.count) requests")
            #expect(all.allSatisfy { $0.seconds < 15 }, "a request hung: \(all.map(\.seconds).max() ?? 0) s")
            #expect(failed.count <= all.count / 100, "\(failed.count) of \(all.count) failed")
            // After the heartbeat window (3 × 300 ms, and a margin), every request goes to h3.
            let late = all.suffix(50)
            #expect(late.allSatisfy { $0.status == 200 && $0.instance == "a-1" }, "late: \(late.map(\.instance))")

            try Self.link("berth-h2", up: true)
            var rejoined = false
            let until = ContinuousClock.now + .seconds(20)
            while !rejoined && ContinuousClock.now < until {
                rejoined = (try? await mesh.get("/a/get-payload", timeout: .seconds(5)))?.body.contains("\"a-0\"") == true
                if !rejoined { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(rejoined, "a-0 on h2 never served again; directory: \((try? mesh.directory().map(\.instanceID)) ?? [])")
        }
    }

    final class Record: Sendable {
        let cut = Atomic<Bool>(false)
        let outcomes = Mutex<[(status: UInt, instance: String, afterCut: Bool, seconds: Double)]>([])
    }

    static func link(_ name: String, up: Bool) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["link", "set", name, up ? "up" : "down"]
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
    }
}
