import BerthBus
import BerthMetrics
import CoreMetrics
import BerthWire
import Foundation
import Logging
import ServiceLifecycle

/// `berth-sidecar` as a service: one per container instance, between the bus and the app's port.
public struct SidecarService: Service {
    private let configuration: SidecarConfiguration
    private let logger: Logger
    private let metrics = MetricsCache()

    public init(configuration: SidecarConfiguration, logger: Logger) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "berth.container"] = "\(configuration.className)"
        logger[metadataKey: "berth.instance"] = "\(configuration.instanceID)"
        self.logger = logger
    }

    public func run() async throws {
        let (requests, continuation) = AsyncStream.makeStream(of: IncomingRequest.self)
        let configuration = configuration
        let logger = logger
        let bus = BusLoop(name: "berth-sidecar") {
            try SidecarBus(configuration: configuration, logger: logger, requests: continuation)
        }
        let forwarder = AppForwarder(configuration: configuration)
        let supervisor = configuration.app.map { app in
            AppSupervisor(
                app: app, sidecar: configuration, logger: logger,
                probe: { path in await forwarder.probe(path: path, timeout: app.readinessTimeout) },
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
        logger.info("sidecar started", metadata: ["berth.router": "\(configuration.router)", "berth.port": "\(configuration.port)"])

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await bus.run() }
            if let supervisor {
                group.addTask { await supervisor.run() }
            }
            group.addTask {
                await withGracefulShutdownHandler {
                    await withDiscardingTaskGroup { requestsGroup in
                        for await incoming in requests {
                            requestsGroup.addTask { await handle(incoming, forwarder: forwarder, supervisor: supervisor, bus: bus) }
                        }
                        // The stream ends once the drain is over; whatever still runs then is past the drain timeout.
                        requestsGroup.cancelAll()
                    }
                } onGracefulShutdown: {
                    bus.execute { $0.drain() }
                }
                await supervisor?.shutdown()
                await forwarder.shutdown()
                bus.stop()
            }
        }
    }

    private func handle(_ incoming: IncomingRequest, forwarder: AppForwarder, supervisor: AppSupervisor?, bus: BusLoop<SidecarBus>) async {
        let started = ContinuousClock.now
        let outcome: AppForwarder.Outcome
        do {
            try await supervisor?.begin()
            outcome = await forwarder.forward(incoming)
            await supervisor?.finish()
        } catch {
            let message = (error as? AppUnavailable)?.message ?? "\(error)"
            outcome = forwarder.failure(incoming.request, .appUnavailable, message, incoming.body.byteCount)
        }
        let latency = started.duration(to: .now)
        let request = incoming.request
        let response = outcome.response
        let dimensions = [("class", configuration.className), ("instance", configuration.instanceID)]
        metrics.counter("berth_sidecar_requests_total", dimensions + [("status", response.error?.code.name ?? String(response.status))]).increment()
        metrics.timer("berth_sidecar_request_duration_seconds", dimensions).record(latency)
        if let error = response.error {
            logger.debug("request failed", metadata: ["berth.request.id": "\(request.id)", "berth.error": "\(error.message)"])
        }
        let event = TrafficEvent(
            timeMicroseconds: UInt64(Date().timeIntervalSince1970 * 1_000_000),
            requestID: request.id, traceID: request.traceID,
            source: request.source,
            destination: Endpoint(className: configuration.className, instanceID: configuration.instanceID, port: request.port == 0 ? UInt32(configuration.port) : request.port),
            method: request.method, path: request.path, status: response.status,
            bytesIn: UInt64(outcome.bytesIn), bytesOut: UInt64(outcome.body.byteCount),
            latencyMicroseconds: UInt64(latency.components.seconds * 1_000_000 + latency.components.attoseconds / 1_000_000_000_000),
            kind: .sidecar, error: response.error
        )
        let topic = "traffic.\(configuration.className).\(configuration.instanceID)"
        bus.execute { sidecar in
            sidecar.respond(response, body: outcome.body)
            sidecar.publish(topic: topic, event: .traffic(event))
        }
    }
}
