import BerthBus
import BerthLink
import BerthMetrics
import BerthWire
import CoreMetrics
import Logging

/// The router's bus thread: the directory's sockets and the event proxy. It performs what `DirectoryCore` decides;
/// no request ever passes through here.
final class RouterCore: BusLoopBody {
    private enum Index: Int { case frontend = 0, backend, eventsIn, eventsOut }

    let sockets: [Socket]
    private var frontend: Socket { sockets[Index.frontend.rawValue] }
    private var backend: Socket { sockets[Index.backend.rawValue] }
    private let logger: Logger
    private var directory: DirectoryCore
    private var nextSweep: ContinuousClock.Instant = .now
    private var nextGauges: ContinuousClock.Instant = .now
    /// Classes whose gauge was recorded, so that one whose last instance left is recorded as 0.
    private var gaugedClasses: Set<String> = []
    private let metrics = MetricsCache()

    init(configuration: RouterConfiguration, logger: Logger) throws(BusError) {
        self.logger = logger
        directory = DirectoryCore(epoch: UInt64.random(in: 1...UInt64.max), deadAfter: configuration.deadPeerAfter)
        var routerOptions = SocketOptions()
        routerOptions.routerMandatory = true
        routerOptions.maxMessageSize = configuration.maxMessageSize
        routerOptions.curve = configuration.security?.server
        let frontend = try Socket(.router, options: routerOptions)
        let backend = try Socket(.router, options: routerOptions)
        var eventOptions = SocketOptions()
        eventOptions.maxMessageSize = 1 << 20
        eventOptions.curve = configuration.security?.server
        let eventsIn = try Socket(.xsub, options: eventOptions)
        let eventsOut = try Socket(.xpub, options: eventOptions)
        for (socket, endpoints) in [(frontend, configuration.frontend), (backend, configuration.backend),
                                    (eventsIn, configuration.eventsIn), (eventsOut, configuration.eventsOut)] {
            Authenticator.running()?.watch(socket)
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

    /// Splits `[identity, envelope, ...]` and decodes the envelope, logging what is malformed.
    private func decode(_ frames: [Frame], from side: String) -> (identity: [UInt8], envelope: Envelope)? {
        guard frames.count >= 2 else {
            logger.warning("rejected message: expected a routing id and an envelope", metadata: [
                "berth.peer": "\(side)", "berth.frames": "\(frames.count)",
            ])
            return nil
        }
        switch Envelope.decoding(frames[1], from: side, logger: logger) {
        case .success(let envelope):
            return (frames[0].bytes, envelope)
        case .failure(let error):
            // Said to the sender, which may be a stranger that cannot read our logs: a sidecar hears it in a
            // Disconnect (its READY is refused), an edge in a Response with no id.
            let reason = "the router could not read your message: \(error)"
            if side == "sidecar" {
                send(.disconnect(Disconnect(reason: reason)), to: frames[0].bytes, on: backend)
            } else {
                send(.response(Response(id: 0, status: 0, error: MeshError(code: .badRequest, message: reason, component: "router"))),
                     to: frames[0].bytes, on: frontend)
            }
            return nil
        }
    }

    private func fromEdge(_ frames: [Frame]) {
        guard let (edge, envelope) = decode(frames, from: "edge") else { return }
        let now = ContinuousClock.now
        switch envelope {
        case .directoryRequest: perform(directory.directoryRequest(fromEdge: edge, now: now))
        case .heartbeat: perform(directory.heartbeat(fromEdge: edge, now: now))
        case .disconnect: break
        case .request:
            // An edge of an older mesh, or a stranger: say plainly that requests do not come here.
            let refusal = Response(id: 0, status: 0, error: MeshError(
                code: .badRequest, message: "routers carry no requests: send them to the sidecar the directory names", component: "router"
            ))
            logger.warning("rejected message: a request sent to the router", metadata: ["berth.peer.id": "\(hex(edge))"])
            send(.response(refusal), to: edge, on: frontend)
        case .ready, .response, .directory, .directoryUpdate, .streamData, .credit, .streamCancel:
            logger.warning("rejected message: edges send directory requests and heartbeats only", metadata: ["berth.peer.id": "\(hex(edge))"])
        }
    }

    private func fromSidecar(_ frames: [Frame]) {
        guard let (identity, envelope) = decode(frames, from: "sidecar") else { return }
        let now = ContinuousClock.now
        switch envelope {
        case .ready(let ready): perform(directory.ready(ready, from: identity, now: now))
        case .heartbeat: perform(directory.heartbeat(fromSidecar: identity, now: now))
        case .disconnect(let disconnect): perform(directory.leaving(sidecar: identity, reason: disconnect.reason))
        case .request, .response, .directoryRequest, .directory, .directoryUpdate, .streamData, .credit, .streamCancel:
            logger.warning("rejected message: sidecars send READY, heartbeats and DISCONNECT to routers", metadata: ["berth.peer.id": "\(hex(identity))"])
        }
    }

    private func perform(_ actions: [DirectoryCore.Action]) {
        for action in actions {
            switch action {
            case .toSidecar(let identity, let envelope): send(envelope, to: identity, on: backend)
            case .toEdge(let identity, let envelope): send(envelope, to: identity, on: frontend)
            case .log(.joined(let ready)):
                nextGauges = .now
                logger.info("sidecar ready", metadata: [
                    "berth.container": "\(ready.className)", "berth.instance": "\(ready.instanceID)",
                    "berth.ports": "\(ready.ports)", "berth.capacity": "\(ready.capacity)", "berth.endpoint": "\(ready.endpoint)",
                ])
            case .log(.left(let ready, let reason)):
                nextGauges = .now
                logger.info("sidecar left the directory", metadata: [
                    "berth.container": "\(ready.className)", "berth.instance": "\(ready.instanceID)", "berth.reason": "\(reason)",
                ])
            }
        }
    }

    private func send(_ envelope: Envelope, to identity: [UInt8], on socket: Socket) {
        do {
            if try !socket.send([Frame(identity), Frame(envelope.encoded())]) {
                // At the high-water mark: an edge that misses an update sees the gap and asks for the directory again.
                logger.debug("peer is not taking messages; dropped one", metadata: ["berth.peer.id": "\(hex(identity))"])
            }
        } catch {
            logger.debug("peer went away", metadata: ["berth.peer.id": "\(hex(identity))", "berth.error": "\(error)"])
        }
    }

    // MARK: Timers

    func tick(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        if now >= nextSweep {
            nextSweep = now + .milliseconds(20)
            perform(directory.tick(now: now))
        }
        // Recorded at once when the directory changed, so that a scrape right after a join sees it.
        if now >= nextGauges {
            nextGauges = now + .milliseconds(250)
            let counts = directory.instancesByClass()
            gaugedClasses.formUnion(counts.keys)
            for className in gaugedClasses {
                metrics.gauge("berth_router_live_instances", [("class", className)]).record(counts[className] ?? 0)
            }
            metrics.gauge("berth_router_edges").record(directory.edgeCount)
        }
        return min(nextSweep, nextGauges)
    }

    func stopping() {
        perform(directory.stopping())
    }
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { byte in
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
    }.joined()
}
