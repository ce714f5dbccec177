import BerthWire
import Testing

/// `traceparent` as the W3C Trace Context recommendation asks a receiver to read it, and the ids Berth makes.
@Suite struct TraceParentTests {
    static let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let span = "00f067aa0ba902b7"

    @Test func readsTheRecommendationsExample() throws {
        let parent = try #require(TraceParent(parsing: "00-\(Self.trace)-\(Self.span)-01"))
        #expect(parent.traceID == Self.trace && parent.spanID == Self.span && parent.flags == 1)
        #expect(parent.value == "00-\(Self.trace)-\(Self.span)-01")
        #expect(TraceParent(parsing: "00-\(Self.trace)-\(Self.span)-00")?.flags == 0, "not sampled")
        #expect(parent.with(spanID: "b7ad6b7169203331").value == "00-\(Self.trace)-b7ad6b7169203331-01")
    }

    @Test(arguments: [
        "",
        "00-\(trace)-\(span)",                                      // no flags
        "00-\(trace)-\(span)-01-",                                  // version 00 has exactly four fields
        "00-\(trace.uppercased())-\(span)-01",                      // uppercase hex
        "00-\(trace)-\(span.uppercased())-01",
        "00-00000000000000000000000000000000-\(span)-01",           // all-zero trace id
        "00-\(trace)-0000000000000000-01",                          // all-zero span id
        "ff-\(trace)-\(span)-01",                                   // version ff is invalid
        "0g-\(trace)-\(span)-01",
        "00_\(trace)-\(span)-01",
        "00-\(trace.dropLast())x-\(span)-01",
        "00-\(trace)-\(span)-0x",
        "00-\(trace)0-\(span.dropFirst())-01",                      // the separators in the wrong places
        "01-\(trace)-\(span)-01x",                                  // a later version's extra field needs its "-"
    ])
    func refusesWhatIsMalformed(_ value: String) {
        #expect(TraceParent(parsing: value) == nil, "\(value)")
    }

    @Test func readsALaterVersionForItsFirstFourFields() throws {
        let parent = try #require(TraceParent(parsing: "cc-\(Self.trace)-\(Self.span)-01-what-the-future-holds"))
        #expect(parent.traceID == Self.trace && parent.spanID == Self.span)
        #expect(parent.value.hasPrefix("00-"), "passed on as the version this receiver speaks")
        #expect(TraceParent(parsing: "cc-\(Self.trace)-\(Self.span)-01") != nil)
    }

    @Test func newIdsAreValidAndDistinct() {
        let ids = TraceIDs()
        let spans = (0..<10_000).map { _ in ids.spanID() }
        let traces = (0..<10_000).map { _ in ids.traceID() }
        #expect(spans.allSatisfy(TraceParent.isSpanID) && traces.allSatisfy(TraceParent.isTraceID))
        #expect(Set(spans).count == spans.count && Set(traces).count == traces.count)
        // Two processes (two generators) do not make the same ids.
        #expect(TraceIDs().traceID() != TraceIDs().traceID())
        let trace = ids.newTrace()
        #expect(TraceParent(parsing: trace.value) == trace)
    }
}
