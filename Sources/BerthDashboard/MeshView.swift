import BerthTap
import BerthWire

/// What the dashboard knows about the mesh: each container's traffic counters (`TrafficStats`, counted as
/// `berth tap --stats` counts them) and its last lifecycle state.
public struct MeshView: Sendable {
    /// What the lifecycle events last said about a container.
    public struct Lifecycle: Sendable, Hashable {
        public var state: LifecycleState
        public var pid: UInt32
        public var restarts: UInt32
        public var exitCode: Int32
    }

    public private(set) var traffic = TrafficStats()
    public private(set) var lifecycle: [ContainerName: Lifecycle] = [:]
    /// The port each container was last seen on.
    public private(set) var ports: [ContainerName: UInt32] = [:]
    /// Events of every kind seen so far.
    public private(set) var events: UInt64 = 0

    public init() {}

    public mutating func record(_ event: Event) {
        events += 1
        switch event {
        case .traffic(let traffic):
            self.traffic.record(traffic)
            // The serving side knows its port; the edge's events name no port of their own.
            if traffic.kind == .sidecar { notePort(traffic.destination) }
        case .lifecycle(let change):
            let name = ContainerName(change.container)
            lifecycle[name] = Lifecycle(state: change.state, pid: change.pid, restarts: change.restarts, exitCode: change.exitCode)
            notePort(change.container)
        case .log:
            break
        }
    }

    /// Requests served by all containers (the edge's are the same requests, seen from the client side).
    public var served: UInt64 {
        traffic.containers.values.reduce(0) { $0 + ($1.name.className == "edge" ? 0 : $1.received) }
    }

    /// Every container with traffic or a lifecycle state, by class then instance.
    public var containers: [ContainerName] {
        Set(traffic.containers.keys).union(lifecycle.keys).sorted()
    }

    /// The snapshot served as JSON by `/stats` and in `stats` messages.
    public func snapshot(timeMicroseconds: UInt64) -> StatsSnapshot {
        StatsSnapshot(
            timeMicroseconds: timeMicroseconds,
            events: events,
            trafficEvents: traffic.events,
            requestsPerSecond: nil,
            containers: containers.map { name in
                let row = traffic.containers[name] ?? ContainerStats(name: name)
                let state = lifecycle[name]
                return StatsSnapshot.Container(
                    className: name.className,
                    instanceID: name.instanceID,
                    port: ports[name] ?? 0,
                    state: state.map { Names.lifecycleState($0.state) },
                    pid: state?.pid ?? 0,
                    restarts: state?.restarts ?? 0,
                    sent: row.sent,
                    received: row.received,
                    bytesOut: row.bytesOut,
                    bytesIn: row.bytesIn,
                    errors: row.errors,
                    latencyCount: row.latency.count,
                    p50Microseconds: row.latency.percentile(0.5),
                    p99Microseconds: row.latency.percentile(0.99)
                )
            }
        )
    }

    private mutating func notePort(_ endpoint: Endpoint) {
        guard endpoint.port != 0 else { return }
        ports[ContainerName(endpoint)] = endpoint.port
    }
}

/// Every container's counters at one moment. Keys in JSON are snake_case, as in `berth tap --json`.
public struct StatsSnapshot: Sendable, Codable, Hashable {
    public struct Container: Sendable, Codable, Hashable {
        public var className: String
        public var instanceID: String
        /// 0 when no event said it.
        public var port: UInt32
        /// `starting`, `healthy`, `sleeping`, `exited`, …; `nil` for a container without lifecycle events (the edge).
        public var state: String?
        public var pid: UInt32
        public var restarts: UInt32
        public var sent: UInt64
        public var received: UInt64
        public var bytesOut: UInt64
        public var bytesIn: UInt64
        public var errors: UInt64
        /// Exchanges with a latency recorded.
        public var latencyCount: UInt64
        public var p50Microseconds: UInt64?
        public var p99Microseconds: UInt64?

        enum CodingKeys: String, CodingKey {
            case className = "class_name", instanceID = "instance_id", port, state, pid, restarts, sent, received
            case bytesOut = "bytes_out", bytesIn = "bytes_in", errors, latencyCount = "latency_count"
            case p50Microseconds = "p50_us", p99Microseconds = "p99_us"
        }

        // Absent percentiles are written as null rather than left out, so that every key is always there.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(className, forKey: .className)
            try container.encode(instanceID, forKey: .instanceID)
            try container.encode(port, forKey: .port)
            try container.encode(state, forKey: .state)
            try container.encode(pid, forKey: .pid)
            try container.encode(restarts, forKey: .restarts)
            try container.encode(sent, forKey: .sent)
            try container.encode(received, forKey: .received)
            try container.encode(bytesOut, forKey: .bytesOut)
            try container.encode(bytesIn, forKey: .bytesIn)
            try container.encode(errors, forKey: .errors)
            try container.encode(latencyCount, forKey: .latencyCount)
            try container.encode(p50Microseconds, forKey: .p50Microseconds)
            try container.encode(p99Microseconds, forKey: .p99Microseconds)
        }
    }

    public var timeMicroseconds: UInt64
    /// Events of every kind the dashboard has seen.
    public var events: UInt64
    public var trafficEvents: UInt64
    /// Requests served per second by all containers over the last few seconds; `nil` until there are two samples.
    public var requestsPerSecond: Double?
    public var containers: [Container]

    enum CodingKeys: String, CodingKey {
        case timeMicroseconds = "time_us", events, trafficEvents = "traffic_events", requestsPerSecond = "requests_per_second"
        case containers
    }
}
