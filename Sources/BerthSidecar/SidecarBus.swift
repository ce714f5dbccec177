import BerthBus
import BerthLink
import BerthWire
import Logging

/// A request from an edge, with its body frames and the frame of the edge's routing id, which the answer goes back
/// with.
struct IncomingRequest: Sendable {
    var request: Request
    var body: [Frame]
    var edge: Frame
}

/// The sidecar's side of the bus, on its bus thread: the ROUTER socket it binds for edges' requests, a
/// `RouterLink` to every router (READY, heartbeats, reconnect), an `EventPublisher`, and the `AppClient` whose
/// connections to the app that thread polls beside them. `SidecarCore` decides; this performs.
final class SidecarBus: BusLoopBody {
    private let configuration: SidecarConfiguration
    private let logger: Logger
    /// Called on the bus thread for every admitted request; the answer comes back through `respond`.
    private let handle: @Sendable (IncomingRequest, SidecarBus) -> Void
    /// Called once, when a drain is over.
    private let drained: @Sendable () -> Void
    /// Called for every piece of a request body that streams in: the app's idle timer starts again.
    private let activity: @Sendable () -> Void
    /// Where edges send requests: bound by this sidecar, named in READY.
    private let requests: Socket
    let endpoint: String
    private var routers: [RouterLink]
    private let events: EventPublisher
    /// The request socket, the event publisher, then each router's link.
    private(set) var sockets: [Socket]
    let app: AppClient
    private var core: SidecarCore

    /// A streamed exchange: the edge's routing id and the request's id.
    struct StreamKey: Hashable {
        var edge: [UInt8]
        var id: UInt64
    }

    /// An exchange whose answer or request body streams.
    private struct OpenStream {
        let handle: AppExchangeHandle
        /// Request body bytes that streamed in.
        var bytesIn = 0
    }

    /// Exchanges whose answer or request body streams, for the edges' pieces, credit and cancelling.
    private var streams: [StreamKey: OpenStream] = [:]

    init(
        configuration: SidecarConfiguration, network: AppNetwork, logger: Logger,
        handle: @escaping @Sendable (IncomingRequest, SidecarBus) -> Void, activity: @escaping @Sendable () -> Void = {},
        drained: @escaping @Sendable () -> Void, descriptors: DescriptorPoller
    ) throws(BusError) {
        self.configuration = configuration
        self.logger = logger
        self.handle = handle
        self.activity = activity
        self.drained = drained
        var options = SocketOptions()
        options.routerMandatory = true
        options.maxMessageSize = configuration.maxMessageSize
        options.curve = configuration.security?.server
        requests = try Socket(.router, options: options)
        Authenticator.running()?.watch(requests)
        let chosen = configuration.busEndpoint ?? LocalEndpoint.make(kind: "sidecars", name: "\(configuration.className)-\(configuration.instanceID)")
        try requests.bind(chosen)
        endpoint = requests.lastEndpoint
        routers = []
        for router in configuration.routers {
            routers.append(try RouterLink(
                endpoint: router, heartbeatInterval: configuration.heartbeatInterval, liveness: configuration.heartbeatLiveness,
                security: configuration.security, logger: logger
            ))
        }
        events = try EventPublisher(connectingTo: configuration.events, security: configuration.security)
        sockets = [requests, events.socket] + routers.map(\.socket)
        app = AppClient(
            host: configuration.appHost, network: network, connectTimeout: configuration.connectTimeout, maxConnectionsPerPort: configuration.capacity,
            descriptors: descriptors
        )
        core = SidecarCore(capacity: configuration.capacity, servedBy: configuration.endpoint, edgeMemory: .seconds(60))
        logger.info("taking requests", metadata: ["berth.endpoint": "\(endpoint)"])
    }

    private var ready: Ready {
        Ready(
            className: configuration.className, instanceID: configuration.instanceID, ports: configuration.ports,
            capacity: UInt32(configuration.capacity), heartbeatMilliseconds: UInt32(clamping: configuration.heartbeatInterval.milliseconds),
            endpoint: endpoint, curvePublicKey: configuration.security?.keys.publicKey ?? ""
        )
    }

    // MARK: Messages

    func received(_ frames: [Frame], on index: Int) {
        switch index {
        case 0: fromEdge(frames)
        case 1: events.received(frames)
        default: fromRouter(routers[index - 2], frames)
        }
    }

    func receiveFailed(_ error: BusError, on index: Int) {
        let peer = switch index { case 0: "edge"; case 1: "event stream"; default: "router" }
        logger.warning("rejected message", metadata: ["berth.peer": "\(peer)", "berth.error": "\(error)"])
    }

    /// `[edge's routing id, envelope, body...]`.
    private func fromEdge(_ frames: [Frame]) {
        guard frames.count >= 2 else {
            logger.warning("rejected message from an edge: expected a routing id and an envelope", metadata: ["berth.frames": "\(frames.count)"])
            return
        }
        let envelope: Envelope
        switch Envelope.decoding(frames[1], from: "edge", logger: logger) {
        case .success(let decoded): envelope = decoded
        case .failure(let error):
            // Answered, so that a sender in another language learns what it got wrong; with no id, since none was read.
            let refusal = MeshError(code: .badRequest, message: "the sidecar could not read your message: \(error)", component: "sidecar")
            _ = send(.response(Response(id: 0, status: 0, error: refusal)), to: frames[0])
            return
        }
        switch envelope {
        case .request(let request):
            switch core.request(request) {
            case .forward: handle(IncomingRequest(request: request, body: Array(frames.dropFirst(2)), edge: frames[0]), self)
            case .refuse(let refusal): send(.response(refusal), to: frames[0])
            }
        case .heartbeat:
            send(.heartbeat(core.heartbeat(from: frames[0].bytes, now: .now)), to: frames[0])
        case .credit(let credit):
            // A credit for a stream that ended crossed its last piece: nothing to do.
            guard let stream = streams[StreamKey(edge: frames[0].bytes, id: credit.id)] else { return }
            app.grant(stream.handle, bytes: credit.bytes)
        case .streamCancel(let cancel):
            guard let stream = streams[StreamKey(edge: frames[0].bytes, id: cancel.id)] else { return }
            logger.debug("the edge cancelled a stream", metadata: ["berth.request.id": "\(cancel.id)", "berth.reason": "\(cancel.reason)"])
            app.cancel(stream.handle)
        case .disconnect:
            break
        case .streamData(let data):
            // A piece for an exchange that ended (the app answered early, or failed) is dropped.
            let key = StreamKey(edge: frames[0].bytes, id: data.id)
            guard streams[key] != nil else { return }
            let body = Array(frames.dropFirst(2))
            streams[key]!.bytesIn += body.byteCount
            activity()
            if data.error != nil {
                app.cancel(streams[key]!.handle)
            } else if !app.append(streams[key]!.handle, body: body, final: data.final) {
                logger.warning("rejected a request body piece: more than the edge was granted", metadata: ["berth.request.id": "\(data.id)"])
            }
        case .ready, .response, .directoryRequest, .directory, .directoryUpdate:
            logger.warning("rejected message: edges send requests and heartbeats to sidecars")
        }
    }

    private func fromRouter(_ link: RouterLink, _ frames: [Frame]) {
        guard let (envelope, _) = link.received(frames) else { return }
        switch envelope {
        case .heartbeat:
            break
        case .disconnect(let disconnect):
            if core.phase == .serving {
                logger.info("router asked us to register again", metadata: ["berth.router": "\(link.endpoint)", "berth.reason": "\(disconnect.reason)"])
                link.mustGreetAgain()
            }
        case .ready, .request, .response, .directoryRequest, .directory, .directoryUpdate, .streamData, .credit, .streamCancel:
            logger.warning("rejected message: routers send heartbeats and disconnects to sidecars")
        }
    }

    /// Sends `envelope` to the edge whose routing id `edge` holds; the frame is spent.
    /// Returns whether the message was queued.
    @discardableResult
    private func send(_ envelope: Envelope, to edge: Frame, body: [Frame] = []) -> Bool {
        var frames = [edge]
        frames.append(contentsOf: envelope.frames(body: body))
        do {
            if try !requests.send(frames) {
                logger.warning("edge is not taking answers (its queue is full); dropped one")
                return false
            }
            return true
        } catch {
            logger.debug("edge went away before its answer", metadata: ["berth.error": "\(error)"])
            return false
        }
    }

    /// Answers `incoming` on the link it came in on, with this sidecar's load; an answer that `streams` counts as in
    /// flight until its stream ends (`closeStream`).
    func respond(to incoming: IncomingRequest, _ response: Response, body: [Frame], streams: Bool = false) {
        var response = response
        if streams {
            response.inFlight = UInt32(clamping: core.inFlight)
        } else {
            core.answered(&response, now: .now)
        }
        send(.response(response), to: incoming.edge, body: body)
    }

    // MARK: Streams

    func openStream(_ key: StreamKey, _ handle: AppExchangeHandle) {
        streams[key] = OpenStream(handle: handle)
    }

    /// Request body bytes that streamed in for `key`, while its exchange lasts.
    func streamedIn(_ key: StreamKey) -> Int? {
        streams[key]?.bytesIn
    }

    /// The app's connection took request body bytes: the edge may send `bytes` more.
    func credit(_ key: StreamKey, bytes: Int) {
        send(.credit(Credit(id: key.id, bytes: UInt64(bytes))), to: Frame(key.edge))
    }

    /// The exchange ended before its answer streamed.
    func forgetStream(_ key: StreamKey) {
        streams[key] = nil
    }

    /// The stream ended (its last piece is sent): the exchange is no longer in flight.
    func closeStream(_ key: StreamKey) {
        streams[key] = nil
        var done = Response(id: key.id, status: 200)
        core.answered(&done, now: .now)
    }

    /// Sends a piece of a streamed answer. A piece the link cannot take (its queue is full, or the edge is gone)
    /// would leave a hole in the body: the exchange is cancelled instead, so that the app's connection closes and
    /// the stream ends as failed, never with bytes missing.
    func streamData(_ key: StreamKey, _ data: StreamData, body: [Frame]) {
        guard !send(.streamData(data), to: Frame(key.edge), body: body), !data.final, let stream = streams[key] else { return }
        logger.warning("a piece of a streamed answer could not be sent; the exchange is cancelled", metadata: ["berth.request.id": "\(key.id)"])
        app.cancel(stream.handle)
    }

    func publish(topic: String, event: @autoclosure () -> Event) {
        events.publish(topic: topic) { event().encoded() }
    }

    /// Leaves the mesh: routers drop it from the directory, the edges it knows stop sending it anything new, and what is
    /// in flight is answered before `drained` is called.
    func drain() {
        let edges = core.drain(now: .now, leaveGrace: configuration.heartbeatInterval, timeout: configuration.drainTimeout)
        logger.info("draining", metadata: ["berth.in_flight": "\(core.inFlight)", "berth.edges": "\(edges.count)"])
        let leaving = Envelope.disconnect(Disconnect(reason: "draining"))
        for link in routers {
            link.leave()
            link.send(leaving)
        }
        for edge in edges { send(leaving, to: Frame(edge)) }
    }

    // MARK: The app's connections

    func descriptorReady(token: Int, events: Int16) {
        app.ready(token: token, events: events)
    }

    // MARK: Timers

    func tick(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        var next = app.expire(now: now)
        var reconnected = false
        // Made only when due: this runs after every turn of the loop, on the request path.
        for link in routers {
            let (linkNext, changed) = link.tick(
                now: now, hello: { .ready(self.ready) }, heartbeat: { .heartbeat(Heartbeat(inFlight: UInt32(clamping: self.core.inFlight))) }
            )
            reconnected = reconnected || changed
            next = earliest(next, linkNext)
        }
        if reconnected { sockets = [requests, events.socket] + routers.map(\.socket) }
        let (isDrained, abandoned, drainNext) = core.tick(now: now)
        if isDrained {
            if abandoned > 0 { logger.warning("drain timeout passed; abandoning requests", metadata: ["berth.in_flight": "\(abandoned)"]) }
            drained()
        }
        return earliest(next, drainNext)
    }

    private func earliest(_ a: ContinuousClock.Instant?, _ b: ContinuousClock.Instant?) -> ContinuousClock.Instant? {
        guard let a else { return b }
        guard let b else { return a }
        return min(a, b)
    }

    func stopping() {
        app.shutdown()
        let leaving = Envelope.disconnect(Disconnect(reason: "sidecar stopping"))
        for link in routers { link.send(leaving) }
        LocalEndpoint.removeFile(of: endpoint)
    }
}
