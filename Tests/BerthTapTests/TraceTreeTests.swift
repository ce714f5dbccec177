import BerthTap
import BerthWire
import Testing

/// `berth tap --trace`: events in, the tree their span ids make out.
@Suite struct TraceTreeTests {
    static let trace = "4bf92f3577b34da6a3ce929d0e0e4736"

    /// A span that started at `start` µs and took `took` µs.
    func span(_ id: String, parent: String, start: UInt64, took: UInt64, path: String = "/", trace: String = trace) -> TrafficEvent {
        TrafficEvent(
            timeMicroseconds: 1_000_000 + start + took, requestID: 1, traceID: trace, source: Endpoint(className: "edge", instanceID: "main"),
            destination: Endpoint(className: "ContainerA", instanceID: "a-0"), method: "GET", path: path, status: 200, bytesIn: 0,
            bytesOut: 0, latencyMicroseconds: took, kind: .edge, spanID: id, parentSpanID: parent
        )
    }

    @Test func childrenFollowTheirParentInTheOrderTheyStarted() {
        var tree = TraceTree(traceID: Self.trace)
        // Arrival order is end order: the sidecars first, the root last.
        for event in [
            span("000000000000000b", parent: "000000000000000a", start: 500, took: 300, path: "/second"),
            span("00000000000000a1", parent: "000000000000000a", start: 100, took: 200, path: "/first"),
            span("00000000000000a2", parent: "00000000000000a1", start: 150, took: 100, path: "/first/app"),
            span("000000000000000a", parent: "00f067aa0ba902b7", start: 0, took: 1_000, path: "/send"),
        ] { tree.add(event) }
        let kept = tree.add(span("0000000000000001", parent: "", start: 0, took: 1, trace: "other"))
        #expect(!kept, "another trace's event is not kept")
        #expect(tree.lines.map(\.event.path) == ["/send", "/first", "/first/app", "/second"])
        #expect(tree.lines.map(\.depth) == [0, 1, 2, 1])

        let text = tree.render(EventFormatter(colour: false)).split(separator: "\n")
        #expect(text.first == "trace \(Self.trace): 4 spans, 1.00 ms")
        #expect(text[1].hasPrefix("edge ") && text[1].hasSuffix("+0.00 ms span 000000000000000a"), "\(text[1])")
        #expect(text[2].hasPrefix("├─ ") && text[2].contains("/first ") && text[2].hasSuffix("+0.10 ms span 00000000000000a1"), "\(text[2])")
        #expect(text[3].hasPrefix("│  └─ ") && text[3].contains("/first/app"), "\(text[3])")
        #expect(text[4].hasPrefix("└─ ") && text[4].contains("/second"), "\(text[4])")
    }

    @Test func aSpanWhoseParentIsMissingIsARootAndARepeatedSpanIsNotFollowedTwice() {
        var tree = TraceTree(traceID: Self.trace)
        tree.add(span("00000000000000a1", parent: "0000000000000009", start: 10, took: 5))
        tree.add(span("00000000000000a2", parent: "00000000000000a2", start: 0, took: 5))
        tree.add(span("00000000000000a3", parent: "00000000000000a4", start: 20, took: 5))
        tree.add(span("00000000000000a4", parent: "00000000000000a3", start: 30, took: 5))
        // a1's parent was never published; a2 names itself; a3 and a4 name each other: none may hang or vanish.
        let lines = tree.lines
        #expect(lines.map(\.event.spanID) == ["00000000000000a2", "00000000000000a1", "00000000000000a3", "00000000000000a4"])
        #expect(lines.map(\.depth) == [0, 0, 0, 1])
    }

    @Test func egressCallsOutOfTheMeshAreCountedForTheCallerOnly() {
        var stats = TrafficStats()
        let a = Endpoint(className: "ContainerA", instanceID: "a-0")
        func egress(to destination: Endpoint) -> TrafficEvent {
            TrafficEvent(timeMicroseconds: 1, requestID: 1, source: a, destination: destination, method: "GET", path: "/", status: 200,
                         bytesIn: 0, bytesOut: 0, latencyMicroseconds: 1, kind: .egress)
        }
        stats.record(egress(to: Endpoint(className: EventNames.internetClass, instanceID: "example.com:80")))
        stats.record(egress(to: Endpoint(className: "ContainerB", instanceID: "b-0")))
        #expect(stats.rows.map(\.name.description) == ["ContainerA/a-0"])
        #expect(stats.rows.first?.sent == 1, "the call into the mesh is counted from B's sidecar event")
        #expect(stats.callRows.map { "\($0.call.from) → \($0.call.to): \($0.count)" } == ["ContainerA/a-0 → internet/example.com:80: 1"])
    }

    @Test func aClientsRequestToAWorkerIsCountedAsReceivedByTheEdge() {
        var stats = TrafficStats()
        stats.record(TrafficEvent(
            timeMicroseconds: 1, requestID: 1, source: Endpoint(className: EventNames.clientClass), destination: Endpoint(className: "edge", instanceID: "main"),
            method: "GET", path: "/send", status: 502, bytesIn: 0, bytesOut: 0, latencyMicroseconds: 1, kind: .edge
        ))
        #expect(stats.rows.map(\.name.description) == ["edge/main"])
        #expect(stats.rows.first?.received == 1 && stats.rows.first?.errors == 1 && stats.rows.first?.sent == 0)
    }
}
