import AsyncHTTPClient
import BerthTap
import BerthWire
import Foundation
import NIOHTTP1
import Synchronization
import Testing

/// W3C Trace Context through the demo's Worker: `/send` fetches from ContainerA and posts to ContainerB, and one
/// trace covers the client's request, both sub-requests and what each app received.
@Suite(.serialized)
struct TracingTests {
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let clientSpan = "00f067aa0ba902b7"

    /// A router, ContainerA/a-0 and ContainerB/b-0 (echo apps) and the demo's edge, or `edge`.
    static func start(_ mesh: TestMesh, edge: String = "demo-edge") async throws {
        try mesh.startRouter()
        try mesh.addInstance(className: "ContainerA", id: "a-0")
        try mesh.addInstance(className: "ContainerB", id: "b-0")
        try mesh.startEdge(routes: ["/a/=ContainerA", "/b/=ContainerB"], executable: edge)
        let ready = edge == "demo-edge" ? "/send" : "/a/instance"
        guard try await mesh.waitUntil(ready, accept: { response, _ in response.status == .ok }) else { throw MeshNotUp(logs: mesh.logs) }
    }

    /// The events of one `/send` sent with `headers`, once all five are in: the client's request, two sub-requests
    /// and the two sidecars' exchanges with their apps; and the answer's body (B's echo of what it received). Until
    /// the subscription is through nothing is published, so it sends again every 200 ms, each time with its own
    /// `x-request-id`, which every event of the exchange carries.
    static func send(_ mesh: TestMesh, headers: [(String, String)]) async throws -> ([TrafficEvent], String) {
        let bodies = Bodies()
        return try await EventStreamTests.withSubscription(mesh, topics: ["traffic."]) { items in
            let sending = Task {
                for index in 0..<100 {
                    let (response, body) = try await mesh.get("/send", headers: headers + [("x-request-id", "send-\(index)")])
                    #expect(response.status == .ok, "\(body)")
                    bodies.mutex.withLock { $0["send-\(index)"] = body }
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            defer { sending.cancel() }
            var byRequest: [String: [TrafficEvent]] = [:]
            for try await item in items {
                guard case .event(let tapped) = item, case .traffic(let event) = tapped.event, event.xRequestID.hasPrefix("send-") else { continue }
                byRequest[event.xRequestID, default: []].append(event)
                let events = byRequest[event.xRequestID]!
                guard events.count == 5 else { continue }
                // The edge publishes the client's request just before the answer goes out.
                for _ in 0..<100 {
                    if let body = bodies.mutex.withLock({ $0[event.xRequestID] }) { return (events, body) }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            throw MeshNotUp(logs: mesh.logs)
        }
    }

    /// Checks the tree of `/send`'s five events; returns the span ContainerB's app got.
    @discardableResult
    static func checkTree(_ events: [TrafficEvent], clientSpan: String?) throws -> TrafficEvent {
        let traceIDs = Set(events.map(\.traceID))
        #expect(traceIDs.count == 1 && TraceParent.isTraceID(traceIDs.first!), "one trace: \(traceIDs)")
        #expect(Set(events.map(\.spanID)).count == 5 && events.allSatisfy { TraceParent.isSpanID($0.spanID) }, "\(events)")
        let root = try #require(events.first { $0.source.className == "client" })
        #expect(root.kind == .edge && root.path == "/send" && root.status == 200)
        #expect(root.parentSpanID == (clientSpan ?? ""), "the client's span is the root's parent: \(root)")
        let calls = events.filter { $0.kind == .edge && $0.spanID != root.spanID }
        #expect(calls.count == 2 && calls.allSatisfy { $0.parentSpanID == root.spanID }, "both sub-requests are the root's children: \(calls)")
        let served = events.filter { $0.kind == .sidecar }
        #expect(served.count == 2)
        for call in calls {
            let child = served.filter { $0.parentSpanID == call.spanID }
            #expect(child.count == 1 && child.first?.path == call.path, "\(call.path): the sidecar's span is the call's child: \(served)")
        }
        return try #require(served.first { $0.destination.className == "ContainerB" })
    }

    @Test func theClientsTraceparentIsContinuedAcrossTheWorkerAndBothSubRequests() async throws {
        try await withMesh { mesh in
            try await Self.start(mesh)
            let (events, body) = try await Self.send(mesh, headers: [("traceparent", "00-\(Self.traceID)-\(Self.clientSpan)-01")])
            let atB = try Self.checkTree(events, clientSpan: Self.clientSpan)
            #expect(events.first?.traceID == Self.traceID)
            // The app received the trace, with the span of its sidecar's exchange as its parent.
            let echoed = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], "\(body)")
            let headers = (echoed["headers"] as? [[String]] ?? []).filter { $0.count == 2 }
            let traceparent = headers.first { $0[0] == "traceparent" }?[1]
            #expect(traceparent == "00-\(Self.traceID)-\(atB.spanID)-01", "\(headers)")
            #expect(headers.contains { $0 == ["x-request-id", events[0].xRequestID] }, "x-request-id reaches the apps: \(headers)")
        }
    }

    /// `streaming-edge`'s Worker hands `/a/...` to its routes from its task as it came, its traceparent included:
    /// the sub-request is still the child of the Worker's span, not its sibling.
    @Test func aWorkerThatForwardsItsRequestAsItCameMakesAChildSpan() async throws {
        try await withMesh { mesh in
            try await Self.start(mesh, edge: "streaming-edge")
            let events = try await EventStreamTests.withSubscription(mesh, topics: ["traffic."]) { items in
                let sending = Task {
                    for index in 0..<100 {
                        _ = try await mesh.get("/a/instance", headers: [
                            ("traceparent", "00-\(Self.traceID)-\(Self.clientSpan)-01"), ("x-request-id", "forward-\(index)"),
                        ])
                        try await Task.sleep(for: .milliseconds(200))
                    }
                }
                defer { sending.cancel() }
                var byRequest: [String: [TrafficEvent]] = [:]
                for try await item in items {
                    guard case .event(let tapped) = item, case .traffic(let event) = tapped.event, event.xRequestID.hasPrefix("forward-") else { continue }
                    byRequest[event.xRequestID, default: []].append(event)
                    if byRequest[event.xRequestID]!.count == 3 { return byRequest[event.xRequestID]! }
                }
                throw MeshNotUp(logs: mesh.logs)
            }
            let root = try #require(events.first { $0.source.className == "client" }, "\(events)")
            let call = try #require(events.first { $0.kind == .edge && $0.source.className == "edge" }, "\(events)")
            let served = try #require(events.first { $0.kind == .sidecar }, "\(events)")
            #expect(root.parentSpanID == Self.clientSpan)
            #expect(call.parentSpanID == root.spanID, "the forwarded request is the Worker's span's child: \(events)")
            #expect(served.parentSpanID == call.spanID)
        }
    }

    @Test func aRequestWithoutTraceparentStartsOneTraceForAllItsHops() async throws {
        try await withMesh { mesh in
            try await Self.start(mesh)
            let (events, body) = try await Self.send(mesh, headers: [])
            try Self.checkTree(events, clientSpan: nil)
            #expect(body.contains("traceparent"), "\(body)")
        }
    }

    @Test func aMalformedTraceparentStartsANewTrace() async throws {
        try await withMesh { mesh in
            try await Self.start(mesh)
            let (events, _) = try await Self.send(mesh, headers: [("traceparent", "00-\(Self.traceID.uppercased())-\(Self.clientSpan)-01")])
            try Self.checkTree(events, clientSpan: nil)
            #expect(events.first?.traceID != Self.traceID)
        }
    }

    /// `berth tap --trace` and a subscriber written in Python from Proto/berth.proto alone see the same tree.
    @Test func theTapsTreeMatchesWhatAPythonSubscriberDecodes() async throws {
        let generated = try await PythonSubscriberTests.generatePython()
        defer { try? FileManager.default.removeItem(at: generated) }

        try await withMesh { mesh in
            try await Self.start(mesh)
            let tap = try ChildProcess(name: "tap", executable: Paths.executable("berth"), arguments: [
                "tap", "--trace", Self.traceID, "--events-out", mesh.eventsOut, "--settle", "2s",
            ])
            defer { tap.stop() }
            let subscriber = try ChildProcess(name: "python-subscriber", executable: PythonSubscriberTests.python, arguments: [
                Paths.packageRoot.appendingPathComponent("Tests/BerthIntegrationTests/Apps/subscriber.py").path, mesh.eventsOut, generated.path,
            ])
            defer { subscriber.stop() }
            // Both subscribe to everything: once the Python one (started second) gets events, so does the tap.
            let subscribed = try await ComposeUpTests.waitFor(.seconds(15)) {
                _ = try? await mesh.get("/a/instance")
                return subscriber.output.contains("\"traffic\"")
            }
            #expect(subscribed, "\(subscriber.output)")
            let (response, body) = try await mesh.get("/send", headers: [("traceparent", "00-\(Self.traceID)-\(Self.clientSpan)-01")])
            #expect(response.status == .ok, "\(body)")
            #expect(await tap.waitForExit(timeout: .seconds(15)) == 0, "tap: \(tap.output)")

            // The tree as the tap drew it: each line's span, its parent from the indentation.
            var tapParents: [String: String?] = [:]
            var stack: [String] = []
            for line in tap.output.split(separator: "\n") where line.contains(" span ") {
                let span = String(line.suffix(16))
                let depth = Self.depth(of: line)
                stack = Array(stack.prefix(depth))
                tapParents[span] = stack.last
                stack.append(span)
            }
            let python = PythonSubscriberTests.fromPython(subscriber.output).filter {
                $0.kind == "traffic" && $0.fields["trace_id"] as? String == Self.traceID
            }
            let spans = Set(python.compactMap { $0.fields["span_id"] as? String })
            var pythonParents: [String: String?] = [:]
            for event in python {
                guard let span = event.fields["span_id"] as? String else { continue }
                let parent = event.fields["parent_span_id"] as? String
                pythonParents[span] = parent.flatMap { spans.contains($0) ? $0 : nil }
            }
            #expect(pythonParents.count == 5, "\(python.map(\.fields))")
            #expect(tapParents == pythonParents, "tap:\n\(tap.output)\npython: \(pythonParents)")
            #expect(tap.output.hasPrefix("trace \(Self.traceID): 5 spans"), "\(tap.output)")
        }
    }

    /// The answers so far by x-request-id, shared by the task that sends and the one that reads events.
    final class Bodies: Sendable {
        let mutex = Mutex<[String: String]>([:])
    }

    /// `--otlp-endpoint` on the edge and the sidecars: a small collector gets every span of `/send`, with its parent.
    @Test func theSpansReachAnOTLPCollector() async throws {
        let port = freePort()
        let collector = try ChildProcess(name: "otlp", executable: PythonSubscriberTests.python, arguments: [
            Paths.packageRoot.appendingPathComponent("Tests/BerthIntegrationTests/Apps/otlp_receiver.py").path, String(port),
        ])
        defer { collector.stop() }
        try awaitPort(port)
        try await withMesh { mesh in
            let otlp = ["--otlp-endpoint", "http://127.0.0.1:\(port)"]
            mesh.sidecarArguments = otlp
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.addInstance(className: "ContainerB", id: "b-0")
            try mesh.startEdge(routes: ["/a/=ContainerA", "/b/=ContainerB"], arguments: otlp, executable: "demo-edge")
            guard try await mesh.waitUntil("/send", accept: { response, _ in response.status == .ok }) else { throw MeshNotUp(logs: mesh.logs) }
            let (response, body) = try await mesh.get("/send", headers: [("traceparent", "00-\(Self.traceID)-\(Self.clientSpan)-01")])
            #expect(response.status == .ok, "\(body)")

            func spans() -> [[String: Any]] {
                PythonSubscriberTests.lines(collector.output).filter { $0["traceId"] as? String == Self.traceID }
            }
            let all = try await ComposeUpTests.waitFor(.seconds(10)) { spans().count >= 5 }
            let got = spans()
            #expect(all && got.count == 5, "\(collector.output)")
            let parents = Dictionary(got.compactMap { span in (span["spanId"] as? String).map { ($0, span["parentSpanId"] as? String ?? "") } }) { $1 }
            let root = try #require(got.first { $0["parentSpanId"] as? String == Self.clientSpan }, "the root continues the client's span: \(got)")
            let rootID = try #require(root["spanId"] as? String)
            #expect(root["service"] as? String == "demo-edge" && root["kind"] as? Int == 2, "\(root)")
            let calls = parents.filter { $0.value == rootID }.map(\.key)
            #expect(calls.count == 2, "two sub-requests under the root: \(parents)")
            for call in calls {
                #expect(parents.filter { $0.value == call }.count == 1, "each call has its sidecar's span under it: \(parents)")
            }
            #expect(Set(got.compactMap { $0["service"] as? String }) == ["demo-edge", "berth-sidecar"])
            #expect(got.allSatisfy { ($0["start"] as? Int ?? 0) > 0 && ($0["end"] as? Int ?? 0) >= ($0["start"] as? Int ?? 0) })
        }
    }

    /// Depth in the tap's tree: the drawing before a line's text is three characters a level.
    static func depth(of line: Substring) -> Int {
        var depth = 0
        var rest = line[...]
        while let prefix = ["│  ", "   ", "├─ ", "└─ "].first(where: { rest.hasPrefix($0) }) {
            depth += 1
            rest = rest.dropFirst(prefix.count)
        }
        return depth
    }
}
