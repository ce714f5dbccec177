import BerthWire

/// The router's directory: which sidecars are live, from their READY and heartbeats, and which edges follow it.
///
/// The zguide's Clone pattern: an edge asks for the directory and gets it whole (`Directory`, as of a sequence
/// number), then every change as a `DirectoryUpdate` numbered one past the last. A sidecar silent for `deadAfter`
/// leaves the directory; so does one that says DISCONNECT. Inputs in, actions out: no socket and no clock here
/// (`RouterCore` performs the actions), so every rule is a unit test.
struct DirectoryCore {
    /// A message for a peer: `identity` is its routing id on the socket its kind connects to.
    enum Action: Equatable {
        case toSidecar(identity: [UInt8], Envelope)
        case toEdge(identity: [UInt8], Envelope)
        /// Worth a line in the log.
        case log(Note)
    }

    enum Note: Equatable {
        case joined(Ready)
        case left(Ready, reason: String)
    }

    private struct Member {
        var ready: Ready
        var expiry: ContinuousClock.Instant
    }

    /// Chosen when the router starts, so that an edge tells a restarted router's numbers from the last one's.
    let epoch: UInt64
    let deadAfter: Duration
    private(set) var sequence: UInt64 = 0
    /// Live sidecars by routing id.
    private var members: [[UInt8]: Member] = [:]
    /// The routing id that holds each `class/instance`.
    private var holders: [String: [UInt8]] = [:]
    /// Edges that asked for the directory, until they miss their heartbeats.
    private var edges: [[UInt8]: ContinuousClock.Instant] = [:]

    init(epoch: UInt64, deadAfter: Duration) {
        self.epoch = epoch
        self.deadAfter = deadAfter
    }

    var instanceCount: Int { members.count }

    /// Live instances per class, for the gauges.
    func instancesByClass() -> [String: Int] {
        var counts: [String: Int] = [:]
        for member in members.values { counts[member.ready.className, default: 0] += 1 }
        return counts
    }
    var edgeCount: Int { edges.count }

    static func key(_ ready: Ready) -> String { ready.className + "/" + ready.instanceID }

    // MARK: Sidecars

    mutating func ready(_ ready: Ready, from identity: [UInt8], now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = [.toSidecar(identity: identity, .heartbeat(Heartbeat()))]
        if var known = members[identity] {
            known.expiry = now + deadAfter
            let changed = known.ready != ready
            known.ready = ready
            members[identity] = known
            if changed { actions += publish(ready, removed: false) }
            return actions
        }
        // The same instance on a new connection (its sidecar restarted) replaces the old one at once.
        let key = Self.key(ready)
        if let stale = holders[key], stale != identity { members[stale] = nil }
        members[identity] = Member(ready: ready, expiry: now + deadAfter)
        holders[key] = identity
        actions.append(.log(.joined(ready)))
        return actions + publish(ready, removed: false)
    }

    mutating func heartbeat(fromSidecar identity: [UInt8], now: ContinuousClock.Instant) -> [Action] {
        guard members[identity] != nil else {
            // A sidecar we do not know (we restarted, or declared it dead): it must register again.
            return [.toSidecar(identity: identity, .disconnect(Disconnect(reason: "unknown sidecar: send READY")))]
        }
        members[identity]!.expiry = now + deadAfter
        return [.toSidecar(identity: identity, .heartbeat(Heartbeat()))]
    }

    /// The sidecar is leaving: the answer tells it the directory no longer lists it.
    mutating func leaving(sidecar identity: [UInt8], reason: String) -> [Action] {
        let answer = Action.toSidecar(identity: identity, .disconnect(Disconnect(reason: "leave acknowledged")))
        return [answer] + remove(identity, reason: "it is leaving (\(reason))")
    }

    private mutating func remove(_ identity: [UInt8], reason: String) -> [Action] {
        guard let member = members.removeValue(forKey: identity) else { return [] }
        let key = Self.key(member.ready)
        if holders[key] == identity { holders[key] = nil }
        return [.log(.left(member.ready, reason: reason))] + publish(member.ready, removed: true)
    }

    private mutating func publish(_ ready: Ready, removed: Bool) -> [Action] {
        sequence += 1
        let update = Envelope.directoryUpdate(DirectoryUpdate(epoch: epoch, sequence: sequence, instance: ready, removed: removed))
        return edges.keys.map { .toEdge(identity: $0, update) }
    }

    // MARK: Edges

    /// The whole directory, and every change after it.
    mutating func directoryRequest(fromEdge identity: [UInt8], now: ContinuousClock.Instant) -> [Action] {
        edges[identity] = now + deadAfter
        let instances = members.values.map(\.ready).sorted { Self.key($0) < Self.key($1) }
        return [.toEdge(identity: identity, .directory(Directory(epoch: epoch, sequence: sequence, instances: instances)))]
    }

    mutating func heartbeat(fromEdge identity: [UInt8], now: ContinuousClock.Instant) -> [Action] {
        guard edges[identity] != nil else {
            // An edge we do not know follows nothing: we restarted, or it went quiet. It must ask again.
            return [.toEdge(identity: identity, .disconnect(Disconnect(reason: "unknown edge: ask for the directory")))]
        }
        edges[identity] = now + deadAfter
        return [.toEdge(identity: identity, .heartbeat(Heartbeat(inFlight: UInt32(clamping: members.count))))]
    }

    // MARK: Time

    /// Forgets the sidecars and edges silent for `deadAfter`.
    mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for (identity, member) in members where member.expiry < now {
            actions += remove(identity, reason: "it missed its heartbeats")
        }
        for (identity, expiry) in edges where expiry < now { edges[identity] = nil }
        return actions
    }

    /// On the router's own shutdown: every sidecar registers again with whichever router comes next.
    func stopping() -> [Action] {
        members.keys.map { .toSidecar(identity: $0, .disconnect(Disconnect(reason: "router shutting down"))) }
    }
}
