import BerthBus
import BerthMetrics
import BerthWire
import CoreMetrics
import Logging
import ServiceLifecycle
import Synchronization

/// `berth-sidecar` as a service: one per container instance, between the bus and the app's port.
///
/// A request goes from the edge's message to the app and back on the bus thread alone, with no Swift task on the
/// way unless the app must be started first.
public struct SidecarService: Service {
    private let configuration: SidecarConfiguration
    private let logger: Logger

    /// The app's network: made by `run` when nil (a namespace of its own when the configuration asks for one).
    private let network: AppNetwork?

    /// `network`: the app's network, when the caller made it first (to open the app's egress listener in it).
    public init(configuration: SidecarConfiguration, network: AppNetwork? = nil, logger: Logger) {
        self.network = network
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "berth.container"] = "\(configuration.className)"
        logger[metadataKey: "berth.instance"] = "\(configuration.instanceID)"
        self.logger = logger
    }

    public func run() async throws {
        let configuration = configuration
        let logger = logger
        let forwarder = AppForwarder(configuration: configuration)
        let network = try self.network ?? (configuration.appNetworkNamespace ? AppNetwork.isolated() : .host)
        let (drained, drainedContinuation) = AsyncStream.makeStream(of: Never.self)
        // The bus and the exchanges need each other; the bus calls `handle` only once it runs, after this is set.
        let exchanges = Mutex<Exchanges?>(nil)
        let bus = BusLoop<SidecarBus>(name: "berth-sidecar") { _, descriptors in
            try SidecarBus(
                configuration: configuration, network: network, logger: logger,
                handle: { incoming, sidecar in exchanges.withLock { $0 }?.handle(incoming, on: sidecar) },
                activity: { exchanges.withLock { $0 }?.supervisor?.touch() },
                drained: { drainedContinuation.finish() },
                descriptors: descriptors
            )
        }
        let supervisor = configuration.app.map { app in
            AppSupervisor(
                app: app, sidecar: configuration, network: network, logger: logger,
                probe: { path in await forwarder.probe(path: path, timeout: app.readinessTimeout, on: bus) },
                events: { event in
                    let topic = switch event {
                    case .lifecycle: "lifecycle.\(configuration.className).\(configuration.instanceID)"
                    case .log: "log.\(configuration.className).\(configuration.instanceID)"
                    case .traffic: "traffic.\(configuration.className).\(configuration.instanceID)"
                    }
                    bus.execute { $0.publish(topic: topic, event: event) }
                }
            )
        }
        exchanges.withLock {
            $0 = Exchanges(configuration: configuration, logger: logger, forwarder: forwarder, supervisor: supervisor, bus: bus)
        }
        logger.info("sidecar started", metadata: [
            "berth.routers": "\(configuration.routers)", "berth.port": "\(configuration.port)",
            "berth.app.network": "\(network.isIsolated ? "own namespace" : "host")",
        ])

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await bus.run() }
            if let supervisor {
                group.addTask { await supervisor.run() }
            }
            group.addTask {
                await withGracefulShutdownHandler {
                    // Ends once the drain is over: every answer is out, or the drain timeout passed.
                    for await _ in drained {}
                } onGracefulShutdown: {
                    bus.execute { $0.drain() }
                }
                await supervisor?.shutdown()
                bus.stop()
            }
        }
    }
}

/// What happens to each request: admission by the app's supervisor, the exchange with the app, then the answer,
/// the traffic event and the metrics.
private final class Exchanges: Sendable {
    let configuration: SidecarConfiguration
    let logger: Logger
    let forwarder: AppForwarder
    let supervisor: AppSupervisor?
    let bus: BusLoop<SidecarBus>
    let metrics: SidecarMetrics
    let topic: String
    let traces = TraceIDs()

    init(configuration: SidecarConfiguration, logger: Logger, forwarder: AppForwarder, supervisor: AppSupervisor?, bus: BusLoop<SidecarBus>) {
        self.configuration = configuration
        self.logger = logger
        self.forwarder = forwarder
        self.supervisor = supervisor
        self.bus = bus
        metrics = SidecarMetrics(className: configuration.className, instanceID: configuration.instanceID)
        topic = "traffic.\(configuration.className).\(configuration.instanceID)"
    }

    /// On the bus thread.
    func handle(_ incoming: IncomingRequest, on sidecar: SidecarBus) {
        let started = ContinuousClock.now
        var traced = incoming
        let span = AppSpan(&traced.request, ids: traces)
        let incoming = traced
        // The completions keep the request, not its body: the app client lets the body's frames go once written.
        let request = IncomingRequest(request: incoming.request, body: [], edge: incoming.edge)
        guard let supervisor else {
            return forward(incoming, request, span: span, started: started, on: sidecar, done: nil)
        }
        if supervisor.admitIfHealthy() {
            return forward(incoming, request, span: span, started: started, on: sidecar, done: { supervisor.finish() })
        }
        // The app is not running: the supervisor starts it (one cold start for all who wait) or says why it can't.
        Task {
            do {
                try await supervisor.begin()
            } catch {
                let message = (error as? AppUnavailable)?.message ?? "\(error)"
                let outcome = forwarder.failure(request.request, .appUnavailable, message, incoming.body.byteCount)
                bus.execute { sidecar in self.answer(request, outcome, span: span, started: started, on: sidecar) }
                return
            }
            let queued = bus.execute { sidecar in
                self.forward(incoming, request, span: span, started: started, on: sidecar, done: { supervisor.finish() })
            }
            if !queued { supervisor.finish() }
        }
    }

    /// On the bus thread: the exchange with the app; `done` once it is over, its stream included.
    private func forward(
        _ incoming: IncomingRequest, _ request: IncomingRequest, span: AppSpan, started: ContinuousClock.Instant, on sidecar: SidecarBus,
        done: (() -> Void)?
    ) {
        guard request.request.streamWindow > 0 || request.request.bodyStreams else {
            forwarder.forward(incoming, over: sidecar.app) { outcome in
                done?()
                self.answer(request, outcome, span: span, started: started, on: sidecar)
            }
            return
        }
        let stream = StreamTally()
        let key = SidecarBus.StreamKey(edge: request.edge.bytes, id: request.request.id)
        // Called once: at the end of the exchange, or, for a WebSocket, once it is open, since from then on only its
        // messages count as activity (`AppSupervisor.touch`), and an idle one lets the app sleep.
        var finished = false
        let done = {
            guard !finished else { return }
            finished = true
            done?()
        }
        let supervisor = supervisor
        let handle = forwarder.forward(incoming, over: sidecar.app, pieces: { piece in
            switch piece {
            case .data(let frames):
                stream.bytesOut += frames.byteCount
                supervisor?.touch()
                sidecar.streamData(key, StreamData(id: key.id), body: frames)
            case .requestCredit(let bytes):
                sidecar.credit(key, bytes: bytes)
            case .end:
                self.endStream(request, key, stream, error: nil, span: span, started: started, on: sidecar)
                done()
            case .failed(let error):
                let outcome = self.forwarder.failure(request.request, .appFailed, "the app's answer was cut short: \(error)", stream.bytesIn)
                self.endStream(request, key, stream, error: outcome.response.error, span: span, started: started, on: sidecar)
                done()
            }
        }) { outcome in
            // A body that streamed in is counted as it came; a whole one came with the request.
            stream.bytesIn = request.request.bodyStreams ? sidecar.streamedIn(key) ?? 0 : outcome.bytesIn
            guard outcome.response.bodyStreams else {
                if request.request.bodyStreams { sidecar.forgetStream(key) }
                stream.handle = nil
                done()
                var outcome = outcome
                outcome.bytesIn = stream.bytesIn
                return self.answer(request, outcome, span: span, started: started, on: sidecar)
            }
            stream.status = outcome.response.status
            stream.streaming = true
            // Registered only now that it streams (or from the start, for a body that streams in): an answer that
            // comes whole, most of them, costs no look-up on the way in and out.
            if !request.request.bodyStreams, let handle = stream.handle { sidecar.openStream(key, handle) }
            sidecar.respond(to: request, outcome.response, body: [], streams: true)
            if outcome.response.status == 101 { done() }
        }
        guard let handle else { return }
        if request.request.bodyStreams || stream.streaming {
            sidecar.openStream(key, handle)
        } else {
            stream.handle = handle
        }
    }

    /// On the bus thread: the last piece of a streamed answer to the edge, clean or failed, and its traffic event.
    private func endStream(
        _ incoming: IncomingRequest, _ key: SidecarBus.StreamKey, _ stream: StreamTally, error: MeshError?, span: AppSpan,
        started: ContinuousClock.Instant, on sidecar: SidecarBus
    ) {
        let request = incoming.request
        let latency = started.duration(to: .now)
        sidecar.streamData(key, StreamData(id: key.id, final: true, error: error), body: [])
        sidecar.closeStream(key)
        metrics.record(Response(id: request.id, status: stream.status, error: error), latency: latency)
        if request.bodyStreams { stream.bytesIn = sidecar.streamedIn(key) ?? stream.bytesIn }
        publish(event(
            request, span: span, status: stream.status, bytesIn: stream.bytesIn, bytesOut: stream.bytesOut, latency: latency, error: error, streamed: true
        ), on: sidecar)
    }

    /// On the bus thread: the answer to the edge, the traffic event, the metrics.
    private func answer(
        _ incoming: IncomingRequest, _ outcome: AppForwarder.Outcome, span: AppSpan, started: ContinuousClock.Instant, on sidecar: SidecarBus
    ) {
        let request = incoming.request
        let latency = started.duration(to: .now)
        let response = outcome.response
        metrics.record(response, latency: latency)
        if let error = response.error {
            logger.debug("request failed", metadata: ["berth.request.id": "\(request.id)", "berth.error": "\(error.message)"])
        }
        // Counted now: sending hands the frames' bytes to libzmq and leaves them empty.
        let bytesOut = UInt64(outcome.body.byteCount)
        sidecar.respond(to: incoming, response, body: outcome.body)
        self.publish(self.event(
            request, span: span, status: response.status, bytesIn: outcome.bytesIn, bytesOut: Int(bytesOut), latency: latency, error: response.error
        ), on: sidecar)
    }

    /// Publishes an exchange's traffic event, made only when someone subscribes or spans are exported.
    private func publish(_ event: @autoclosure () -> TrafficEvent, on sidecar: SidecarBus) {
        guard let spans = configuration.spans else { return sidecar.publish(topic: topic, event: .traffic(event())) }
        let made = event()
        spans.record(made)
        sidecar.publish(topic: topic, event: .traffic(made))
    }

    /// The traffic event of an exchange, the span of `span`; `streamed` when either body streamed.
    private func event(
        _ request: Request, span: AppSpan, status: UInt32, bytesIn: Int, bytesOut: Int, latency: Duration, error: MeshError?,
        streamed: Bool = false
    ) -> TrafficEvent {
        var event = TrafficEvent(
            timeMicroseconds: WallClock.nowMicroseconds(),
            requestID: request.id, traceID: span.traceID,
            source: request.source,
            destination: Endpoint(className: configuration.className, instanceID: configuration.instanceID, port: request.port == 0 ? UInt32(configuration.port) : request.port),
            method: request.method, path: request.path, status: status,
            bytesIn: UInt64(bytesIn), bytesOut: UInt64(bytesOut),
            latencyMicroseconds: latency.wholeMicroseconds,
            kind: .sidecar, error: error,
            spanID: span.spanID, parentSpanID: span.parentSpanID, xRequestID: request.xRequestID
        )
        event.streamed = streamed || request.bodyStreams
        return event
    }
}

/// What a streamed exchange carried so far, for its traffic event.
private final class StreamTally {
    var status: UInt32 = 0
    var bytesIn = 0
    var bytesOut = 0
    /// The answer's head said it streams.
    var streaming = false
    /// The exchange, until its answer turns out to stream (then the bus holds it) or comes whole.
    var handle: AppExchangeHandle?
}

/// The sidecar's request metrics, with the handles for each status made once.
private final class SidecarMetrics: Sendable {
    private let dimensions: [(String, String)]
    private let duration: Timer
    private let requests = Mutex<[String: Counter]>([:])

    init(className: String, instanceID: String) {
        dimensions = [("class", className), ("instance", instanceID)]
        duration = Timer(label: "berth_sidecar_request_duration_seconds", dimensions: dimensions)
    }

    func record(_ response: Response, latency: Duration) {
        let status = response.error?.code.name ?? String(response.status)
        let counter = requests.withLock { counters in
            if let counter = counters[status] { return counter }
            let counter = Counter(label: "berth_sidecar_requests_total", dimensions: dimensions + [("status", status)])
            counters[status] = counter
            return counter
        }
        counter.increment()
        duration.record(latency)
    }
}
