import BerthBus
import BerthWire
import Logging

/// A request from the router, with its body frames.
struct IncomingRequest: Sendable {
    var request: Request
    var body: [Frame]
}

/// The sidecar's side of the bus: a DEALER to the router, an `EventPublisher` and the links to edges that take
/// answers directly (`DirectReplies`), on the sidecar's bus thread, and the `AppClient` whose connections to the
/// app that thread polls beside them.
///
/// It registers with READY, heartbeats, and when the router goes quiet for `heartbeatLiveness` intervals, or
/// says it does not know us, it connects again and registers again: a restarted router gets us back by itself.
final class SidecarBus: BusLoopBody {
    private let configuration: SidecarConfiguration
    private let logger: Logger
    /// Called on the bus thread for every request; the answer comes back through `respond`.
    private let handle: @Sendable (IncomingRequest, SidecarBus) -> Void
    /// Called once, when a drain is over.
    private let drained: @Sendable () -> Void
    private var drainedSignalled = false
    private var dealer: Socket
    private let events: EventPublisher
    private let replies: DirectReplies
    /// The router's DEALER, the event publisher, then the direct links.
    private(set) var sockets: [Socket]
    private var linksGeneration = 0
    let app: AppClient
    private var lastHeard: ContinuousClock.Instant = .now
    private var nextHeartbeat: ContinuousClock.Instant = .now
    /// Until the router answers, READY is repeated often: with IMMEDIATE, a READY sent before the connection
    /// completes is dropped.
    private var registered = false
    private var nextReady: ContinuousClock.Instant = .now
    /// Requests handed out and not yet answered.
    private var inFlight = 0
    /// Requests answered straight to the edge and not yet reported: `tick` tells the router in one message.
    private var delivered: [UInt64] = []
    /// When the oldest of `delivered` was answered.
    private var firstDelivered: ContinuousClock.Instant = .now
    /// Set by SIGTERM: no new work is taken, and `drained` is called when the last answer is out.
    private var drainDeadline: ContinuousClock.Instant?
    private var draining: Bool { drainDeadline != nil }
    /// The router answers our DISCONNECT with one of its own; a request it sent before comes first on the link.
    /// Without that answer a request in transit at SIGTERM would find the app already stopped. A router that does
    /// not answer (gone, or older) is waited for until `leaveDeadline`.
    private var leaveAcknowledged = false
    private var leaveDeadline: ContinuousClock.Instant?

    init(
        configuration: SidecarConfiguration, logger: Logger,
        handle: @escaping @Sendable (IncomingRequest, SidecarBus) -> Void, drained: @escaping @Sendable () -> Void,
        descriptors: DescriptorPoller
    ) throws(BusError) {
        self.configuration = configuration
        self.logger = logger
        self.handle = handle
        self.drained = drained
        dealer = try Self.connectDealer(configuration)
        events = try EventPublisher(connectingTo: configuration.events)
        replies = DirectReplies(logger: logger)
        sockets = [dealer, events.socket]
        app = AppClient(
            host: configuration.appHost, connectTimeout: configuration.connectTimeout, maxConnectionsPerPort: configuration.capacity,
            descriptors: descriptors
        )
        sendReady()
    }

    private static func connectDealer(_ configuration: SidecarConfiguration) throws(BusError) -> Socket {
        var options = SocketOptions()
        options.immediate = true
        let socket = try Socket(.dealer, options: options)
        try socket.connect(configuration.router)
        return socket
    }

    private func sendReady() {
        let ready = Ready(
            className: configuration.className, instanceID: configuration.instanceID, ports: configuration.ports,
            capacity: UInt32(configuration.capacity),
            heartbeatMilliseconds: UInt32(configuration.heartbeatInterval.components.seconds * 1_000 + configuration.heartbeatInterval.components.attoseconds / 1_000_000_000_000_000)
        )
        send([Frame(Envelope.ready(ready).encoded())])
    }

    private func send(_ frames: [Frame]) {
        do {
            if try !dealer.send(frames) {
                logger.debug("router not connected; message not sent")
            }
        } catch {
            logger.warning("send to router failed", metadata: ["berth.error": "\(error)"])
        }
    }

    // MARK: From the router

    func received(_ frames: [Frame], on index: Int) {
        guard index == 0 else {
            // A direct link carries answers one way; an edge never sends on it.
            if index == 1 { events.received(frames) }
            return
        }
        lastHeard = .now
        registered = true
        guard let first = frames.first else { return }
        let envelope: Envelope
        do {
            envelope = try first.withUnsafeBytes { bytes throws(WireError) in try Envelope(decoding: bytes) }
        } catch {
            logger.warning("rejected malformed envelope from router", metadata: ["berth.error": "\(error)", "berth.frames": "\(frames.count)"])
            return
        }
        switch envelope {
        case .request(let request):
            inFlight += 1
            handle(IncomingRequest(request: request, body: Array(frames.dropFirst())), self)
        case .heartbeat:
            break
        case .disconnect(let disconnect):
            if draining {
                leaveAcknowledged = true
                finishIfDrained(now: .now)
            } else {
                logger.info("router asked us to register again", metadata: ["berth.reason": "\(disconnect.reason)"])
                registered = false
                sendReady()
            }
        case .ready, .response, .delivered:
            logger.warning("rejected message: the router sends requests, heartbeats and disconnects only")
        }
    }

    func receiveFailed(_ error: BusError, on index: Int) {
        logger.warning("rejected message from router", metadata: ["berth.error": "\(error)"])
    }

    // MARK: To the router

    /// Answers `request`: straight to the edge when it takes direct answers and its link is up, through the router
    /// otherwise. The router hears of direct answers in batches (`reportDelivered`).
    /// Errors always go through the router, which counts them.
    /// - Returns: true when the answer went straight to the edge.
    @discardableResult
    func respond(to request: Request, _ response: Response, body: [Frame]) -> Bool {
        inFlight -= 1
        if !request.replyTo.isEmpty && response.error == nil {
            var direct = response
            direct.id = request.replyID
            var frames = [Frame(Envelope.response(direct).encoded())]
            frames.append(contentsOf: body)
            let sent = replies.send(frames, to: request.replyTo)
            followLinks()
            if sent {
                if delivered.isEmpty { firstDelivered = .now }
                delivered.append(response.id)
                finishIfDrained(now: .now)
                return true
            }
        }
        var frames = [Frame(Envelope.response(response).encoded())]
        frames.append(contentsOf: body)
        send(frames)
        finishIfDrained(now: .now)
        return false
    }

    /// Reports direct answers to the router in batches: at most `noteHold` after the first, at once when the
    /// router could be holding requests back for our capacity (its count of our requests in flight includes the
    /// ones not reported). Returns when to look again.
    private func reportDelivered(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        guard !delivered.isEmpty else { return nil }
        let due = firstDelivered + Self.noteHold
        if now >= due || delivered.count >= Self.maxNoteBatch || (inFlight + delivered.count) * 2 >= configuration.capacity {
            sendDelivered()
            return nil
        }
        return due
    }

    private static let noteHold = Duration.milliseconds(1)
    private static let maxNoteBatch = 64

    private func sendDelivered() {
        guard !delivered.isEmpty else { return }
        send([Frame(Envelope.delivered(delivered).encoded())])
        delivered.removeAll(keepingCapacity: true)
    }

    /// Polls the direct links as they are now, if they changed.
    private func followLinks() {
        if replies.generation != linksGeneration { resetSockets() }
    }

    private func resetSockets() {
        sockets = [dealer, events.socket] + replies.sockets
        linksGeneration = replies.generation
    }

    func publish(topic: String, event: @autoclosure () -> Event) {
        events.publish(topic: topic) { event().encoded() }
    }

    /// Stops taking new requests: the router stops sending here and keeps what is in flight until it is answered.
    func drain() {
        guard !draining else { return }
        logger.info("draining", metadata: ["berth.in_flight": "\(inFlight)"])
        drainDeadline = .now + configuration.drainTimeout
        leaveDeadline = .now + configuration.heartbeatInterval
        send([Frame(Envelope.disconnect(Disconnect(reason: "draining")).encoded())])
        finishIfDrained(now: .now)
    }

    private func finishIfDrained(now: ContinuousClock.Instant) {
        guard let drainDeadline, let leaveDeadline, !drainedSignalled else { return }
        let routerDone = leaveAcknowledged || now >= leaveDeadline
        if (inFlight == 0 && routerDone) || now >= drainDeadline {
            if inFlight > 0 { logger.warning("drain timeout passed; abandoning requests", metadata: ["berth.in_flight": "\(inFlight)"]) }
            sendDelivered()
            drainedSignalled = true
            drained()
        }
    }

    // MARK: The app's connections

    func descriptorReady(token: Int, events: Int16) {
        app.ready(token: token, events: events)
    }

    // MARK: Timers

    func tick(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        earliest(reportDelivered(now: now), earliest(app.expire(now: now), busTick(now: now)))
    }

    private func earliest(_ a: ContinuousClock.Instant?, _ b: ContinuousClock.Instant?) -> ContinuousClock.Instant? {
        guard let a else { return b }
        guard let b else { return a }
        return min(a, b)
    }

    private func busTick(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        finishIfDrained(now: now)
        if !registered && !draining && now >= nextReady {
            nextReady = now + .milliseconds(50)
            sendReady()
        }
        if now >= nextHeartbeat {
            nextHeartbeat = now + configuration.heartbeatInterval
            // Heartbeats go on while draining: the router keeps our requests only while we look alive.
            send([Frame(Envelope.heartbeat(Heartbeat(inFlight: UInt32(inFlight))).encoded())])
            // Once a heartbeat is often enough to look for links unused for a minute.
            replies.expire(now: now)
            followLinks()
        }
        if !draining && lastHeard.duration(to: now) > configuration.heartbeatInterval * configuration.heartbeatLiveness {
            logger.warning("lost the router; connecting again", metadata: ["berth.router": "\(configuration.router)"])
            do {
                dealer = try Self.connectDealer(configuration)
                resetSockets()
                registered = false
            } catch {
                logger.error("cannot reconnect to the router", metadata: ["berth.error": "\(error)"])
            }
            lastHeard = now
        }
        if draining && !leaveAcknowledged, let leaveDeadline, leaveDeadline > now { return min(nextHeartbeat, leaveDeadline) }
        return registered || draining ? nextHeartbeat : min(nextHeartbeat, nextReady)
    }

    func stopping() {
        sendDelivered()
        app.shutdown()
        send([Frame(Envelope.disconnect(Disconnect(reason: "sidecar stopping")).encoded())])
    }
}
