import BerthWire

/// A container instance, or the edge (class `edge`, instance its name).
public struct ContainerName: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var className: String
    public var instanceID: String

    public init(className: String, instanceID: String) {
        self.className = className
        self.instanceID = instanceID
    }

    public init(_ endpoint: Endpoint) {
        self.init(className: endpoint.className, instanceID: endpoint.instanceID)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.className, lhs.instanceID) < (rhs.className, rhs.instanceID)
    }

    public var description: String { EventFormatter.name(Endpoint(className: className, instanceID: instanceID)) }
}

/// Counters for one container instance (or the edge), from its own point of view.
public struct ContainerStats: Sendable, Hashable {
    public var name: ContainerName
    /// Requests it made.
    public var sent: UInt64 = 0
    /// Requests it served.
    public var received: UInt64 = 0
    /// Body bytes it sent: response bodies when serving, request bodies when it is the edge.
    public var bytesOut: UInt64 = 0
    /// Body bytes it got: request bodies when serving, response bodies when it is the edge.
    public var bytesIn: UInt64 = 0
    /// Exchanges that ended with status ≥ 500 or a mesh error.
    public var errors: UInt64 = 0
    public var latency = LatencyHistogram()

    public init(name: ContainerName) {
        self.name = name
    }
}

/// `--stats`: per-container counters aggregated from traffic events.
///
/// Every exchange through the edge is reported twice, by the edge and by the sidecar that served it, so each
/// report feeds only the side it saw, and nothing is counted twice:
/// - A sidecar event (kind `sidecar`) is the serving side. Its destination's row counts one request received,
///   the request body as bytes in, the response body as bytes out, an error, and the latency of the app.
///   When its source is another container (a container-to-container call, source class not `edge`), the
///   source's row counts one request sent, and nothing else: the caller's own view is not on the stream.
/// - An edge event (kind `edge`) is the client side. The edge's row (the event's source) counts one request
///   sent, the request body as bytes out, the response body as bytes in, an error, and the end-to-end latency.
///   Its destination is left alone: that container's sidecar reports the exchange, and requests that never
///   reached a container (503, 504) belong to the edge's errors, not to a container's.
/// - An egress event (kind `egress`, a container's call through its own sidecar) counts one request sent for its
///   source only when it left the mesh (destination class `internet`): a call to another class is counted from the
///   serving sidecar's event, as above.
/// - An edge event whose source is `client` is a client's request to a Worker (the parent span of the requests the
///   Worker sent): the edge's row counts one request received, and an error.
/// - An event of unspecified kind is counted in `skipped` only.
/// - A progress event of a long stream (`inProgress`) counts the bytes it says that were not counted yet, and no
///   request; the stream's final event counts the request and the rest of its bytes.
///
/// An error is a status ≥ 500 or a set `error`.
public struct TrafficStats: Sendable {
    public private(set) var containers: [ContainerName: ContainerStats] = [:]
    /// Traffic events seen, skipped ones included.
    public private(set) var events: UInt64 = 0
    /// Events of unspecified kind, which say neither side.
    public private(set) var skipped: UInt64 = 0
    /// Calls from one container instance to another (or out of the mesh), with how many failed.
    public private(set) var calls: [Call: (count: UInt64, errors: UInt64)] = [:]

    /// A caller and what it called: `ContainerA/a-1 → ContainerB/b-0`, or `→ internet/example.com:80`.
    public struct Call: Sendable, Hashable, Comparable {
        public var from: ContainerName
        public var to: ContainerName

        public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.from, lhs.to) < (rhs.from, rhs.to) }
    }

    /// Bytes in and out already counted of streams still going, by their kind and request id.
    private var progressed: [ProgressKey: (bytesIn: UInt64, bytesOut: UInt64)] = [:]

    private struct ProgressKey: Hashable {
        var kind: TrafficKind
        var requestID: UInt64
    }

    public init() {}

    public mutating func record(_ event: TrafficEvent) {
        events += 1
        // A stream's bytes are counted once: each of its events adds what the one before did not say.
        let key = ProgressKey(kind: event.kind, requestID: event.requestID)
        let counted = event.streamed ? progressed[key] : nil
        if event.streamed {
            progressed[key] = event.inProgress ? (event.bytesIn, event.bytesOut) : nil
        }
        var event = event
        event.bytesIn -= min(event.bytesIn, counted?.bytesIn ?? 0)
        event.bytesOut -= min(event.bytesOut, counted?.bytesOut ?? 0)
        if event.inProgress {
            switch event.kind {
            case .sidecar: update(event.destination) { row in row.bytesIn += event.bytesIn; row.bytesOut += event.bytesOut }
            case .edge: update(event.source) { row in row.bytesOut += event.bytesIn; row.bytesIn += event.bytesOut }
            // An egress call's bytes are counted from its sidecar's events, as its requests are.
            case .egress: break
            case .unspecified: skipped += 1
            }
            return
        }
        let failed = event.status >= 500 || event.error != nil
        switch event.kind {
        case .sidecar:
            update(event.destination) { row in
                row.received += 1
                row.bytesIn += event.bytesIn
                row.bytesOut += event.bytesOut
                if failed { row.errors += 1 }
                row.latency.record(event.latencyMicroseconds)
            }
            if !event.source.className.isEmpty && event.source.className != "edge" {
                update(event.source) { $0.sent += 1 }
                count(event, failed: failed)
            }
        case .edge where event.source.className == EventNames.clientClass:
            // A Worker's request as the client sent it: the parent of the requests the edge sent for it.
            update(event.destination) { row in
                row.received += 1
                if failed { row.errors += 1 }
            }
        case .edge:
            update(event.source) { row in
                row.sent += 1
                row.bytesOut += event.bytesIn
                row.bytesIn += event.bytesOut
                if failed { row.errors += 1 }
                row.latency.record(event.latencyMicroseconds)
            }
        case .egress:
            // A call into the mesh is counted from its sidecar event, which names the caller as its source; only a
            // call out of the mesh, which no sidecar reports, counts here.
            if event.destination.className == EventNames.internetClass {
                update(event.source) { row in
                    row.sent += 1
                    if failed { row.errors += 1 }
                }
                count(event, failed: failed)
            }
        case .unspecified:
            skipped += 1
        }
    }

    /// One row per container, by class then instance.
    public var rows: [ContainerStats] {
        containers.values.sorted { $0.name < $1.name }
    }

    /// The calls, by caller then callee.
    public var callRows: [(call: Call, count: UInt64, errors: UInt64)] {
        calls.sorted { $0.key < $1.key }.map { ($0.key, $0.value.count, $0.value.errors) }
    }

    private mutating func count(_ event: TrafficEvent, failed: Bool) {
        let call = Call(from: ContainerName(event.source), to: ContainerName(event.destination))
        calls[call, default: (0, 0)].count += 1
        if failed { calls[call, default: (0, 0)].errors += 1 }
    }

    private mutating func update(_ endpoint: Endpoint, _ change: (inout ContainerStats) -> Void) {
        let name = ContainerName(endpoint)
        change(&containers[name, default: ContainerStats(name: name)])
    }
}
