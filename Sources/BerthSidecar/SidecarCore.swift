import BerthWire

/// What a sidecar decides about its exchanges with edges: whether a request fits its capacity, its load for the
/// edges' picking, which edges to tell when it leaves, and when a drain is over. Inputs in, answers out: no socket and
/// no clock (`SidecarBus` performs them), so every rule is a unit test.
struct SidecarCore {
    enum Admission: Equatable {
        /// Hand it to the app.
        case forward
        /// Answer at once with this: the instance is at capacity, and the edge tries another.
        case refuse(Response)
    }

    enum Phase: Equatable {
        case serving
        /// Requests in transit are still served; over once nothing is in flight and edges had `leaveAt` to hear.
        case draining(leaveAt: ContinuousClock.Instant, deadline: ContinuousClock.Instant)
        case drained
    }

    let capacity: Int
    let servedBy: Endpoint
    /// How long an edge that has sent nothing is remembered, to be told when this sidecar leaves.
    let edgeMemory: Duration
    private(set) var inFlight = 0
    private(set) var phase: Phase = .serving
    /// When the last answer was handed to the bus: a drain ends a little after it, so that libzmq's I/O thread has
    /// written it before the process closes the socket.
    private var lastAnswer: ContinuousClock.Instant?
    static let flushGrace: Duration = .milliseconds(50)
    private var edges: [[UInt8]: ContinuousClock.Instant] = [:]

    init(capacity: Int, servedBy: Endpoint, edgeMemory: Duration) {
        self.capacity = capacity
        self.servedBy = servedBy
        self.edgeMemory = edgeMemory
    }

    /// A request: it goes to the app, unless the instance is at capacity.
    mutating func request(_ request: Request) -> Admission {
        guard inFlight < capacity else {
            return .refuse(Response(
                id: request.id, status: 0,
                error: MeshError(
                    code: .saturated, message: "\(servedBy.className)/\(servedBy.instanceID) is at its capacity of \(capacity) requests",
                    component: "sidecar"
                ),
                servedBy: servedBy, inFlight: UInt32(clamping: inFlight)
            ))
        }
        inFlight += 1
        return .forward
    }

    /// The app's answer (or the failure that stands for it) is out: stamps it with this sidecar's load.
    mutating func answered(_ response: inout Response, now: ContinuousClock.Instant) {
        lastAnswer = now
        inFlight -= 1
        response.inFlight = UInt32(clamping: inFlight)
    }

    /// An edge's heartbeat on the request link; the answer carries this sidecar's load. Edges heartbeat every link they
    /// keep, so the ones that heartbeat are the ones to tell when this sidecar leaves.
    mutating func heartbeat(from edge: [UInt8], now: ContinuousClock.Instant) -> Heartbeat {
        edges[edge] = now
        return Heartbeat(inFlight: UInt32(clamping: inFlight))
    }

    /// Starts leaving; returns the edges to tell, so that they send nothing new.
    mutating func drain(now: ContinuousClock.Instant, leaveGrace: Duration, timeout: Duration) -> [[UInt8]] {
        guard phase == .serving else { return [] }
        phase = .draining(leaveAt: now + leaveGrace, deadline: now + timeout)
        return edges.keys.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// Whether the drain just ended (true once), and when to look again.
    mutating func tick(now: ContinuousClock.Instant) -> (drained: Bool, abandoned: Int, next: ContinuousClock.Instant?) {
        for (edge, heard) in edges where heard.duration(to: now) > edgeMemory { edges[edge] = nil }
        guard case .draining(let leaveAt, let deadline) = phase else { return (false, 0, nil) }
        let flushed = lastAnswer.map { $0 + Self.flushGrace } ?? now
        if (inFlight == 0 && now >= leaveAt && now >= flushed) || now >= deadline {
            phase = .drained
            return (true, inFlight, nil)
        }
        return (false, 0, inFlight == 0 ? max(leaveAt, flushed) : min(deadline, now + .milliseconds(50)))
    }
}
