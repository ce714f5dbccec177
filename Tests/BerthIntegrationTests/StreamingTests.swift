import AsyncHTTPClient
import BerthTap
import BerthWire
import Foundation
import NIOHTTP1
import Testing

/// Bodies that stream through the mesh (issue 17): large downloads and uploads with flat memory, server-sent events
/// that reach the client while the answer is open, a slow reader that stops the app's writes, and failures that
/// stay explicit. Real clients (curl, raw sockets) against `stream_app.py`.
@Suite(.serialized)
struct StreamingTests {
    static let gibibyte = 1 << 30
    /// sha256 of the first GiB of the stream app's pattern (`stream_app.py --sha256 1073741824`).
    static let gibibyteSHA256 = "2c06ade942ee3f17a048dd1064b2fab046a4bb95386d8bb41b68dc6711ac2af3"
    /// What each Berth process may hold, resident, while a GiB streams through it.
    static let residentLimit = 40 << 20

    /// What a stream goes through at the edge: a declarative route; a Worker that leaves these paths to the routes
    /// (`demo-edge`, a `DirectWorker`); or a Worker that passes bodies on as they come (`streaming-edge`, whose Worker
    /// sends the same routes' requests from its task).
    enum Via: String, CaseIterable, Sendable {
        case route, directWorker, worker
    }

    /// A router, one instance of the stream app behind its sidecar, and an edge sending `/s/` to it.
    static func start(_ mesh: TestMesh, via: Via = .route, edgeArguments: [String] = []) async throws {
        try mesh.startRouter()
        try mesh.addInstance(className: "Streams", id: "s-0", script: Paths.streamApp)
        switch via {
        case .route: try mesh.startEdge(routes: ["/s/=Streams"], arguments: edgeArguments)
        case .directWorker: try mesh.startEdge(routes: ["/s/=Streams"], arguments: edgeArguments, executable: "demo-edge")
        case .worker: try mesh.startEdge(routes: ["/s/=Streams"], arguments: edgeArguments, executable: "streaming-edge")
        }
        guard try await mesh.waitUntil("/s/", accept: { response, _ in response.status == .ok }) else { throw MeshNotUp(logs: mesh.logs) }
    }

    /// The edge's and the sidecar's pids.
    static func berthProcesses(_ mesh: TestMesh) -> [(String, Int32)] {
        [("edge", mesh.edge!.pid), ("sidecar", mesh.instances[0].sidecar!.pid)]
    }

    /// Runs `command` with sh while sampling the resident memory of `processes`; returns its exit status, its output,
    /// and the most each process held.
    static func runWatchingMemory(_ command: String, of processes: [(String, Int32)]) async throws -> (Int32, String, [String: Int]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        var peaks: [String: Int] = [:]
        while process.isRunning {
            for (name, pid) in processes { peaks[name] = max(peaks[name] ?? 0, residentBytes(pid)) }
            try await Task.sleep(for: .milliseconds(100))
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, text, peaks)
    }

    /// VmRSS of `pid`, from /proc.
    static func residentBytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kilobytes << 10
    }

    @Test(arguments: Via.allCases) func aGibibyteDownloadStreamsWithFlatMemory(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            let (status, output, peaks) = try await Self.runWatchingMemory(
                "curl -sS --fail http://127.0.0.1:\(mesh.edgePort)/s/download/\(Self.gibibyte) | sha256sum", of: Self.berthProcesses(mesh)
            )
            #expect(status == 0, "\(output)")
            #expect(output.hasPrefix(Self.gibibyteSHA256), "\(output)")
            for (name, peak) in peaks { #expect(peak <= Self.residentLimit, "\(name) held \(peak >> 20) MiB resident") }
        }
    }

    /// curl sends a body it reads from a pipe chunked: the edge cannot know its length and streams it.
    @Test(arguments: Via.allCases) func aGibibyteUploadStreamsWithFlatMemory(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            let (status, output, peaks) = try await Self.runWatchingMemory(
                "python3 \(Paths.streamApp.path) --pattern \(Self.gibibyte) | curl -sS --fail -T - -X POST http://127.0.0.1:\(mesh.edgePort)/s/upload",
                of: Self.berthProcesses(mesh)
            )
            #expect(status == 0, "\(output)")
            #expect(output.contains("\"length\": \(Self.gibibyte)") && output.contains(Self.gibibyteSHA256), "\(output)")
            for (name, peak) in peaks { #expect(peak <= Self.residentLimit, "\(name) held \(peak >> 20) MiB resident") }
        }
    }

    /// A body with a Content-Length over the threshold streams too, and reaches the app whole.
    @Test(arguments: Via.allCases) func aLargeBodyWithALengthStreamsWhole(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("berth-upload-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: file) }
            let bytes = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
            try Data(bytes).write(to: file)
            let (status, output, _) = try await Self.runWatchingMemory(
                "curl -sS --fail --data-binary @\(file.path) http://127.0.0.1:\(mesh.edgePort)/s/upload; echo; sha256sum \(file.path)", of: []
            )
            #expect(status == 0, "\(output)")
            let lines = output.split(separator: "\n")
            let expected = lines.last.map { String($0.prefix(64)) } ?? "?"
            #expect(output.contains("\"length\": \(3 << 20)") && output.contains("\"sha256\": \"\(expected)\""), "\(output)")
        }
    }

    /// `--max-body`, when given, caps a body that streams: one announced over it is refused before any of it is read,
    /// and one that grows over it (chunked) is cut.
    @Test func maxBodyCapsStreamedBodiesWhenGiven() async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, edgeArguments: ["--max-body", "2000000"])
            let announced = try RawConnection(port: mesh.edgePort)
            announced.send("POST /s/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\n")
            let refused = try announced.answer()
            #expect(refused.status == 413, "\(refused.head)")
            #expect(refused.text.contains("over the 2000000-byte limit"), "\(refused.text)")
            let (status, output, _) = try await Self.runWatchingMemory(
                "python3 \(Paths.streamApp.path) --pattern 3000000 | curl -sS -T - -X POST -w '%{http_code}' http://127.0.0.1:\(mesh.edgePort)/s/upload",
                of: []
            )
            #expect(status == 0 || status == 55 || status == 56, "\(output)")
            #expect(!output.contains("\"length\": 3000000"), "the app got a body over the limit: \(output)")
        }
    }

    /// Each event reaches the client while the answer is still open: the app writes the next one only once the
    /// client, having read the last, asks for it (`/next`).
    @Test(arguments: Via.allCases) func serverSentEventsArriveWhileTheAnswerIsOpen(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            let events = try RawConnection(port: mesh.edgePort)
            events.send("GET /s/sse/3 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
            #expect(events.readsUntil("data: event 0\n\n"), "\(events.rest)")
            #expect(events.rest.lowercased().contains("transfer-encoding: chunked"), "\(events.rest)")
            for index in 1..<3 {
                #expect(!events.rest.contains("data: event \(index)"), "event \(index) came before it was asked for")
                let (next, _) = try await mesh.get("/s/next")
                #expect(next.status == .ok)
                #expect(events.readsUntil("data: event \(index)\n\n"), "event \(index): \(events.rest)")
            }
            #expect(events.readsUntil("\r\n0\r\n\r\n"), "the stream ends cleanly: \(events.rest)")
        }
    }

    /// A client that stops reading: the mesh holds a bounded window, the app's writes block, and memory stays flat.
    @Test(arguments: Via.allCases) func aSlowReaderBlocksTheAppsWrites(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            let reader = try RawConnection(port: mesh.edgePort)
            var size: Int32 = 64 << 10
            setsockopt(reader.fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            reader.send("GET /s/download/\(Self.gibibyte) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(reader.readsUntil("\r\n\r\n"))
            // The client reads nothing more; the app writes until every window and socket buffer on the way is full.
            var written = 0
            var settled = 0
            while settled < 5 {
                try await Task.sleep(for: .milliseconds(300))
                let (_, body) = try await mesh.get("/s/progress")
                let now = Int(body) ?? -1
                settled = now == written ? settled + 1 : 0
                written = now
            }
            #expect(written > 0 && written < 64 << 20, "the app wrote \(written >> 20) MiB to a client that read nothing")
            for (name, pid) in Self.berthProcesses(mesh) {
                let resident = Self.residentBytes(pid)
                #expect(resident <= Self.residentLimit, "\(name) holds \(resident >> 20) MiB resident")
            }
        }
    }

    /// A client that goes away mid-stream ends the app's exchange: the app sees its connection close.
    @Test(arguments: Via.allCases) func aClientLeavingMidStreamClosesTheAppsConnection(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            do {
                let client = try RawConnection(port: mesh.edgePort)
                client.send("GET /s/forever HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(client.readsUntil("tick 3\n"), "\(client.rest)")
            }
            // The connection is closed as `client` goes.
            let closed = try await mesh.waitUntil("/s/closed", accept: { _, body in body == "1" })
            #expect(closed, "the app's /forever never saw its connection close")
        }
    }

    /// What a subscriber saw of one long stream.
    struct SeenEvents: Sendable {
        var progress: TrafficEvent?
        var final: TrafficEvent?
    }

    /// Holds `/s/forever` open for 12 s at a time, again and again, until cancelled.
    static func keepStreaming(_ mesh: TestMesh) -> Task<Void, any Error> {
        Task {
            while !Task.isCancelled {
                let client = try RawConnection(port: mesh.edgePort)
                client.send("GET /s/forever HTTP/1.1\r\nHost: x\r\nx-request-id: long-stream\r\n\r\n")
                let started = ContinuousClock.now
                while started.duration(to: .now) < .seconds(12) && !Task.isCancelled {
                    _ = client.readAvailable()
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }
    }

    /// A long stream gets a progress event (at least every 10 s) with its bytes so far, then one event at its end,
    /// both marked as streamed.
    /// Through a Worker, the client's request to it gets them too.
    @Test(arguments: [Via.route, .worker]) func aLongStreamGetsProgressEventsThenOneAtItsEnd(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            let seen: SeenEvents = try await EventStreamTests.withSubscription(mesh, topics: ["traffic."], timeout: .seconds(40)) { items in
                // Subscriptions reach the publishers through the router: streams start again until events come.
                let streaming = Self.keepStreaming(mesh)
                defer { streaming.cancel() }
                var seen = SeenEvents()
                for try await item in items {
                    guard case .event(let tapped) = item, case .traffic(let event) = tapped.event else { continue }
                    guard event.xRequestID == "long-stream", event.kind == .edge,
                          via != .worker || event.source.className == EventNames.clientClass else { continue }
                    if event.inProgress {
                        if seen.progress == nil { seen.progress = event }
                    } else if seen.progress != nil {
                        seen.final = event
                        return seen
                    }
                }
                return seen
            }
            let during = try #require(seen.progress)
            #expect(during.streamed && during.bytesOut > 0 && during.latencyMicroseconds >= 10_000_000, "\(during)")
            let end = try #require(seen.final)
            #expect(end.streamed && !end.inProgress && end.bytesOut >= during.bytesOut, "\(end)")
        }
    }

    /// A sidecar killed mid-stream: the client's chunked body is cut (curl fails), never ended cleanly.
    @Test(arguments: Via.allCases) func aSidecarKilledMidStreamResetsTheClient(via: Via) async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, via: via)
            let curl = Process()
            curl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            curl.arguments = ["curl", "-sS", "-N", "http://127.0.0.1:\(mesh.edgePort)/s/forever"]
            let output = Pipe()
            curl.standardOutput = output
            curl.standardError = FileHandle.nullDevice
            try curl.run()
            var seen = Data()
            while !String(decoding: seen, as: UTF8.self).contains("tick 3") {
                seen.append(output.fileHandleForReading.availableData)
            }
            mesh.instances[0].sidecar!.stop()
            curl.waitUntilExit()
            // 18: transfer closed with outstanding read data; 56: failure receiving (connection reset).
            #expect([18, 56].contains(curl.terminationStatus), "curl ended with \(curl.terminationStatus)")
        }
    }
}
