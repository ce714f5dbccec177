import BerthBus
import BerthHTTP
import BerthLink
import BerthMetrics
import BerthWire
import CoreMetrics
import Logging

/// The answer to one request sent over the bus.
struct MeshAnswer: Sendable {
    var response: Response
    var body: [Frame]
    /// The body of an answer that streams to a Worker, as it comes.
    var feed: BodyFeed?
}

/// The edge's bus thread: a `RouterLink` to every router for the directory, one ROUTER socket with a link to each
/// sidecar it sends requests to (and a monitor that says at once when one breaks), an `EventPublisher`, and the
/// edge's HTTP server. `EdgeCore` decides where each request goes and what happens when something fails; this
/// performs it. Every exchange ends here: its metrics are recorded, its traffic event published, and its completion
/// called once.
final class EdgeBus: BusLoopBody {
    /// A request on its way: the exchange, and its body until it is sent for the last time.
    final class Outgoing {
        var exchange: Exchange
        var body: [Frame]

        init(exchange: Exchange, body: [Frame]) {
            self.exchange = exchange
            self.body = body
        }
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

    private static let eventsIndex = 0, requestsIndex = 1, monitorIndex = 2, firstRouterIndex = 3

    let configuration: EdgeConfiguration
    private let logger: Logger
    private let loop: BusLoop<EdgeBus>
    let server: EdgeHTTPServer
    private let events: EventPublisher
    /// One ROUTER socket for every sidecar link: a link's routing id is its number in `EdgeCore`.
    private let requests: Socket
    private let monitor: Socket
    private var routers: [RouterLink]
    private(set) var sockets: [Socket]
    private var core: EdgeCore<Outgoing>
    /// What was logged of failed handshakes, so that a sidecar that refuses us is one line.
    private var handshakeFailures = OnceLog(limit: 1_024)
    /// Links by the endpoint they connect to, for the monitor's events.
    private var linksByEndpoint: [String: Int] = [:]
    /// Requests read this turn of the loop, sent together at its end (`sendOutbox`).
    private var outbox: [Outgoing] = []
    private var sending: [Outgoing] = []
    private let trafficTopic: String
    private var classMetrics: [String: ClassMetrics] = [:]
    /// The response being handled: `EdgeCore.Action.deliver` hands it to its client.
    private var received: MeshAnswer?
    private let inFlightGauge = Gauge(label: "berth_edge_in_flight")
    private var recordedInFlight = -1

    /// An answer that streams to its client, from its head to its last piece.
    private struct OpenStream {
        let outgoing: Outgoing
        let response: Response
        var bytesOut = 0
        var lastEvent: ContinuousClock.Instant
        /// A WebSocket's two directions, followed frame by frame: its messages, and where its frames end.
        var webSocket: (upstream: WebSocketFrameScanner, downstream: WebSocketFrameScanner)?
        /// The body as a Worker's task reads it; nil when it goes to a client connection.
        var feed: BodyFeed?
    }

    private var streams: [UInt64: OpenStream] = [:]
    /// Why the exchange being cancelled was (`cancel(_:reason:)`), for its stream's end.
    private var cancelReason: String?
    /// A long stream gets a traffic event this often while it lasts, so that the event stream's counts stay live.
    static let progressInterval: Duration = .seconds(10)
    private var nextProgress: ContinuousClock.Instant = .now

    init(
        configuration: EdgeConfiguration, serving: EdgeHTTPServer.Serving, listener: ListeningSocket, ids: RequestIDs,
        loop: BusLoop<EdgeBus>, descriptors: DescriptorPoller, logger: Logger
    ) throws(BusError) {
        self.configuration = configuration
        self.logger = logger
        self.loop = loop
        trafficTopic = configuration.trafficTopic
        events = try EventPublisher(connectingTo: configuration.events, security: configuration.security)
        var options = SocketOptions()
        options.routerMandatory = true
        options.maxMessageSize = configuration.maxMessageSize
        options.curve = configuration.security?.toPeers
        requests = try Socket(.router, options: options)
        monitor = try requests.monitor(events: SocketEvent.disconnected | SocketEvent.handshakeSucceeded | SocketEvent.handshakeFailures)
        routers = configuration.followsRoutersFromFirstRequest ? [] : try Self.routerLinks(configuration, logger: logger)
        sockets = [events.socket, requests, monitor] + routers.map(\.socket)
        var settings = EdgeCore<Outgoing>.Settings()
        settings.heartbeatInterval = configuration.heartbeatInterval
        settings.liveness = configuration.heartbeatLiveness
        settings.queueLimit = configuration.queueLimit
        settings.firstDirectoryWait = configuration.heartbeatInterval * configuration.heartbeatLiveness
        core = EdgeCore(settings: settings, now: .now)
        let env = Environment(mesh: MeshClient(
            bus: loop, configuration: configuration, ids: ids, streamsAnswers: serving.worker.streamsBodies
        ))
        server = EdgeHTTPServer(
            serving: serving, listener: listener, env: env, loop: loop, descriptors: descriptors, ids: ids, configuration: configuration
        )
    }

    func descriptorReady(token: Int, events: Int16) {
        server.ready(token: token, events: events)
        takeServerWork()
    }

    /// Sends the exchange's request at the end of this turn of the loop; its completion is called exactly once, with
    /// the answer or with why there is none.
    func send(_ exchange: Exchange, body: [Frame]) {
        if routers.isEmpty && !configuration.routers.isEmpty { followRouters() }
        outbox.append(Outgoing(exchange: exchange, body: body))
    }

    private static func routerLinks(_ configuration: EdgeConfiguration, logger: Logger) throws(BusError) -> [RouterLink] {
        var links: [RouterLink] = []
        for router in configuration.routers {
            links.append(try RouterLink(
                endpoint: router, heartbeatInterval: configuration.heartbeatInterval, liveness: configuration.heartbeatLiveness,
                security: configuration.security, logger: logger
            ))
        }
        return links
    }

    /// The first request of an edge that follows the routers from its first request (`followsRoutersFromFirstRequest`).
    private func followRouters() {
        do {
            routers = try Self.routerLinks(configuration, logger: logger)
        } catch {
            // Tried again with the next request; this one waits for a directory, then fails as router-unreachable.
            return logger.error("cannot link to the routers", metadata: ["berth.error": "\(error)"])
        }
        sockets = [events.socket, requests, monitor] + routers.map(\.socket)
        core.beginFollowing(now: .now)
        logger.debug("following the routers from the first request", metadata: ["berth.routers": "\(configuration.routers)"])
    }

    private func takeServerWork() {
        for work in server.takeMeshWork() {
            switch work {
            case .send(let exchange, let body): send(exchange, body: body)
            case .cancel(let id): cancel(id)
            case .credit(let id, let bytes): sendCredit(id, bytes: bytes)
            case .piece(let id, let body, let final): sendPiece(id, body: body, final: final)
            }
        }
    }

    /// Grants the sidecar streaming answer `id` `bytes` more of its body.
    private func sendCredit(_ id: UInt64, bytes: Int) {
        guard let link = core.streamLink(id) else { return }
        sendOnLink([Frame(Self.routingID(link)), Frame(Envelope.credit(Credit(id: id, bytes: UInt64(bytes))).encoded())], link: link)
    }

    /// A piece of the request body of `id` that streams in, to its sidecar.
    func sendPiece(_ id: UInt64, body: [Frame], final: Bool) {
        guard let (link, outgoing) = core.uploadTarget(id) else { return }
        outgoing.exchange.bytesIn += body.byteCount
        if streams[id]?.webSocket != nil { for frame in body { frame.withUnsafeBytes { streams[id]!.webSocket!.upstream.scan($0) } } }
        var frames = [Frame(Self.routingID(link)), Frame(Envelope.streamData(StreamData(id: id, final: final)).encoded())]
        frames.append(contentsOf: body)
        sendOnLink(frames, link: link)
    }

    /// Hands what this turn of the loop read to the core together. libzmq wakes its I/O thread for the first message
    /// of a burst only, so requests sent back to back cost one wake-up (bench/PROFILE.md, 2026-12-01). A request that
    /// fails at once answers its client, which may dispatch one it had pipelined: that one goes in this turn too.
    private func sendOutbox() {
        while !outbox.isEmpty {
            swap(&outbox, &sending)
            let now = ContinuousClock.now
            for outgoing in sending {
                let request = outgoing.exchange.request
                let deadline = outgoing.exchange.started + .milliseconds(Int64(request.timeoutMilliseconds))
                perform(core.submit(request, payload: outgoing, deadline: deadline, now: now))
            }
            sending.removeAll(keepingCapacity: true)
            takeServerWork()
        }
    }

    /// Whoever waited went away (the client, a Worker's task, the reader of a stream): stop. The sidecar's answer, if
    /// it comes, is dropped; a stream it sends is told to stop.
    func cancel(_ id: UInt64, reason: String = "the client went away") {
        if let index = outbox.firstIndex(where: { $0.exchange.request.id == id }) {
            let outgoing = outbox.remove(at: index)
            return finish(outgoing.exchange, Self.failure(id, .internal, reason))
        }
        cancelReason = reason
        perform(core.cancel(id))
        cancelReason = nil
    }

    // MARK: What the core decided

    private func perform(_ actions: [EdgeCore<Outgoing>.Action]) {
        for action in actions {
            switch action {
            case .connect(let link, let endpoint, let serverKey):
                if configuration.security != nil && serverKey.isEmpty {
                    // Its link would fail its handshake: the core hears of it when the link's liveness runs out.
                    if handshakeFailures.first(endpoint) {
                        logger.error("a sidecar in the directory has no CURVE key; this edge uses CURVE and cannot reach it", metadata: ["berth.endpoint": "\(endpoint)"])
                    }
                    continue
                }
                do {
                    try requests.connect(endpoint, routingID: Self.routingID(link), serverKey: configuration.security == nil ? nil : serverKey)
                    linksByEndpoint[endpoint] = link
                } catch {
                    logger.warning("cannot link to a sidecar", metadata: ["berth.endpoint": "\(endpoint)", "berth.error": "\(error)"])
                }
            case .disconnect(let link, let endpoint):
                requests.disconnect(endpoint)
                if linksByEndpoint[endpoint] == link { linksByEndpoint[endpoint] = nil }
            case .send(let link, let request, let outgoing, let keepBody):
                var frames = [Frame(Self.routingID(link)), Frame(Envelope.request(request).encoded())]
                // A body kept for a retry goes as copies: a send empties the frames it sends.
                frames.append(contentsOf: keepBody ? outgoing.body.map { $0.copy() } : outgoing.body)
                if !keepBody { outgoing.body = [] }
                sendOnLink(frames, link: link)
            case .heartbeat(let link):
                sendOnLink([Frame(Self.routingID(link)), Frame(Envelope.heartbeat(Heartbeat()).encoded())], link: link)
            case .deliver(let outgoing, _):
                guard let answer = received else { continue }
                received = nil
                if answer.response.bodyStreams {
                    beginStream(outgoing, answer.response)
                } else {
                    finish(outgoing.exchange, answer)
                }
            case .cancelStream(let link, let id):
                let reason = cancelReason ?? "the client went away"
                sendOnLink([Frame(Self.routingID(link)), Frame(Envelope.streamCancel(StreamCancel(id: id, reason: reason)).encoded())], link: link)
                streams[id]?.feed?.cut(reason)
                endStream(id, error: MeshError(code: .internal, message: reason, component: "edge"))
            case .streamLost(let outgoing, let request, let error):
                streams[request.id]?.feed?.cut(error.message)
                if case .connection(let token, let number) = outgoing.exchange.reply {
                    // A WebSocket between two frames is closed as RFC 6455 says a failing endpoint does: 1011.
                    let atBoundary = streams[request.id]?.webSocket?.downstream.atFrameBoundary ?? false
                    server.streamLost(
                        token: token, exchange: number, reason: error.message, closeFrame: atBoundary ? WebSocketFrameScanner.internalErrorClose : nil
                    )
                }
                endStream(request.id, error: error)
            case .fail(let outgoing, let request, let error):
                finish(outgoing.exchange, MeshAnswer(response: Response(id: request.id, status: 0, error: error), body: []))
            case .ejected(let ready, let duration, let reason):
                let instance = Endpoint(className: ready.className, instanceID: ready.instanceID, port: ready.ports.first ?? 0)
                let message: String
                if let duration {
                    message = "edge \(configuration.name) sets it aside for \(duration): \(reason)"
                    logger.warning("instance set aside", metadata: [
                        "berth.container": "\(ready.className)", "berth.instance": "\(ready.instanceID)", "berth.reason": "\(reason)",
                        "berth.duration": "\(duration)",
                    ])
                } else {
                    message = "edge \(configuration.name) picks it again"
                    logger.info("instance picked again", metadata: ["berth.container": "\(ready.className)", "berth.instance": "\(ready.instanceID)"])
                }
                publish(topic: "lifecycle.\(ready.className).\(ready.instanceID)", event: .lifecycle(LifecycleEvent(
                    timeMicroseconds: WallClock.nowMicroseconds(), container: instance, state: duration == nil ? .returned : .ejected,
                    message: message
                )))
            case .askDirectory(let router):
                logger.info("missed a directory update; asking for the whole directory", metadata: ["berth.router": "\(routers[router].endpoint)"])
                routers[router].send(.directoryRequest)
            }
        }
    }

    private func sendOnLink(_ frames: [Frame], link: Int) {
        do {
            if try !requests.send(frames) {
                logger.debug("sidecar link is full; the message waits for the link's liveness check", metadata: ["berth.link": "\(link)"])
            }
        } catch {
            // Not connected (yet, or any more): the core hears of it when the link's liveness runs out.
            logger.debug("cannot send on a sidecar link", metadata: ["berth.link": "\(link)", "berth.error": "\(error)"])
        }
    }

    /// A link's routing id on the request socket: "L" and its number, 32 bits little-endian (ids that begin with a
    /// zero byte are libzmq's own).
    static func routingID(_ link: Int) -> [UInt8] {
        [UInt8(ascii: "L"), UInt8(truncatingIfNeeded: link), UInt8(truncatingIfNeeded: link >> 8),
         UInt8(truncatingIfNeeded: link >> 16), UInt8(truncatingIfNeeded: link >> 24)]
    }

    private static func link(ofRoutingID frame: Frame) -> Int? {
        frame.withUnsafeBytes { bytes in
            guard bytes.count == 5, bytes[0] == UInt8(ascii: "L") else { return nil }
            return Int(bytes[1]) | Int(bytes[2]) << 8 | Int(bytes[3]) << 16 | Int(bytes[4]) << 24
        }
    }

    // MARK: Streamed answers

    /// The head of an answer that streams: written to its client, whose connection then takes the pieces; or handed
    /// to the Worker's task that waits for it, with a body it reads as the pieces come.
    private func beginStream(_ outgoing: Outgoing, _ response: Response) {
        let id = outgoing.exchange.request.id
        guard case .connection(let token, let number) = outgoing.exchange.reply else {
            guard case .callback(let completion) = outgoing.exchange.reply else { return }
            let feed = BodyFeed(
                initialGrant: Int(outgoing.exchange.request.streamWindow),
                grant: { [loop] bytes in loop.execute { $0.sendCredit(id, bytes: bytes) } },
                abandon: { [loop] in loop.execute { $0.cancel(id, reason: "the worker stopped reading the answer") } }
            )
            streams[id] = OpenStream(
                outgoing: outgoing, response: response, lastEvent: .now,
                webSocket: response.status == 101 && outgoing.exchange.request.upgrade ? (WebSocketFrameScanner(), WebSocketFrameScanner()) : nil,
                feed: feed
            )
            return completion(MeshAnswer(response: response, body: [], feed: feed))
        }
        streams[id] = OpenStream(
            outgoing: outgoing, response: response, lastEvent: .now,
            webSocket: response.status == 101 && outgoing.exchange.request.upgrade ? (WebSocketFrameScanner(), WebSocketFrameScanner()) : nil
        )
        var answer = MeshAnswer(response: response, body: []).edgeResponse
        answer.servedBy = response.servedBy
        if !server.beginStream(token: token, exchange: number, id: id, with: answer) { perform(core.cancel(id)) }
    }

    /// A piece of a streamed answer from `link`.
    private func streamPiece(_ data: StreamData, body: [Frame], onLink link: Int, now: ContinuousClock.Instant) {
        let (payload, actions) = core.streamPiece(data.id, final: data.final, onLink: link, now: now)
        guard let outgoing = payload else { return perform(actions) }
        streams[data.id]?.bytesOut += body.byteCount
        if streams[data.id]?.webSocket != nil { for frame in body { frame.withUnsafeBytes { streams[data.id]!.webSocket!.downstream.scan($0) } } }
        if let feed = streams[data.id]?.feed {
            let pushed = feed.push(body, final: data.final, failure: data.error?.message)
            if data.final {
                endStream(data.id, error: data.error)
            } else if case .refused(let reason) = pushed {
                cancel(data.id, reason: reason)
            } else if pushed == .readerGone {
                cancel(data.id, reason: "the worker stopped reading the answer")
            }
            return perform(actions)
        }
        guard case .connection(let token, let number) = outgoing.exchange.reply else { return perform(actions) }
        if data.final, let downstream = streams[data.id]?.webSocket?.downstream, downstream.atFrameBoundary, !downstream.sawClose {
            // The app's side of a WebSocket ended without a close frame (the app died, or was put to sleep): its
            // client hears 1011 rather than a bare end.
            let reason = data.error?.message ?? "the app closed its connection without closing the WebSocket"
            server.streamLost(token: token, exchange: number, reason: reason, closeFrame: WebSocketFrameScanner.internalErrorClose)
            endStream(data.id, error: data.error ?? MeshError(code: .appFailed, message: reason, component: "app"))
            return perform(actions)
        }
        let written = server.streamPiece(token: token, exchange: number, body: body, final: data.final, failed: data.error?.message)
        if data.final {
            endStream(data.id, error: data.error)
        } else if !written {
            // The client went away, or the piece broke the stream's rules: the sidecar stops.
            perform(core.cancel(data.id))
        }
        perform(actions)
    }

    /// A stream is over, whole or cut: its metrics and its one traffic event.
    private func endStream(_ id: UInt64, error: MeshError?) {
        guard let stream = streams.removeValue(forKey: id) else { return }
        let exchange = stream.outgoing.exchange
        exchange.upload?.close()
        let latency = exchange.started.duration(to: .now)
        var response = stream.response
        response.error = error
        let status = Int(stream.response.status)
        classMetrics[exchange.target.className, default: ClassMetrics(className: exchange.target.className)].record(status: status, latency: latency)
        publish(topic: trafficTopic, event: streamEvent(stream, response, latency: latency, inProgress: false))
    }

    private func streamEvent(_ stream: OpenStream, _ response: Response, latency: Duration, inProgress: Bool) -> Event {
        let exchange = stream.outgoing.exchange
        var event = exchange.event(response: response, status: Int(response.status), bytesOut: stream.bytesOut, latency: latency)
        event.streamed = true
        event.inProgress = inProgress
        event.messagesIn = stream.webSocket?.upstream.messages ?? 0
        event.messagesOut = stream.webSocket?.downstream.messages ?? 0
        return .traffic(event)
    }

    /// Streams open for `progressInterval` since their last event get one, with their bytes so far.
    private func publishProgress(now: ContinuousClock.Instant) {
        // Not spans: a span is exported once, at its end.
        for event in server.workerStreamProgress(now: now, interval: Self.progressInterval) { publish(topic: trafficTopic, event: .traffic(event)) }
        for (id, stream) in streams where stream.lastEvent.duration(to: now) >= Self.progressInterval {
            streams[id]!.lastEvent = now
            publish(topic: trafficTopic, event: streamEvent(
                stream, stream.response, latency: stream.outgoing.exchange.started.duration(to: now), inProgress: true
            ))
        }
    }

    private func finish(_ exchange: Exchange, _ answer: MeshAnswer) {
        // Answered before its whole body went (the app did not wait for it), or failed: the rest is not sent.
        exchange.upload?.close()
        let latency = exchange.started.duration(to: .now)
        let className = exchange.target.className
        classMetrics[className, default: ClassMetrics(className: className)].record(status: answer.status, latency: latency)
        let response = answer.edgeResponse
        publishTraffic(exchange.event(answer: answer, bytesOut: response.body.count, latency: latency))
        switch exchange.reply {
        case .connection(let token, let number): server.answer(token: token, exchange: number, with: response)
        case .callback(let completion): completion(answer)
        }
    }

    /// A traffic event of this edge's, on the event stream and, when spans are exported, to the exporter.
    func publishTraffic(_ event: @autoclosure () -> TrafficEvent) {
        guard let spans = configuration.spans else { return publish(topic: trafficTopic, event: .traffic(event())) }
        let made = event()
        spans.record(made)
        publish(topic: trafficTopic, event: .traffic(made))
    }

    func publish(topic: String, event: @autoclosure () -> Event) {
        events.publish(topic: topic) { event().encoded() }
    }

    static func failure(_ id: UInt64, _ code: ErrorCode, _ message: String) -> MeshAnswer {
        MeshAnswer(response: Response(id: id, status: 0, error: MeshError(code: code, message: message, component: "edge")), body: [])
    }

    // MARK: From the routers and the sidecars

    func received(_ frames: [Frame], on index: Int) {
        switch index {
        case Self.eventsIndex: events.received(frames)
        case Self.requestsIndex: fromSidecar(frames)
        case Self.monitorIndex: linkEvent(frames)
        default: fromRouter(index - Self.firstRouterIndex, frames)
        }
    }

    private func fromRouter(_ router: Int, _ frames: [Frame]) {
        let link = routers[router]
        guard let (envelope, _) = link.received(frames) else { return }
        let now = ContinuousClock.now
        switch envelope {
        case .directory(let directory):
            logger.debug("directory", metadata: ["berth.router": "\(link.endpoint)", "berth.instances": "\(directory.instances.count)"])
            perform(core.directory(directory, from: router, now: now))
        case .directoryUpdate(let update):
            perform(core.update(update, from: router, now: now))
        case .heartbeat:
            perform(core.routerAnswers(router, now: now))
        case .disconnect:
            // The router does not know us (it restarted): ask for its directory again.
            link.mustGreetAgain()
        case .response(let response):
            logger.error("the router refused a request: \(response.error?.message ?? "")")
        case .ready, .request, .directoryRequest, .streamData, .credit, .streamCancel:
            logger.warning("rejected message: routers send directories, updates and heartbeats to edges")
        }
    }

    /// `[link's routing id, envelope, body...]` from a sidecar.
    private func fromSidecar(_ frames: [Frame]) {
        guard frames.count >= 2, let link = Self.link(ofRoutingID: frames[0]) else {
            logger.warning("rejected message from a sidecar: expected a link's routing id and an envelope", metadata: ["berth.frames": "\(frames.count)"])
            return
        }
        guard let envelope = Envelope.decode(frames[1], from: "sidecar", logger: logger) else { return }
        let now = ContinuousClock.now
        switch envelope {
        case .response(let response):
            received = MeshAnswer(response: response, body: Array(frames.dropFirst(2)))
            perform(core.response(response, onLink: link, now: now))
            received = nil
        case .heartbeat(let heartbeat):
            perform(core.heartbeat(inFlight: heartbeat.inFlight, onLink: link, now: now))
        case .disconnect:
            perform(core.leaving(onLink: link, now: now))
        case .streamData(let data):
            streamPiece(data, body: Array(frames.dropFirst(2)), onLink: link, now: now)
            takeServerWork()
        case .credit(let credit):
            guard let outgoing = core.uploadCredit(credit.id, onLink: link, now: now) else { return }
            if let upload = outgoing.exchange.upload { return upload.granted(credit.bytes) }
            guard case .connection(let token, let number) = outgoing.exchange.reply else { return }
            server.grantUpload(token: token, exchange: number, bytes: credit.bytes)
            takeServerWork()
        case .streamCancel:
            logger.warning("rejected message: sidecars do not cancel streams")
        case .ready, .request, .directoryRequest, .directory, .directoryUpdate:
            logger.warning("rejected message: sidecars send responses, heartbeats and disconnects to edges")
        }
    }

    private func linkEvent(_ frames: [Frame]) {
        guard let event = SocketEvent(frames), let link = linksByEndpoint[event.endpoint] else { return }
        if let reason = event.handshakeFailure {
            if handshakeFailures.first("\(event.endpoint) \(event.event) \(event.value)") {
                logger.warning("cannot link to a sidecar", metadata: ["berth.endpoint": "\(event.endpoint)", "berth.reason": "\(reason)"])
            }
        } else if event.event == SocketEvent.disconnected {
            logger.debug("a sidecar link broke", metadata: ["berth.endpoint": "\(event.endpoint)"])
            perform(core.linkLost(link, reason: "broke its connection", now: .now))
        }
    }

    func receiveFailed(_ error: BusError, on index: Int) {
        let peer = switch index {
        case Self.eventsIndex: "event stream"
        case Self.requestsIndex: "sidecar"
        case Self.monitorIndex: "link monitor"
        default: "router"
        }
        logger.warning("rejected message", metadata: ["berth.peer": "\(peer)", "berth.error": "\(error)"])
    }

    // MARK: Timers

    func tick(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        var next = server.tick(now: now)
        takeServerWork()
        var reconnected = false
        for (index, link) in routers.enumerated() {
            let wasUp = link.state.phase == .up
            let (linkNext, changed) = link.tick(now: now, hello: { .directoryRequest }, heartbeat: { .heartbeat(Heartbeat()) })
            if changed {
                reconnected = true
                if wasUp { perform(core.routerLost(index, now: now)) }
            }
            next = next.map { min($0, linkNext) } ?? linkNext
        }
        if reconnected { sockets = [events.socket, requests, monitor] + routers.map(\.socket) }
        let (actions, coreNext) = core.tick(now: now)
        perform(actions)
        if now >= nextProgress {
            nextProgress = now + .seconds(1)
            publishProgress(now: now)
        }
        if core.pendingCount != recordedInFlight {
            recordedInFlight = core.pendingCount
            inFlightGauge.record(recordedInFlight)
        }
        // Last: whatever the turn dispatched, timers included, goes out before the loop sleeps.
        sendOutbox()
        return next.map { min($0, coreNext) } ?? coreNext
    }

    func stopping() {
        server.stop()
        takeServerWork()
        for outgoing in outbox { finish(outgoing.exchange, Self.failure(outgoing.exchange.request.id, .internal, "the edge is shutting down")) }
        outbox.removeAll()
        perform(core.abandonAll("the edge is shutting down"))
    }
}
