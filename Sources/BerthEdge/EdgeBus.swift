import BerthBus
import BerthHTTP
import BerthMetrics
import CoreMetrics
import BerthWire
import Logging

/// The answer to one request sent over the bus.
struct MeshAnswer: Sendable {
    var response: Response
    var body: [Frame]
}

/// The edge's bus thread: a DEALER to the router, an `EventPublisher`, a ROUTER where sidecars send answers that
/// skip the router (`ReplyEndpoint`), and the edge's HTTP server.
///
/// It matches answers to waiting requests by id, heartbeats the router, and when the router goes quiet it answers
/// every waiting request at once and connects again: nothing waits on a router that is gone. Every exchange ends
/// here, on this thread: its metrics are recorded, its traffic event published, and its completion called once.
final class EdgeBus: BusLoopBody {
    private struct Waiting {
        let exchange: Exchange
        /// The router answers 504 at the deadline; this is the edge's own backstop, a little later.
        let backstop: ContinuousClock.Instant
    }

    private struct Outgoing {
        let exchange: Exchange
        let body: [Frame]
    }

    /// The metrics of one container class, made on its first request: no label arrays per request.
    private struct ClassMetrics {
        let className: String
        let duration: Timer
        var requests: [Int: Counter] = [:]

        init(className: String) {
            self.className = className
            duration = Timer(label: "berth_edge_request_duration_seconds", dimensions: [("class", className)])
        }

        mutating func record(status: Int, latency: Duration) {
            duration.record(latency)
            if let counter = requests[status] {
                counter.increment()
                return
            }
            let counter = Counter(label: "berth_edge_requests_total", dimensions: [("class", className), ("status", String(status))])
            counter.increment()
            requests[status] = counter
        }
    }

    let configuration: EdgeConfiguration
    let ids: RequestIDs
    private let logger: Logger
    let server: EdgeHTTPServer
    private var dealer: Socket
    private let events: EventPublisher
    /// Sidecars' direct answers arrive here; nil when they all come through the router.
    private let replies: Socket?
    /// What requests carry as `replyTo`: the endpoint `replies` bound.
    private let replyTo: String
    /// The router's DEALER, the event publisher, then `replies`.
    private(set) var sockets: [Socket]
    private var waiting: [UInt64: Waiting] = [:]
    /// Requests that go out at the end of this turn of the loop (`sendOutbox`).
    private var outbox: [Outgoing] = []
    /// The outbox being sent; kept, with its capacity, so that a turn's burst allocates nothing.
    private var sending: [Outgoing] = []
    private var lastHeard: ContinuousClock.Instant = .now
    private var nextHeartbeat: ContinuousClock.Instant = .now
    private var nextSweep: ContinuousClock.Instant = .now
    private let trafficTopic: String
    private var classMetrics: [String: ClassMetrics] = [:]

    init(
        configuration: EdgeConfiguration, serving: EdgeHTTPServer.Serving, listener: ListeningSocket, ids: RequestIDs,
        loop: BusLoop<EdgeBus>, descriptors: DescriptorPoller, logger: Logger
    ) throws(BusError) {
        self.configuration = configuration
        self.ids = ids
        self.logger = logger
        trafficTopic = "traffic.edge.\(configuration.name)"
        dealer = try Self.connectDealer(configuration)
        events = try EventPublisher(connectingTo: configuration.events)
        replies = try configuration.replies.bind(logger: logger)
        replyTo = replies?.lastEndpoint ?? ""
        sockets = [dealer, events.socket] + (replies.map { [$0] } ?? [])
        let env = Environment(mesh: MeshClient(bus: loop, configuration: configuration, ids: ids))
        server = EdgeHTTPServer(serving: serving, listener: listener, env: env, loop: loop, descriptors: descriptors)
        server.bus = self
    }

    func descriptorReady(token: Int, events: Int16) {
        server.ready(token: token, events: events)
    }

    private static func connectDealer(_ configuration: EdgeConfiguration) throws(BusError) -> Socket {
        var options = SocketOptions()
        options.immediate = true
        let socket = try Socket(.dealer, options: options)
        try socket.connect(configuration.router)
        return socket
    }

    /// Sends the exchange's request at the end of this turn of the loop; its completion is called exactly once, with
    /// the answer or with why there is none.
    func send(_ exchange: Exchange, body: [Frame]) {
        outbox.append(Outgoing(exchange: exchange, body: body))
    }

    /// Sends what this turn of the loop read, together. libzmq wakes its I/O thread for the first message of a burst
    /// only, so requests sent back to back cost the router's link one wake-up, where requests sent as each was read
    /// cost one each (bench/PROFILE.md, 2026-12-01). A send that fails answers its client, which may dispatch a
    /// request the client had pipelined: that one goes in this turn too, not after the next wake-up.
    private func sendOutbox() {
        while !outbox.isEmpty {
            swap(&outbox, &sending)
            for outgoing in sending { sendNow(outgoing.exchange, body: outgoing.body) }
            sending.removeAll(keepingCapacity: true)
        }
    }

    private func sendNow(_ exchange: Exchange, body: [Frame]) {
        var request = exchange.request
        request.replyTo = replyTo
        var frames = [Frame(Envelope.request(request).encoded())]
        frames.append(contentsOf: body)
        do {
            guard try dealer.send(frames) else {
                finish(exchange, Self.failure(request.id, .routerUnreachable, "the router at \(configuration.router) is not connected"))
                return
            }
        } catch {
            finish(exchange, Self.failure(request.id, .routerUnreachable, "cannot send to the router: \(error.message)"))
            return
        }
        let timeout = Duration.milliseconds(Int64(request.timeoutMilliseconds))
        waiting[request.id] = Waiting(exchange: exchange, backstop: .now + timeout + configuration.heartbeatInterval)
    }

    /// The client went away: stop waiting. The router's answer, if it comes, is dropped; a request not yet sent never is.
    func cancel(_ id: UInt64) {
        if let index = outbox.firstIndex(where: { $0.exchange.request.id == id }) {
            let outgoing = outbox.remove(at: index)
            return finish(outgoing.exchange, Self.failure(id, .internal, "the client went away"))
        }
        guard let entry = waiting.removeValue(forKey: id) else { return }
        finish(entry.exchange, Self.failure(id, .internal, "the client went away"))
    }

    private func finish(_ exchange: Exchange, _ answer: MeshAnswer) {
        let latency = exchange.started.duration(to: .now)
        let className = exchange.target.className
        classMetrics[className, default: ClassMetrics(className: className)].record(status: answer.status, latency: latency)
        publish(topic: trafficTopic, event: .traffic(exchange.event(answer: answer, latency: latency)))
        switch exchange.reply {
        case .connection(let token, let number): server.answer(token: token, exchange: number, with: answer.edgeResponse)
        case .callback(let completion): completion(answer)
        }
    }

    func publish(topic: String, event: @autoclosure () -> Event) {
        events.publish(topic: topic) { event().encoded() }
    }

    static func failure(_ id: UInt64, _ code: ErrorCode, _ message: String) -> MeshAnswer {
        MeshAnswer(response: Response(id: id, status: 0, error: MeshError(code: code, message: message, component: code == .routerUnreachable ? "router" : "edge")), body: [])
    }

    // MARK: From the router and the sidecars

    func received(_ frames: [Frame], on index: Int) {
        switch index {
        case 0: fromRouter(frames)
        case 1: events.received(frames)
        default: fromSidecar(frames)
        }
    }

    private func fromRouter(_ frames: [Frame]) {
        lastHeard = .now
        guard let first = frames.first, let envelope = decode(first, from: "router") else { return }
        switch envelope {
        case .response(let response):
            answer(response, body: Array(frames.dropFirst()))
        case .heartbeat, .disconnect:
            break
        case .ready, .request, .delivered:
            logger.warning("rejected message: the router sends responses and heartbeats to edges")
        }
    }

    /// `[sidecar's routing id, envelope, body...]` on the direct link.
    private func fromSidecar(_ frames: [Frame]) {
        guard frames.count >= 2 else {
            logger.warning("rejected message on the direct link: expected a routing id and an envelope", metadata: ["berth.frames": "\(frames.count)"])
            return
        }
        guard let envelope = decode(frames[1], from: "sidecar") else { return }
        guard case .response(let response) = envelope else {
            logger.warning("rejected message on the direct link: sidecars send responses only")
            return
        }
        answer(response, body: Array(frames.dropFirst(2)))
    }

    private func decode(_ frame: Frame, from peer: String) -> Envelope? {
        do {
            return try frame.withUnsafeBytes { bytes throws(WireError) in try Envelope(decoding: bytes) }
        } catch {
            logger.warning("rejected malformed envelope", metadata: ["berth.peer": "\(peer)", "berth.error": "\(error)"])
            return nil
        }
    }

    /// The first answer for an id wins; a later one (the router's 504 after a direct answer, say) is dropped.
    private func answer(_ response: Response, body: [Frame]) {
        guard let entry = waiting.removeValue(forKey: response.id) else { return }
        finish(entry.exchange, MeshAnswer(response: response, body: body))
    }

    func receiveFailed(_ error: BusError, on index: Int) {
        let peer = switch index { case 0: "router"; case 1: "event stream"; default: "sidecar" }
        logger.warning("rejected message", metadata: ["berth.peer": "\(peer)", "berth.error": "\(error)"])
    }

    // MARK: Timers

    func tick(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        if now >= nextHeartbeat {
            nextHeartbeat = now + configuration.heartbeatInterval
            _ = try? dealer.send([Frame(Envelope.heartbeat(Heartbeat(inFlight: UInt32(waiting.count))).encoded())])
        }
        if lastHeard.duration(to: now) > configuration.heartbeatInterval * configuration.heartbeatLiveness {
            if !waiting.isEmpty {
                logger.warning("lost the router; answering waiting requests", metadata: ["berth.waiting": "\(waiting.count)"])
            }
            failAll(.routerUnreachable, "lost the router at \(configuration.router) (no heartbeat for \(configuration.heartbeatLiveness) intervals)")
            do {
                dealer = try Self.connectDealer(configuration)
                sockets[0] = dealer
            } catch {
                logger.error("cannot reconnect to the router", metadata: ["berth.error": "\(error)"])
            }
            lastHeard = now
        }
        if now >= nextSweep {
            nextSweep = now + .milliseconds(50)
            for (id, entry) in waiting where entry.backstop < now {
                waiting[id] = nil
                finish(entry.exchange, Self.failure(id, .deadlineExceeded, "no answer from the router before the deadline"))
            }
        }
        let next = min(nextHeartbeat, nextSweep)
        let serverNext = server.tick(now: now)
        // Last: whatever the turn dispatched, timers included, goes out before the loop sleeps.
        sendOutbox()
        return serverNext.map { min($0, next) } ?? next
    }

    private func failAll(_ code: ErrorCode, _ message: String) {
        let unsent = outbox
        outbox.removeAll()
        for outgoing in unsent { finish(outgoing.exchange, Self.failure(outgoing.exchange.request.id, code, message)) }
        let all = waiting
        waiting.removeAll()
        for (id, entry) in all { finish(entry.exchange, Self.failure(id, code, message)) }
    }

    func stopping() {
        server.stop()
        failAll(.routerUnreachable, "the edge is shutting down")
        ReplyEndpoint.removeFile(of: replyTo)
    }
}
