import BerthBus
import BerthMetrics
import CoreMetrics
import BerthWire
import DequeModule
import Logging

/// The router's state and message handling. It lives on the router's bus thread and nowhere else.
final class RouterCore: BusLoopBody {
    private enum Index: Int { case frontend = 0, backend, eventsIn, eventsOut }

    let sockets: [Socket]
    private var frontend: Socket { sockets[Index.frontend.rawValue] }
    private var backend: Socket { sockets[Index.backend.rawValue] }
    private let configuration: RouterConfiguration
    private let logger: Logger

    private var classes: [String: ClassState] = [:]
    private var instances: [[UInt8]: Instance] = [:]
    /// Requests handed to an instance, by router id.
    private var inFlight: [UInt64: (held: HeldRequest, instance: Instance)] = [:]
    private var nextID: UInt64 = 1
    private var nextSweep: ContinuousClock.Instant = .now
    private var rotation = 0
    private var randomState = UInt64.random(in: 1...UInt64.max)
    private let metrics = MetricsCache()

    init(configuration: RouterConfiguration, logger: Logger) throws(BusError) {
        self.configuration = configuration
        self.logger = logger
        var routerOptions = SocketOptions()
        routerOptions.routerMandatory = true
        routerOptions.maxMessageSize = configuration.maxMessageSize
        let frontend = try Socket(.router, options: routerOptions)
        let backend = try Socket(.router, options: routerOptions)
        var eventOptions = SocketOptions()
        eventOptions.maxMessageSize = 1 << 20
        let eventsIn = try Socket(.xsub, options: eventOptions)
        let eventsOut = try Socket(.xpub, options: eventOptions)
        for (socket, endpoints) in [(frontend, configuration.frontend), (backend, configuration.backend),
                                    (eventsIn, configuration.eventsIn), (eventsOut, configuration.eventsOut)] {
            for endpoint in endpoints.split(separator: ",") { try socket.bind(String(endpoint)) }
        }
        sockets = [frontend, backend, eventsIn, eventsOut]
        logger.info("router listening", metadata: [
            "berth.frontend": "\(frontend.lastEndpoint)", "berth.backend": "\(backend.lastEndpoint)",
            "berth.events.in": "\(eventsIn.lastEndpoint)", "berth.events.out": "\(eventsOut.lastEndpoint)",
        ])
    }

    // MARK: Messages

    func received(_ frames: [Frame], on index: Int) {
        switch Index(rawValue: index)! {
        case .frontend: fromEdge(frames)
        case .backend: fromSidecar(frames)
        // The event proxy: events flow in → out, subscriptions flow out → in.
        case .eventsIn: forward(frames, to: sockets[Index.eventsOut.rawValue])
        case .eventsOut: forward(frames, to: sockets[Index.eventsIn.rawValue])
        }
    }

    func receiveFailed(_ error: BusError, on index: Int) {
        logger.warning("rejected message", metadata: ["berth.socket": "\(Index(rawValue: index)!)", "berth.error": "\(error)"])
    }

    private func forward(_ frames: [Frame], to socket: Socket) {
        // A slow subscriber must never hold anything up: XPUB drops at its high-water mark.
        _ = try? socket.send(frames)
    }

    /// Splits `[identity, envelope, body...]` and decodes the envelope, logging what is malformed.
    private func decode(_ frames: [Frame], from side: String) -> (identity: [UInt8], envelope: Envelope, body: [Frame])? {
        guard frames.count >= 2 else {
            logger.warning("rejected message: expected a routing id and an envelope", metadata: [
                "berth.peer": "\(side)", "berth.frames": "\(frames.count)",
            ])
            return nil
        }
        let identity = frames[0].bytes
        do {
            let envelope = try frames[1].withUnsafeBytes { bytes throws(WireError) in try Envelope(decoding: bytes) }
            return (identity, envelope, Array(frames.dropFirst(2)))
        } catch {
            logger.warning("rejected malformed envelope", metadata: [
                "berth.peer": "\(side)", "berth.peer.id": "\(hex(identity))", "berth.error": "\(error)",
            ])
            return nil
        }
    }

    private func fromEdge(_ frames: [Frame]) {
        guard let (edge, envelope, body) = decode(frames, from: "edge") else { return }
        switch envelope {
        case .request(let request):
            let timeout = request.timeoutMilliseconds > 0
                ? Duration.milliseconds(Int64(request.timeoutMilliseconds)) : configuration.defaultTimeout
            dispatch(HeldRequest(edge: edge, request: request, body: body, deadline: .now + timeout))
        case .heartbeat:
            send(.heartbeat(Heartbeat(inFlight: UInt32(inFlight.count))), to: edge, on: frontend)
        case .disconnect:
            break
        case .ready, .response, .delivered:
            logger.warning("rejected message: edges send requests and heartbeats only", metadata: ["berth.peer.id": "\(hex(edge))"])
        }
    }

    private func fromSidecar(_ frames: [Frame]) {
        guard let (identity, envelope, body) = decode(frames, from: "sidecar") else { return }
        switch envelope {
        case .ready(let ready):
            register(ready, identity: identity)
        case .heartbeat:
            guard let instance = instances[identity] else {
                // A sidecar we do not know (we restarted, or it was declared dead): ask it to register again.
                send(.disconnect(Disconnect(reason: "unknown sidecar: send READY")), to: identity, on: backend)
                return
            }
            instance.expiry = .now + configuration.deadPeerAfter
            send(.heartbeat(Heartbeat(inFlight: UInt32(instance.inFlight.count))), to: identity, on: backend)
        case .response(let response):
            complete(response, body: body, from: identity)
        case .delivered(let ids):
            delivered(ids, from: identity)
        case .disconnect(let disconnect):
            // The answer tells the sidecar that nothing more comes: whatever was sent to it before is ahead of this.
            send(.disconnect(Disconnect(reason: "leave acknowledged")), to: identity, on: backend)
            guard let instance = instances[identity] else { return }
            logger.info("sidecar leaving", metadata: [
                "berth.container": "\(instance.className)", "berth.instance": "\(instance.id)",
                "berth.reason": "\(disconnect.reason)", "berth.in_flight": "\(instance.inFlight.count)",
            ])
            // No new work goes to it; what it holds is answered before it is forgotten.
            instance.draining = true
            classes[instance.className]?.instances.removeAll { $0 === instance }
            if instance.inFlight.isEmpty { instances[identity] = nil }
        case .request:
            logger.warning("rejected message: sidecars do not send requests on the backend", metadata: ["berth.peer.id": "\(hex(identity))"])
        }
    }

    // MARK: Registry

    private func register(_ ready: Ready, identity: [UInt8]) {
        let expiry = ContinuousClock.now + configuration.deadPeerAfter
        if let known = instances[identity] {
            known.expiry = expiry
            return
        }
        // The same instance on a new connection replaces the old one at once.
        if let stale = classes[ready.className]?.instances.first(where: { $0.id == ready.instanceID }) {
            remove(stale, reason: "sidecar \(stale.className)/\(stale.id) reconnected; the old connection is gone")
        }
        let instance = Instance(identity: identity, ready: ready, expiry: expiry)
        instances[identity] = instance
        classes[ready.className, default: ClassState()].instances.append(instance)
        logger.info("sidecar ready", metadata: [
            "berth.container": "\(ready.className)", "berth.instance": "\(ready.instanceID)",
            "berth.ports": "\(ready.ports)", "berth.capacity": "\(ready.capacity)",
        ])
        send(.heartbeat(Heartbeat()), to: identity, on: backend)
        drainQueue(of: ready.className)
    }

    /// Forgets an instance and answers for everything it held: idempotent requests go to another instance once.
    private func remove(_ instance: Instance, reason: String) {
        instances[instance.identity] = nil
        classes[instance.className]?.instances.removeAll { $0 === instance }
        for routerID in instance.inFlight.sorted() {
            guard let (held, _) = inFlight.removeValue(forKey: routerID) else { continue }
            if held.isIdempotent && held.request.attempt == 0 {
                var retry = held
                retry.request.attempt = 1
                metrics.counter("berth_router_retries_total", [("class", held.request.target.className)]).increment()
                logger.debug("retrying on another instance", metadata: ["berth.request.id": "\(held.request.id)", "berth.reason": "\(reason)"])
                dispatch(retry)
            } else {
                fail(held, .instanceLost, "\(reason) while it handled the request")
            }
        }
        instance.inFlight.removeAll()
    }

    // MARK: Dispatch

    private func dispatch(_ held: HeldRequest) {
        let className = held.request.target.className
        guard let state = classes[className], !state.instances.isEmpty else {
            fail(held, .noInstance, "no live instance of container class \(className)")
            return
        }
        if let instance = pick(for: held.request.target, in: state), instance.hasCapacity {
            hand(held, to: instance)
            return
        }
        guard state.queue.count < configuration.queueLimit else {
            fail(held, .saturated, "all \(state.instances.count) instances of \(className) are at capacity and \(state.queue.count) requests wait")
            return
        }
        classes[className]!.queue.append(held)
    }

    private func pick(for target: Target, in state: ClassState) -> Instance? {
        if let name = target.instanceName {
            Routing.instance(forName: name, among: state.instances)
        } else {
            Routing.leastLoaded(among: state.instances, rotation: nextRotation(), random: nextRandom())
        }
    }

    private func nextRotation() -> Int {
        rotation &+= 1
        return rotation & Int.max
    }

    /// xorshift64*: a random pick per request without a system call.
    private func nextRandom() -> Int {
        randomState ^= randomState >> 12
        randomState ^= randomState << 25
        randomState ^= randomState >> 27
        return Int(truncatingIfNeeded: (randomState &* 0x2545_F491_4F6C_DD1D) >> 1)
    }

    private func hand(_ held: HeldRequest, to instance: Instance) {
        let routerID = nextID
        nextID &+= 1
        var request = held.request
        request.id = routerID
        if !request.replyTo.isEmpty { request.replyID = held.request.id }
        let left = ContinuousClock.now.duration(to: held.deadline)
        request.timeoutMilliseconds = UInt32(clamping: max(1, left.components.seconds * 1_000 + left.components.attoseconds / 1_000_000_000_000_000))
        var kept = held
        // Keep the body only while a retry is possible; frames share libzmq's buffer, nothing is copied.
        let retryable = held.isIdempotent && held.request.attempt == 0
        kept.body = retryable ? held.body.map { $0.copy() } : []
        var frames = [Frame(instance.identity), Frame(Envelope.request(request).encoded())]
        frames.append(contentsOf: held.body)
        do {
            guard try backend.send(frames) else {
                fail(held, .saturated, "sidecar \(instance.className)/\(instance.id) is not taking messages (its queue is full)")
                return
            }
        } catch {
            remove(instance, reason: "sidecar \(instance.className)/\(instance.id) is unreachable (\(error.message))")
            dispatch(held)
            return
        }
        instance.inFlight.insert(routerID)
        inFlight[routerID] = (kept, instance)
    }

    /// Forgets a request its instance has answered; nil (and a debug line) when it is not that instance's.
    private func close(_ routerID: UInt64, from identity: [UInt8]) -> (held: HeldRequest, instance: Instance)? {
        guard let (held, instance) = inFlight[routerID], instance.identity == identity else {
            logger.debug("dropped late response", metadata: ["berth.request.router_id": "\(routerID)"])
            return nil
        }
        inFlight[routerID] = nil
        instance.inFlight.remove(routerID)
        if instance.draining && instance.inFlight.isEmpty { instances[identity] = nil }
        return (held, instance)
    }

    /// The sidecar sent these answers straight to their edges: they only close the requests here.
    private func delivered(_ ids: [UInt64], from identity: [UInt8]) {
        var className: String?
        for id in ids {
            guard let (_, instance) = close(id, from: identity) else { continue }
            instance.answered.increment()
            className = instance.className
        }
        if let className { drainQueue(of: className) }
    }

    private func complete(_ response: Response, body: [Frame], from identity: [UInt8]) {
        guard let (held, instance) = close(response.id, from: identity) else { return }
        if let error = response.error {
            metrics.counter("berth_router_requests_total", [("class", instance.className), ("result", error.code.name)]).increment()
        } else {
            instance.answered.increment()
        }
        var answer = response
        answer.id = held.request.id
        var frames = [Frame(held.edge), Frame(Envelope.response(answer).encoded())]
        frames.append(contentsOf: body)
        sendToEdge(frames, held: held)
        drainQueue(of: instance.className)
    }

    private func drainQueue(of className: String) {
        while let state = classes[className], let first = state.queue.first {
            guard let instance = pick(for: first.request.target, in: state), instance.hasCapacity else {
                // A named request waits for its own instance; let unnamed ones behind it go ahead.
                guard let index = state.queue.firstIndex(where: { $0.request.target.instanceName == nil }),
                      let free = Routing.leastLoaded(among: state.instances, rotation: nextRotation(), random: nextRandom())
                else { return }
                let held = classes[className]!.queue.remove(at: index)
                hand(held, to: free)
                continue
            }
            classes[className]!.queue.removeFirst()
            hand(first, to: instance)
        }
    }

    // MARK: Answers

    private func fail(_ held: HeldRequest, _ code: ErrorCode, _ message: String) {
        metrics.counter("berth_router_requests_total", [("class", held.request.target.className), ("result", code.name)]).increment()
        logger.debug("request failed", metadata: ["berth.request.id": "\(held.request.id)", "berth.error.code": "\(code)", "berth.error": "\(message)"])
        let response = Response(id: held.request.id, status: 0, error: MeshError(code: code, message: message, component: "router"))
        sendToEdge([Frame(held.edge), Frame(Envelope.response(response).encoded())], held: held)
    }

    private func sendToEdge(_ frames: [Frame], held: HeldRequest) {
        do {
            if try !frontend.send(frames) {
                logger.warning("edge is not taking responses; dropped one", metadata: ["berth.request.id": "\(held.request.id)"])
            }
        } catch {
            logger.debug("edge went away before its answer", metadata: ["berth.request.id": "\(held.request.id)", "berth.error": "\(error)"])
        }
    }

    private func send(_ envelope: Envelope, to identity: [UInt8], on socket: Socket) {
        _ = try? socket.send([Frame(identity), Frame(envelope.encoded())])
    }

    // MARK: Timers

    func tick(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        guard now >= nextSweep else { return nextSweep }
        nextSweep = now + .milliseconds(20)

        for instance in instances.values where instance.expiry < now {
            logger.warning("sidecar missed its heartbeats", metadata: ["berth.container": "\(instance.className)", "berth.instance": "\(instance.id)"])
            remove(instance, reason: "sidecar \(instance.className)/\(instance.id) stopped answering heartbeats")
        }
        for (routerID, entry) in inFlight where entry.held.deadline < now {
            inFlight[routerID] = nil
            entry.instance.inFlight.remove(routerID)
            fail(entry.held, .deadlineExceeded, "\(entry.instance.className)/\(entry.instance.id) did not answer before the deadline")
        }
        for className in classes.keys {
            guard classes[className]!.queue.contains(where: { $0.deadline < now }) else { continue }
            let expired = classes[className]!.queue.filter { $0.deadline < now }
            classes[className]!.queue.removeAll { $0.deadline < now }
            for held in expired {
                fail(held, .deadlineExceeded, "no instance of \(className) became free before the deadline")
            }
            drainQueue(of: className)
        }
        recordGauges()
        return nextSweep
    }

    private func recordGauges() {
        metrics.gauge("berth_router_in_flight").record(inFlight.count)
        for (className, state) in classes {
            metrics.gauge("berth_router_live_instances", [("class", className)]).record(state.instances.count)
            metrics.gauge("berth_router_queued", [("class", className)]).record(state.queue.count)
        }
    }

    func stopping() {
        for instance in instances.values {
            send(.disconnect(Disconnect(reason: "router shutting down")), to: instance.identity, on: backend)
        }
    }
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { byte in
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
    }.joined()
}
