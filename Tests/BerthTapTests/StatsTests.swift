import BerthTap
import BerthTestSupport
import BerthWire
import Testing

struct StatsTests {
    let edge = Endpoint(className: "edge", instanceID: "main")
    let a = Endpoint(className: "ContainerA", instanceID: "a-0", port: 8080)
    let b = Endpoint(className: "ContainerB", instanceID: "b-0", port: 3000)

    func event(
        _ kind: TrafficKind, from source: Endpoint, to destination: Endpoint, status: UInt32 = 200,
        in bytesIn: UInt64 = 0, out bytesOut: UInt64 = 0, latency: UInt64 = 10, error: MeshError? = nil
    ) -> TrafficEvent {
        TrafficEvent(
            timeMicroseconds: 1, requestID: 1, source: source, destination: destination, method: "GET", path: "/",
            status: status, bytesIn: bytesIn, bytesOut: bytesOut, latencyMicroseconds: latency, kind: kind, error: error
        )
    }

    func knownStats() -> TrafficStats {
        var stats = TrafficStats()
        // Three requests from the edge served by A, one of them failing in the app.
        stats.record(event(.sidecar, from: edge, to: a, in: 10, out: 100, latency: 30))
        stats.record(event(.sidecar, from: edge, to: a, in: 20, out: 200, latency: 10))
        stats.record(event(.sidecar, from: edge, to: a, status: 503, in: 30, out: 300, latency: 20))
        // A calls B.
        stats.record(event(.sidecar, from: a, to: b, in: 5, out: 7, latency: 50))
        // The edge's view: one answered, one that never reached a container.
        stats.record(event(.edge, from: edge, to: a, in: 10, out: 100, latency: 40))
        stats.record(event(
            .edge, from: edge, to: Endpoint(className: "ContainerA"), status: 0, latency: 60,
            error: MeshError(code: .noInstance, message: "no instance", component: "router")
        ))
        // Says neither side.
        stats.record(event(.unspecified, from: edge, to: a))
        return stats
    }

    @Test func countsBytesAndErrorsPerSide() throws {
        let stats = knownStats()
        #expect(stats.events == 7)
        #expect(stats.skipped == 1)
        let rows = stats.rows
        #expect(rows.map(\.name.description) == ["ContainerA/a-0", "ContainerB/b-0", "edge/main"])
        try #require(rows.count == 3)

        let (rowA, rowB, rowEdge) = (rows[0], rows[1], rows[2])
        #expect(rowA.received == 3)
        #expect(rowA.sent == 1)
        #expect(rowA.bytesIn == 60)
        #expect(rowA.bytesOut == 600)
        #expect(rowA.errors == 1)
        #expect(rowA.latency.count == 3)
        #expect(rowA.latency.percentile(0.5) == 20)
        #expect(rowA.latency.percentile(0.99) == 30)

        #expect(rowB.received == 1)
        #expect(rowB.sent == 0)
        #expect(rowB.bytesIn == 5)
        #expect(rowB.bytesOut == 7)
        #expect(rowB.errors == 0)

        #expect(rowEdge.sent == 2)
        #expect(rowEdge.received == 0)
        #expect(rowEdge.bytesOut == 10)
        #expect(rowEdge.bytesIn == 100)
        #expect(rowEdge.errors == 1)
        #expect(rowEdge.latency.percentile(0.5) == 40)
        #expect(rowEdge.latency.percentile(0.99) == 60)
    }

    /// A long stream's progress events count its bytes as they go, and its final event the request and the rest:
    /// nothing twice.
    @Test func aStreamsProgressEventsCountItsBytesOnce() throws {
        var stats = TrafficStats()
        func streamed(_ out: UInt64, inProgress: Bool) -> TrafficEvent {
            var event = event(.edge, from: edge, to: a, out: out)
            event.streamed = true
            event.inProgress = inProgress
            return event
        }
        stats.record(streamed(1_000, inProgress: true))
        #expect(stats.rows.first?.bytesIn == 1_000)
        #expect(stats.rows.first?.sent == 0, "a stream still going is not a request counted yet")
        stats.record(streamed(5_000, inProgress: true))
        stats.record(streamed(6_000, inProgress: false))
        let row = try #require(stats.rows.first)
        #expect(row.bytesIn == 6_000)
        #expect(row.sent == 1)
        #expect(row.latency.count == 1)
    }

    @Test func tableLinesUpItsColumns() {
        let table = StatsTable.render(knownStats())
        #expect(table == """
            CONTAINER       SENT  RECEIVED  BYTES OUT  BYTES IN  ERRORS      P50      P99
            ContainerA/a-0     1         3      600 B      60 B       1  0.02 ms  0.03 ms
            ContainerB/b-0     0         1        7 B       5 B       0  0.05 ms  0.05 ms
            edge/main          2         0       10 B     100 B       1  0.04 ms  0.06 ms

            CALLER             CALLED          CALLS  ERRORS
            ContainerA/a-0  →  ContainerB/b-0      1       0

            """)
    }

    @Test func emptyTableHasOnlyTheHeader() {
        #expect(StatsTable.render(TrafficStats()) == "CONTAINER  SENT  RECEIVED  BYTES OUT  BYTES IN  ERRORS  P50  P99\n")
    }
}

struct LatencyHistogramTests {
    @Test func emptyHasNoPercentiles() {
        #expect(LatencyHistogram().percentile(0.5) == nil)
    }

    @Test func smallValuesAreExact() {
        var histogram = LatencyHistogram()
        for value in (0..<64).reversed() { histogram.record(UInt64(value)) }
        #expect(histogram.percentile(0.5) == 31)
        #expect(histogram.percentile(0.99) == 63)
        #expect(histogram.percentile(0) == 0)
        #expect(histogram.percentile(1) == 63)
    }

    @Test func largeValuesAreWithinOnePercent() throws {
        var histogram = LatencyHistogram()
        var generator = SeededGenerator(seed: 42)
        for value in (1...100_000).shuffled(using: &generator) { histogram.record(UInt64(value)) }
        #expect(histogram.count == 100_000)
        for (fraction, exact) in [(0.5, 50_000.0), (0.9, 90_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let estimate = Double(try #require(histogram.percentile(fraction)))
            #expect(abs(estimate - exact) / exact < 0.01, "p\(fraction * 100): \(estimate) for \(exact)")
        }
        #expect(histogram.percentile(1) == 100_000)
        #expect(histogram.minimum == 1)
        #expect(histogram.maximum == 100_000)
    }

    @Test func hugeValuesDoNotTrap() {
        var histogram = LatencyHistogram()
        histogram.record(.max)
        histogram.record(0)
        #expect(histogram.percentile(1) == .max)
        #expect(histogram.percentile(0.5) == 0)
    }
}

