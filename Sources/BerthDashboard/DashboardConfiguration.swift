import BerthBus

/// Where the dashboard listens, what it watches, and how much it holds for each browser.
public struct DashboardConfiguration: Sendable {
    /// The address to serve HTTP on.
    public var host = "127.0.0.1"
    /// 0: any free port (see `DashboardService`'s `onServerRunning`).
    public var port = 8788
    /// The router's events-out endpoint (XPUB).
    public var eventsOut = "tcp://127.0.0.1:7703"
    /// The edge's base URL, for the page's "send a request" button (`POST /send` is forwarded there).
    public var edge = "http://127.0.0.1:8787"
    /// Messages held for each browser that reads slowly before newer ones are dropped for it.
    public var clientBufferLimit = 1_024
    /// Traffic events a newly connected browser gets first, so that its network log does not start empty.
    public var replayLimit = 200
    /// How often every browser gets the counters (`event: stats`).
    public var statsInterval: Duration = .seconds(1)
    /// How often a keep-alive comment goes down every stream.
    public var keepAliveInterval: Duration = .seconds(15)
    /// The largest edge response `POST /send` passes back to the page.
    public var maxProxiedBodyBytes = 1 << 20
    /// The mesh's CURVE settings, when it has them.
    public var security: BusSecurity?

    public init() {}
}
