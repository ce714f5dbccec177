import BerthBus
import Logging

/// Links to edges that take answers straight from sidecars (`Request.replyTo`): one DEALER per endpoint, made on
/// the first answer for it, so an answer skips the router — like a load balancer's direct server return.
///
/// An answer goes this way only when the link is up and has room; otherwise the caller sends it through the router.
/// A link that never comes up (an endpoint on another machine) costs a reconnect attempt now and then, and a link
/// unused for `idleLimit` is closed.
final class DirectReplies {
    private struct Link {
        let socket: Socket
        var lastUsed: ContinuousClock.Instant
    }

    static let idleLimit: Duration = .seconds(60)
    static let maxLinks = 64
    private var links: [String: Link] = [:]
    /// Endpoints libzmq refused to connect to, so that a bad one is reported once.
    private var refused: Set<String> = []
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// The links' sockets, for the bus loop to poll: their descriptors tell when a connection completes.
    private(set) var sockets: [Socket] = [] {
        didSet { generation &+= 1 }
    }
    /// Changes whenever `sockets` does.
    private(set) var generation = 0

    /// Sends `frames` on the link to `endpoint`; false when they must go another way (and they are left intact).
    func send(_ frames: [Frame], to endpoint: String, now: ContinuousClock.Instant = .now) -> Bool {
        guard let socket = link(to: endpoint, now: now) else { return false }
        do {
            return try socket.send(frames)
        } catch {
            logger.debug("direct answer failed; closing the link", metadata: ["berth.reply_to": "\(endpoint)", "berth.error": "\(error)"])
            close(endpoint)
            return false
        }
    }

    private func link(to endpoint: String, now: ContinuousClock.Instant) -> Socket? {
        if let link = links[endpoint] {
            links[endpoint]!.lastUsed = now
            return link.socket
        }
        guard !refused.contains(endpoint) else { return nil }
        guard endpoint.hasPrefix("tcp://") || endpoint.hasPrefix("ipc://") else {
            refuse(endpoint, because: "only tcp:// and ipc:// endpoints take direct answers")
            return nil
        }
        if links.count >= Self.maxLinks, let oldest = links.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key {
            close(oldest)
        }
        var options = SocketOptions()
        options.immediate = true
        options.reconnectIntervalMax = 5_000
        do {
            let socket = try Socket(.dealer, options: options)
            try socket.connect(endpoint)
            links[endpoint] = Link(socket: socket, lastUsed: now)
            sockets.append(socket)
            return socket
        } catch {
            refuse(endpoint, because: "\(error)")
            return nil
        }
    }

    private func refuse(_ endpoint: String, because reason: String) {
        logger.warning("cannot link to an edge's reply endpoint; its answers go through the router", metadata: [
            "berth.reply_to": "\(endpoint)", "berth.error": "\(reason)",
        ])
        if refused.count >= 1_024 { refused.removeAll() }
        refused.insert(endpoint)
    }

    /// Closes the links unused for `idleLimit`.
    func expire(now: ContinuousClock.Instant) {
        for (endpoint, link) in links where link.lastUsed.duration(to: now) > Self.idleLimit {
            close(endpoint)
        }
    }

    private func close(_ endpoint: String) {
        guard let link = links.removeValue(forKey: endpoint) else { return }
        sockets.removeAll { $0 === link.socket }
    }
}
