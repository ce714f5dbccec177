import BerthWire
import Testing

@testable import BerthSidecar

/// The span a sidecar makes for the request it hands its app, and the traceparent the app gets.
@Suite struct AppSpanTests {
    static let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    let ids = TraceIDs()

    @Test func theAppGetsAChildOfTheSendersSpan() {
        var request = Request(
            id: 1, target: Target(className: "A"), method: "GET", path: "/",
            headers: [Header("traceparent", "00-\(Self.trace)-00f067aa0ba902b7-01")],
            traceID: Self.trace, parentSpanID: "b7ad6b7169203331", traceFlags: 1
        )
        let span = AppSpan(&request, ids: ids)
        #expect(span.traceID == Self.trace && span.parentSpanID == "b7ad6b7169203331" && TraceParent.isSpanID(span.spanID))
        #expect(request.headers == [Header("traceparent", "00-\(Self.trace)-\(span.spanID)-01")], "replaced, not added")
    }

    @Test func aSenderThatTracesNothingStartsATraceHere() {
        var request = Request(id: 1, target: Target(className: "A"), method: "GET", path: "/", traceID: "an-old-edge's-id")
        let span = AppSpan(&request, ids: ids)
        #expect(TraceParent.isTraceID(span.traceID) && span.parentSpanID.isEmpty)
        #expect(request.headers == [Header("traceparent", "00-\(span.traceID)-\(span.spanID)-01")])
    }
}
