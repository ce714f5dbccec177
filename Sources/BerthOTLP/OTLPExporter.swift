import AsyncHTTPClient
import BerthTap
import BerthWire
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// Sends the spans of a process (its traffic events) to an OpenTelemetry collector over OTLP/HTTP, JSON encoded
/// (`POST <endpoint>/v1/traces`), in batches: every half second, or sooner once `batchSize` spans wait.
///
/// Recording never waits and never fails a request: past `maxQueued` spans waiting, new ones are dropped and counted.
/// A collector that is down or slow loses the batch it was sent (logged at debug, the count at warning once a minute).
public final class OTLPExporter: SpanSink, Service, Sendable {
    public struct Configuration: Sendable {
        /// The collector's OTLP/HTTP endpoint, e.g. `http://127.0.0.1:4318`; `/v1/traces` is added unless it is there.
        public var endpoint: String
        /// `service.name` of the resource: `berth-edge`, `berth-sidecar`.
        public var serviceName: String
        /// `service.instance.id`: the edge's name, the sidecar's `class/instance`.
        public var instance: String
        public var interval: Duration = .milliseconds(500)
        public var batchSize = 512
        public var maxQueued = 8_192

        public init(endpoint: String, serviceName: String, instance: String) {
            self.endpoint = endpoint
            self.serviceName = serviceName
            self.instance = instance
        }

        var url: String { endpoint.hasSuffix("/v1/traces") ? endpoint : endpoint.trimmingSuffix("/") + "/v1/traces" }
    }

    private struct Queue {
        var spans: [TrafficEvent] = []
        var dropped = 0
    }

    private let configuration: Configuration
    private let logger: Logger
    private let queue = Mutex(Queue())

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func record(_ event: TrafficEvent) {
        queue.withLock { queue in
            guard queue.spans.count < configuration.maxQueued else { return queue.dropped += 1 }
            queue.spans.append(event)
        }
    }

    public func run() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var lastWarning: ContinuousClock.Instant?
        // Until shutdown, then once more for what is left.
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: configuration.interval)
            await flush(client, warnedAt: &lastWarning)
        }
        await flush(client, warnedAt: &lastWarning)
        try? await client.shutdown()
    }

    private func flush(_ client: HTTPClient, warnedAt lastWarning: inout ContinuousClock.Instant?) async {
        while true {
            let (batch, dropped) = queue.withLock { queue in
                let batch = Array(queue.spans.prefix(configuration.batchSize))
                queue.spans.removeFirst(batch.count)
                defer { queue.dropped = 0 }
                return (batch, queue.dropped)
            }
            if dropped > 0, lastWarning.map({ $0.duration(to: .now) > .seconds(60) }) ?? true {
                logger.warning("spans dropped: the collector does not keep up", metadata: ["berth.dropped": "\(dropped)"])
                lastWarning = .now
            }
            guard !batch.isEmpty else { return }
            var request = HTTPClientRequest(url: configuration.url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: OTLPJSON.request(batch, service: configuration.serviceName, instance: configuration.instance)))
            do {
                let response = try await client.execute(request, timeout: .seconds(5))
                _ = try await response.body.collect(upTo: 1 << 20)
                if !(200..<300).contains(response.status.code) {
                    logger.debug("the collector refused spans", metadata: ["berth.status": "\(response.status.code)", "berth.spans": "\(batch.count)"])
                }
            } catch {
                logger.debug("cannot send spans to the collector", metadata: ["berth.error": "\(error)", "berth.spans": "\(batch.count)"])
            }
            if batch.count < configuration.batchSize { return }
        }
    }
}

/// OTLP's JSON encoding of an `ExportTraceServiceRequest` (opentelemetry-proto, trace/v1): trace and span ids as hex,
/// 64-bit integers as strings, enums as numbers.
enum OTLPJSON {
    static func request(_ events: [TrafficEvent], service: String, instance: String) -> String {
        let spans = events.filter { TraceParent.isTraceID($0.traceID) && TraceParent.isSpanID($0.spanID) }.map(span)
        var resource = JSONObject()
        resource.add("attributes", raw: "[" + attribute("service.name", service) + "," + attribute("service.instance.id", instance) + "]")
        var scope = JSONObject()
        scope.add("name", string: "berth")
        var scopeSpans = JSONObject()
        scopeSpans.add("scope", raw: scope.text)
        scopeSpans.add("spans", raw: "[" + spans.joined(separator: ",") + "]")
        var resourceSpans = JSONObject()
        resourceSpans.add("resource", raw: resource.text)
        resourceSpans.add("scopeSpans", raw: "[" + scopeSpans.text + "]")
        var request = JSONObject()
        request.add("resourceSpans", raw: "[" + resourceSpans.text + "]")
        return request.text
    }

    static func span(_ event: TrafficEvent) -> String {
        let end = event.timeMicroseconds * 1_000
        let start = (event.timeMicroseconds &- event.latencyMicroseconds) * 1_000
        // A sidecar serves (SERVER, 2); the edge and an egress listener call (CLIENT, 3), except for the client's own
        // request to a Worker, which the edge serves.
        let kind: UInt32 = event.kind == .sidecar || event.source.className == EventNames.clientClass ? 2 : 3
        let failed = event.status >= 500 || event.error != nil
        var attributes = [
            attribute("http.request.method", event.method), attribute("url.path", event.path),
            #"{"key":"http.response.status_code","value":{"intValue":"\#(event.status)"}}"#,
            attribute("berth.source", name(event.source)), attribute("berth.destination", name(event.destination)),
            attribute("berth.request_id", String(event.requestID)),
        ]
        if !event.xRequestID.isEmpty { attributes.append(attribute("berth.x_request_id", event.xRequestID)) }
        if let error = event.error { attributes.append(attribute("berth.error", "\(error.code.name): \(error.message)")) }
        var span = JSONObject()
        span.add("traceId", string: event.traceID)
        span.add("spanId", string: event.spanID)
        if !event.parentSpanID.isEmpty { span.add("parentSpanId", string: event.parentSpanID) }
        span.add("name", string: "\(event.method) \(name(event.destination))")
        span.add("kind", number: kind)
        span.add("startTimeUnixNano", uint64: start)
        span.add("endTimeUnixNano", uint64: end)
        span.add("attributes", raw: "[" + attributes.joined(separator: ",") + "]")
        span.add("status", raw: #"{"code":\#(failed ? 2 : 1)}"#)
        return span.text
    }

    static func name(_ endpoint: Endpoint) -> String {
        endpoint.instanceID.isEmpty ? endpoint.className : "\(endpoint.className)/\(endpoint.instanceID)"
    }

    static func attribute(_ key: String, _ value: String) -> String {
        var text = JSONObject()
        text.add("key", string: key)
        var stringValue = JSONObject()
        stringValue.add("stringValue", string: value)
        text.add("value", raw: stringValue.text)
        return text.text
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
