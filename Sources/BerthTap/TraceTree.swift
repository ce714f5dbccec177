import BerthWire

/// `berth tap --trace ID`: the traffic events of one trace as the tree their span ids make, with timings.
///
/// Each event is a span (`span_id`) and names its parent (`parent_span_id`). A span whose parent is not among the
/// events (the client's own span, or an event that was missed) is a root. Children are in the order they started
/// (`time_us - latency_us`); each line shows when the span started after the first root's start, and how long it
/// took.
///
/// ```
/// trace 4bf92f3577b34da6a3ce929d0e0e4736: 5 spans, 12.3 ms
/// edge     client → edge/main GET /send 200 +0.00 ms 12.3 ms span 1a2b3c4d5e6f7081
/// ├─ edge     edge/main → ContainerA/a-0 :8080 GET /get-payload 200 +0.41 ms 3.10 ms span …
/// │  └─ sidecar  edge/main → ContainerA/a-0 :8080 GET /get-payload 200 +0.52 ms 2.80 ms span …
/// └─ edge     edge/main → ContainerB/b-0 :3000 POST /receive 200 +3.70 ms 8.20 ms span …
///    └─ sidecar  edge/main → ContainerB/b-0 :3000 POST /receive 200 +3.81 ms 7.90 ms span …
/// ```
public struct TraceTree: Sendable {
    public let traceID: String
    public private(set) var events: [TrafficEvent] = []

    public init(traceID: String) {
        self.traceID = traceID
    }

    /// Keeps `event` if it belongs to this trace; true when it did.
    @discardableResult
    public mutating func add(_ event: TrafficEvent) -> Bool {
        guard event.traceID == traceID else { return false }
        events.append(event)
        return true
    }

    /// A span in the tree: its event and how deep it is.
    public struct Line: Sendable, Equatable {
        public var event: TrafficEvent
        public var depth: Int
    }

    /// Every event once, depth first, roots and children in the order they started. Events that only name each other
    /// (a cycle, from a broken publisher) are shown as roots rather than lost.
    public var lines: [Line] {
        let spans = Set(events.map(\.spanID))
        var children: [String: [Int]] = [:]
        var roots: [Int] = []
        for (index, event) in events.enumerated() {
            if !event.parentSpanID.isEmpty && event.parentSpanID != event.spanID && spans.contains(event.parentSpanID) {
                children[event.parentSpanID, default: []].append(index)
            } else {
                roots.append(index)
            }
        }
        let order = { (a: Int, b: Int) in Self.startedFirst(events[a], events[b]) }
        var result: [Line] = []
        var shown = Set<Int>()
        var expanded = Set<String>()
        func visit(_ index: Int, depth: Int) {
            guard shown.insert(index).inserted else { return }
            result.append(Line(event: events[index], depth: depth))
            // A span id seen twice (a repeat) has its children shown once.
            guard expanded.insert(events[index].spanID).inserted else { return }
            for child in (children[events[index].spanID] ?? []).sorted(by: order) { visit(child, depth: depth + 1) }
        }
        for root in roots.sorted(by: order) { visit(root, depth: 0) }
        for index in events.indices.sorted(by: order) where !shown.contains(index) { visit(index, depth: 0) }
        return result
    }

    /// The tree as text, one line per span, after a title line.
    public func render(_ formatter: EventFormatter) -> String {
        let lines = self.lines
        let origin = lines.filter { $0.depth == 0 }.map { Self.start($0.event) }.min() ?? 0
        let end = events.map(\.timeMicroseconds).max() ?? origin
        var text = "trace \(traceID): \(events.count) span\(events.count == 1 ? "" : "s"), \(Units.latency(microseconds: end &- origin))\n"
        for (index, line) in lines.enumerated() {
            text += Self.prefix(lines, index) + formatter.spanLine(line.event, since: origin) + "\n"
        }
        return text
    }

    /// The tree's drawing before line `index`: a bar for every ancestor with siblings still to come, and the branch.
    private static func prefix(_ lines: [Line], _ index: Int) -> String {
        let depth = lines[index].depth
        guard depth > 0 else { return "" }
        var prefix = ""
        for level in 1..<depth {
            prefix += hasLaterSibling(lines, index, depth: level) ? "│  " : "   "
        }
        return prefix + (hasLaterSibling(lines, index, depth: depth) ? "├─ " : "└─ ")
    }

    /// Whether a later line at `depth` comes before the tree climbs above `depth`.
    private static func hasLaterSibling(_ lines: [Line], _ index: Int, depth: Int) -> Bool {
        for later in lines[(index + 1)...] {
            if later.depth < depth { return false }
            if later.depth == depth { return true }
        }
        return false
    }

    static func start(_ event: TrafficEvent) -> UInt64 { event.timeMicroseconds &- event.latencyMicroseconds }

    private static func startedFirst(_ a: TrafficEvent, _ b: TrafficEvent) -> Bool {
        (start(a), a.spanID) < (start(b), b.spanID)
    }
}

extension EventFormatter {
    /// One span of a trace tree: the event's line, when it started after `origin`, and its span id.
    public func spanLine(_ event: TrafficEvent, since origin: UInt64) -> String {
        var line = self.line(event)
        // The line begins with the time of day, which the offset replaces.
        if let space = line.firstIndex(of: " ") { line = String(line[line.index(after: space)...]) }
        let offset = TraceTree.start(event) >= origin ? TraceTree.start(event) - origin : 0
        return line + " +\(Units.latency(microseconds: offset)) span \(event.spanID.isEmpty ? "-" : event.spanID)"
    }
}
