import BerthWire
import Testing

@testable import BerthEdge

/// The span of each exchange the edge sends, and the headers that carry it onward.
@Suite struct SpanTests {
    let ids = TraceIDs()
    static let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let client = "00f067aa0ba902b7"

    @Test func aClientsTraceparentIsContinuedAndReplacedByTheEdgesSpan() {
        var headers = [Header("Accept", "*/*"), Header("TraceParent", "00-\(Self.trace)-\(Self.client)-00"), Header("X-Request-Id", "r-1")]
        let span = Span(headers: &headers, inherited: nil, ids: ids)
        #expect(span.traceID == Self.trace && span.parentSpanID == Self.client && span.flags == 0 && span.xRequestID == "r-1")
        #expect(TraceParent.isSpanID(span.spanID) && span.spanID != Self.client)
        #expect(headers == [Header("Accept", "*/*"), Header("traceparent", "00-\(Self.trace)-\(span.spanID)-00"), Header("X-Request-Id", "r-1")],
                "in the same place, once")
    }

    @Test func withoutTraceparentANewTraceStartsHere() {
        var headers: [Header] = []
        let span = Span(headers: &headers, inherited: nil, ids: ids)
        #expect(TraceParent.isTraceID(span.traceID) && span.parentSpanID.isEmpty && span.flags == 1 && span.xRequestID.isEmpty)
        #expect(headers == [Header("traceparent", "00-\(span.traceID)-\(span.spanID)-01")])
    }

    @Test func aMalformedTraceparentIsReplacedByANewTrace() {
        var headers = [Header("traceparent", "00-\(Self.trace.uppercased())-\(Self.client)-01")]
        let span = Span(headers: &headers, inherited: nil, ids: ids)
        #expect(span.traceID != Self.trace.uppercased() && span.parentSpanID.isEmpty)
        #expect(headers.count == 1 && headers[0].value == "00-\(span.traceID)-\(span.spanID)-01")
    }

    @Test func aWorkersSubRequestInheritsItsRequestsSpanAndRequestID() {
        let inherited = TraceContext(parent: TraceParent(traceID: Self.trace, spanID: Self.client, flags: 1), xRequestID: "r-2")
        var headers = [Header("content-type", "application/json")]
        let span = Span(headers: &headers, inherited: inherited, ids: ids)
        #expect(span.traceID == Self.trace && span.parentSpanID == Self.client && span.xRequestID == "r-2")
        #expect(headers.contains(Header("x-request-id", "r-2")) && headers.contains(Header("traceparent", "00-\(Self.trace)-\(span.spanID)-01")))
        // A traceparent the Worker set itself wins over the inherited one.
        var own = [Header("traceparent", "00-\(Self.trace)-b7ad6b7169203331-01")]
        #expect(Span(headers: &own, inherited: inherited, ids: ids).parentSpanID == "b7ad6b7169203331")
    }
}
