import BerthBus
import BerthWire
import Logging

/// A link to one router, as a sidecar and an edge both keep one per router: a DEALER that says hello, heartbeats,
/// hears the router's answers, and connects again when the router goes quiet (the rules are `RouterLinkState`'s).
public final class RouterLink {
    public let endpoint: String
    public private(set) var socket: Socket
    public private(set) var state: RouterLinkState
    private let logger: Logger
    private let security: BusSecurity?

    public init(endpoint: String, heartbeatInterval: Duration, liveness: Int, security: BusSecurity?, logger: Logger) throws(BusError) {
        self.endpoint = endpoint
        self.security = security
        var logger = logger
        logger[metadataKey: "berth.router"] = "\(endpoint)"
        self.logger = logger
        socket = try Self.connect(endpoint, security: security)
        state = RouterLinkState(now: .now, heartbeatInterval: heartbeatInterval, liveness: liveness)
    }

    private static func connect(_ endpoint: String, security: BusSecurity?) throws(BusError) -> Socket {
        var options = SocketOptions()
        options.immediate = true
        options.curve = security?.toRouter
        let socket = try Socket(.dealer, options: options)
        Authenticator.running()?.watch(socket)
        try socket.connect(endpoint)
        return socket
    }

    /// A message from the router: proves it alive, and is decoded (what is malformed is logged and dropped).
    public func received(_ frames: [Frame], now: ContinuousClock.Instant = .now) -> (envelope: Envelope, body: ArraySlice<Frame>)? {
        state.heard(now: now)
        guard let first = frames.first, let envelope = Envelope.decode(first, from: "router", logger: logger) else { return nil }
        return (envelope, frames.dropFirst())
    }

    /// The router asked us to say hello again (it does not know us).
    public func mustGreetAgain() {
        state.mustGreetAgain(now: .now)
    }

    public func leave() {
        state.leave()
    }

    /// Sends what is due; `hello` and `heartbeat` make the envelopes. Returns when to look again, and whether the
    /// socket changed (a reconnect), so that the owner polls the new one.
    public func tick(
        now: ContinuousClock.Instant, hello: () -> Envelope, heartbeat: () -> Envelope
    ) -> (next: ContinuousClock.Instant, reconnected: Bool) {
        let (actions, next) = state.tick(now: now)
        var reconnected = false
        for action in actions {
            switch action {
            case .hello:
                send(hello())
            case .heartbeat:
                send(heartbeat())
            case .reconnect:
                logger.warning("lost the router; connecting again")
                do {
                    socket = try Self.connect(endpoint, security: security)
                    reconnected = true
                } catch {
                    logger.error("cannot reconnect to the router", metadata: ["berth.error": "\(error)"])
                }
            }
        }
        return (next, reconnected)
    }

    /// Sends without blocking; a router that is not connected just misses it (IMMEDIATE), as heartbeats expect.
    public func send(_ envelope: Envelope) {
        do {
            if try !socket.send([Frame(envelope.encoded())]) {
                logger.trace("router not connected; message not sent")
            }
        } catch {
            logger.warning("send to router failed", metadata: ["berth.error": "\(error)"])
        }
    }
}

/// `--router` on edges and sidecars: one router's endpoint, or several routers' separated by commas.
public enum RouterList {
    public static func parse(_ text: String) -> [String] {
        text.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
