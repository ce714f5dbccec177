import BerthBus
import BerthWire
import CoreMetrics
import DequeModule

/// A live sidecar, as the router knows it from its READY and heartbeats.
final class Instance {
    /// The ZeroMQ routing id of the sidecar's connection.
    let identity: [UInt8]
    let className: String
    let id: String
    let ports: [UInt32]
    let capacity: Int
    /// Router ids of the requests this instance is working on.
    var inFlight: Set<UInt64> = []
    var expiry: ContinuousClock.Instant
    /// It said DISCONNECT: it gets no new work and is forgotten once its requests are answered.
    var draining = false
    /// `berth_router_requests_total{result="answered"}` of its class, made once rather than looked up per answer.
    let answered: Counter

    init(identity: [UInt8], ready: Ready, expiry: ContinuousClock.Instant) {
        self.identity = identity
        self.className = ready.className
        self.id = ready.instanceID
        self.ports = ready.ports
        self.capacity = Int(ready.capacity)
        self.expiry = expiry
        answered = Counter(label: "berth_router_requests_total", dimensions: [("class", ready.className), ("result", "answered")])
    }

    var hasCapacity: Bool { inFlight.count < capacity }
    var endpoint: Endpoint { Endpoint(className: className, instanceID: id, port: ports.first ?? 0) }
}

/// A request the router holds: waiting for capacity, or handed to an instance.
struct HeldRequest {
    /// Routing id of the edge that sent it.
    let edge: [UInt8]
    /// The request as the edge sent it (its id is the edge's).
    var request: Request
    /// Body frames, kept while the request may still be retried on another instance.
    var body: [Frame]
    let deadline: ContinuousClock.Instant

    var isIdempotent: Bool {
        switch request.method {
        case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE": true
        default: false
        }
    }
}

/// The live instances of one class, and the requests waiting for one of them.
struct ClassState {
    var instances: [Instance] = []
    var queue: Deque<HeldRequest> = []
}
