import BerthWire

/// The span of a request this sidecar hands its app: a child of the sender's span, whose trace and id the request
/// carries. The app gets it as `traceparent`, so that the app's own tracer joins the trace.
struct AppSpan: Sendable {
    let traceID: String
    let spanID: String
    /// Empty when the sender named none: this span is a trace's root.
    let parentSpanID: String

    /// Makes the span and sets `request`'s `traceparent` header to it, in place of any the request had. A request
    /// from a sender that traces nothing (no valid trace id) starts a new trace.
    init(_ request: inout Request, ids: TraceIDs) {
        spanID = ids.spanID()
        let flags: UInt8
        if TraceParent.isTraceID(request.traceID) {
            traceID = request.traceID
            parentSpanID = TraceParent.isSpanID(request.parentSpanID) ? request.parentSpanID : ""
            flags = UInt8(truncatingIfNeeded: request.traceFlags)
        } else {
            traceID = ids.traceID()
            parentSpanID = ""
            flags = 1
        }
        let header = Header(TraceParent.header, TraceParent(traceID: traceID, spanID: spanID, flags: flags).value)
        if let index = request.headers.firstIndex(where: { $0.name.caseInsensitiveEquals(TraceParent.header) }) {
            request.headers[index] = header
        } else {
            request.headers.append(header)
        }
    }
}
