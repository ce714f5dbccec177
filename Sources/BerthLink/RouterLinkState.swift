/// When a link to one router says hello, heartbeats, and gives up on a router gone quiet: the rules alone, with no
/// socket and no clock, so that they are tested in microseconds (`RouterLink` performs what they decide).
///
/// Liveness as the zguide's Paranoid Pirate: a router silent for `liveness` heartbeat intervals is lost, and the link
/// connects again. Until the router first answers, hello (READY, or an edge's request for the directory) is repeated
/// often: with ZMQ_IMMEDIATE a hello sent before the connection completes is dropped.
public struct RouterLinkState: Sendable {
    /// What the owner of the link must do now.
    public enum Action: Sendable, Equatable {
        /// Send the hello: READY, or a request for the directory.
        case hello
        case heartbeat
        /// The router was silent too long: it counts as gone; drop the socket and connect a new one.
        case reconnect
    }

    public enum Phase: Sendable, Equatable {
        /// Hello sent, no answer yet.
        case greeting
        /// The router answers.
        case up
        /// Leaving: heartbeats go on, hello never again.
        case leaving
    }

    public let heartbeatInterval: Duration
    public let liveness: Int
    public let helloInterval: Duration
    public private(set) var phase: Phase = .greeting
    private var lastHeard: ContinuousClock.Instant
    private var nextHeartbeat: ContinuousClock.Instant
    private var nextHello: ContinuousClock.Instant
    /// Whether the router answered since the link was made: a link never up is not reported lost.
    public private(set) var everUp = false

    public init(now: ContinuousClock.Instant, heartbeatInterval: Duration, liveness: Int = 3, helloInterval: Duration = .milliseconds(50)) {
        self.heartbeatInterval = heartbeatInterval
        self.liveness = liveness
        self.helloInterval = helloInterval
        lastHeard = now
        nextHeartbeat = now + heartbeatInterval
        nextHello = now
    }

    /// Anything from the router proves it alive.
    public mutating func heard(now: ContinuousClock.Instant) {
        lastHeard = now
        everUp = true
        if phase == .greeting { phase = .up }
    }

    /// The router does not know us (it restarted, or declared us dead): say hello again, now.
    public mutating func mustGreetAgain(now: ContinuousClock.Instant) {
        guard phase != .leaving else { return }
        phase = .greeting
        nextHello = now
    }

    public mutating func leave() {
        phase = .leaving
    }

    /// What is due at `now`, and when to look again.
    public mutating func tick(now: ContinuousClock.Instant) -> (actions: [Action], next: ContinuousClock.Instant) {
        var actions: [Action] = []
        if lastHeard.duration(to: now) > heartbeatInterval * liveness {
            actions.append(.reconnect)
            lastHeard = now
            if phase != .leaving { phase = .greeting }
            nextHello = now
        }
        if phase == .greeting && now >= nextHello {
            actions.append(.hello)
            nextHello = now + helloInterval
        }
        if now >= nextHeartbeat {
            actions.append(.heartbeat)
            nextHeartbeat = now + heartbeatInterval
        }
        let deadline = lastHeard + heartbeatInterval * liveness
        var next = min(nextHeartbeat, deadline)
        if phase == .greeting { next = min(next, nextHello) }
        return (actions, next)
    }
}
