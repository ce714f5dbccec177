import AsyncHTTPClient
import BerthTap
import BerthWire
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// `berth dashboard` as a service: follows the mesh's event stream and serves a live page of it over HTTP.
///
/// | route | what |
/// |---|---|
/// | `GET /` | the page: a card per container, the network log, a button that sends a request through the mesh |
/// | `GET /events` | server-sent events: one `data:` line per event (as `berth tap --json`), `event: stats` every second; traffic events have an `id:`, and the recent ones after `Last-Event-ID` (or `?after=`) come first |
/// | `GET /stats` | every container's counters as JSON (`StatsSnapshot`) |
/// | `GET /health` | `{"status":"ok",…}` with the number of browsers connected and messages dropped for slow ones |
/// | `POST /send?path=/send` | `GET <edge><path>`, for the page's button |
///
/// One subscription feeds every browser through a `Broadcaster`. On graceful shutdown the event streams end, the
/// server finishes, then the subscription stops.
public struct DashboardService: Service {
    private let configuration: DashboardConfiguration
    private let logger: Logger
    private let onServerRunning: @Sendable (_ port: Int) async -> Void

    /// - Parameter onServerRunning: called with the port once the server listens (useful with port 0).
    public init(
        configuration: DashboardConfiguration,
        logger: Logger,
        onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.onServerRunning = onServerRunning
    }

    public func run() async throws {
        let configuration = configuration
        let logger = logger
        let onServerRunning = onServerRunning
        let shared = SharedState(recentLimit: configuration.replayLimit)
        let broadcaster = Broadcaster(
            bufferLimit: configuration.clientBufferLimit,
            replayLimit: configuration.replayLimit,
            droppedMessage: { count in ServerSentEvents.message(event: "dropped", data: "{\"dropped\":\(count)}") }
        )
        let client = EdgeProxy.makeClient(logger: logger)
        let proxy = EdgeProxy(edge: configuration.edge, maxBodyBytes: configuration.maxProxiedBodyBytes, client: client)
        let router = Self.router(configuration: configuration, shared: shared, broadcaster: broadcaster, proxy: proxy)
        let app = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                logger.info("dashboard listening", metadata: [
                    "berth.listen": "http://\(configuration.host):\(port)/", "berth.events_out": "\(configuration.eventsOut)",
                ])
                await onServerRunning(port)
            },
            logger: logger
        )

        enum Part { case server, subscription, ticker, shutdownWatch }
        do {
            try await withThrowingTaskGroup(of: Part.self) { group in
                group.addTask {
                    try await app.run()
                    return .server
                }
                group.addTask {
                    try await Self.follow(configuration: configuration, shared: shared, broadcaster: broadcaster, logger: logger)
                    return .subscription
                }
                group.addTask {
                    try await Self.tick(configuration: configuration, shared: shared, broadcaster: broadcaster)
                    return .ticker
                }
                group.addTask {
                    // Event streams never end by themselves; ending them lets the server finish its graceful shutdown.
                    try? await gracefulShutdown()
                    await broadcaster.close()
                    return .shutdownWatch
                }
                while let part = try await group.next(), part != .server {}
                group.cancelAll()
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    // MARK: - The event stream

    /// Reads the mesh's events until cancelled: counts them, and sends each to every browser.
    private static func follow(
        configuration: DashboardConfiguration, shared: SharedState, broadcaster: Broadcaster, logger: Logger
    ) async throws {
        let subscriber = TapSubscriber(configuration: TapConfiguration(endpoint: configuration.eventsOut, security: configuration.security), logger: logger)
        let formatter = JSONEventFormatter()
        try await subscriber.withEvents { items in
            for try await item in items {
                switch item {
                case .event(let tapped):
                    let line = formatter.line(tapped)
                    let id = shared.mutex.withLock { $0.record(tapped.event, json: line) }
                    await broadcaster.broadcast(ServerSentEvents.message(id: id, data: line), id: id)
                case .malformed(let warning):
                    // The first ten, then each time the count doubles, so that a broken publisher cannot flood the log.
                    if warning.count <= 10 || warning.count & (warning.count - 1) == 0 {
                        logger.warning("\(warning)")
                    }
                case .dropped(let count):
                    logger.warning("dropped \(count) events: the dashboard could not keep up with the event stream")
                }
            }
        }
    }

    /// Sends the counters to every browser each `statsInterval`, and a keep-alive comment each `keepAliveInterval`.
    private static func tick(configuration: DashboardConfiguration, shared: SharedState, broadcaster: Broadcaster) async throws {
        let clock = ContinuousClock()
        var nextKeepAlive = clock.now.advanced(by: configuration.keepAliveInterval)
        while true {
            try await Task.sleep(for: configuration.statsInterval)
            shared.mutex.withLock { $0.sample(clock.now) }
            guard await broadcaster.clientCount > 0 else { continue }
            await broadcaster.broadcast(ServerSentEvents.message(event: "stats", data: statsJSON(shared.mutex.withLock { $0.snapshot() })))
            if clock.now >= nextKeepAlive {
                nextKeepAlive = clock.now.advanced(by: configuration.keepAliveInterval)
                await broadcaster.broadcast(ServerSentEvents.keepAlive)
            }
        }
    }

    // MARK: - HTTP

    private static func router(
        configuration: DashboardConfiguration, shared: SharedState, broadcaster: Broadcaster, proxy: EdgeProxy
    ) -> Router<BasicRequestContext> {
        let router = Router()
        let page = DashboardPage(edge: configuration.edge)

        router.get("/") { _, _ in
            // The page comes with what is known now, so that it is complete when it has loaded; the event stream
            // then goes on from the last traffic event it holds.
            let (stats, recent, last) = shared.mutex.withLock { state in
                (state.snapshot(), state.recent.map(\.json), state.lastID)
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: page.render(stats: statsJSON(stats), recent: recent, lastID: last)))
            )
        }
        router.get("/stats") { _, _ in
            json(statsJSON(shared.mutex.withLock { $0.snapshot() }))
        }
        router.get("/health") { _, _ in
            let events = shared.mutex.withLock { $0.view.events }
            let clients = await broadcaster.clientCount
            let dropped = await broadcaster.droppedTotal
            return json("{\"status\":\"ok\",\"events\":\(events),\"clients\":\(clients),\"dropped\":\(dropped)}")
        }
        router.get("/events") { request, _ in
            let after = (request.headers[lastEventID] ?? request.uri.queryParameters["after"].map(String.init)).flatMap { UInt64($0) }
            let client = await broadcaster.connect(after: after)
            var first = ServerSentEvents.retry(milliseconds: 2_000)
            var stats = ServerSentEvents.message(event: "stats", data: statsJSON(shared.mutex.withLock { $0.snapshot() }))
            first.writeBuffer(&stats)
            let opening = first
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    do {
                        try await writer.write(opening)
                        for await message in client.messages {
                            try await writer.write(message)
                        }
                        try await writer.finish(nil)
                    } catch {
                        // The browser went away: a write to its closed connection failed.
                        await broadcaster.disconnect(client.id)
                        throw error
                    }
                    await broadcaster.disconnect(client.id)
                }
            )
        }
        router.post("/send") { request, _ in
            await proxy.forward(request)
        }
        return router
    }

    private static let lastEventID = HTTPField.Name("Last-Event-ID")!

    private static func statsJSON(_ snapshot: StatsSnapshot) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding these plain values cannot fail.
        let data = (try? encoder.encode(snapshot)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private static func json(_ text: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }
}

/// What the subscription learns and the requests read: the mesh view and the recent traffic, numbered.
struct DashboardState: Sendable {
    var view = MeshView()
    /// The last traffic events as JSON, oldest first, for the page.
    var recent: [(id: UInt64, json: String)] = []
    let recentLimit: Int
    /// The id of the last traffic event; they are numbered from 1.
    var lastID: UInt64 = 0
    /// Requests served so far, sampled on every stats tick: the last few, for the rate.
    private var samples: [(time: ContinuousClock.Instant, served: UInt64)] = []

    init(recentLimit: Int) {
        self.recentLimit = recentLimit
    }

    mutating func sample(_ now: ContinuousClock.Instant) {
        if samples.count == 6 { samples.removeFirst() }
        samples.append((now, view.served))
    }

    /// The counters now, with the rate.
    func snapshot() -> StatsSnapshot {
        var snapshot = view.snapshot(timeMicroseconds: UInt64(Date().timeIntervalSince1970 * 1_000_000))
        snapshot.requestsPerSecond = requestsPerSecond
        return snapshot
    }

    var requestsPerSecond: Double? {
        guard let first = samples.first, let last = samples.last, last.time > first.time else { return nil }
        let elapsed = first.time.duration(to: last.time) / .milliseconds(1) / 1_000
        return Double(last.served - first.served) / elapsed
    }

    /// Counts `event`; a traffic event is numbered and remembered, and its id returned.
    mutating func record(_ event: Event, json: String) -> UInt64? {
        view.record(event)
        guard case .traffic = event else { return nil }
        lastID += 1
        if recentLimit > 0 {
            if recent.count == recentLimit { recent.removeFirst() }
            recent.append((lastID, json))
        }
        return lastID
    }
}

final class SharedState: Sendable {
    let mutex: Mutex<DashboardState>

    init(recentLimit: Int) {
        mutex = Mutex(DashboardState(recentLimit: recentLimit))
    }
}
