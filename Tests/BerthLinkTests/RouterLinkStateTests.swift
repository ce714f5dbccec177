import BerthLink
import Testing

/// The rules of a link to a router, with a clock the test moves: no sockets, no sleeps.
@Suite struct RouterLinkStateTests {
    let start = ContinuousClock.now

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    @Test func helloRepeatsUntilTheRouterAnswersThenHeartbeatsOnly() {
        var state = RouterLinkState(now: start, heartbeatInterval: .seconds(1))
        #expect(state.tick(now: at(0)).actions == [.hello])
        #expect(state.tick(now: at(10)).actions == [])
        #expect(state.tick(now: at(50)).actions == [.hello])
        state.heard(now: at(60))
        #expect(state.phase == .up)
        #expect(state.tick(now: at(200)).actions == [])
        #expect(state.tick(now: at(1_000)).actions == [.heartbeat])
    }

    @Test func aRouterSilentForThreeIntervalsIsLostAndGreetedAgain() {
        var state = RouterLinkState(now: start, heartbeatInterval: .seconds(1))
        state.heard(now: at(0))
        #expect(!state.tick(now: at(2_999)).actions.contains(.reconnect))
        let (actions, _) = state.tick(now: at(3_001))
        #expect(actions.contains(.reconnect))
        #expect(actions.contains(.hello))
        #expect(state.phase == .greeting)
    }

    @Test func aRouterThatForgotUsIsGreetedAtOnce() {
        var state = RouterLinkState(now: start, heartbeatInterval: .seconds(1))
        state.heard(now: at(0))
        state.mustGreetAgain(now: at(500))
        #expect(state.tick(now: at(500)).actions == [.hello])
    }

    @Test func aLeavingLinkNeverSaysHelloAgain() {
        var state = RouterLinkState(now: start, heartbeatInterval: .seconds(1))
        state.heard(now: at(0))
        state.leave()
        state.mustGreetAgain(now: at(10))
        #expect(state.tick(now: at(3_500)).actions == [.reconnect, .heartbeat])
    }

    @Test func routerListsSplitOnCommas() {
        #expect(RouterList.parse("tcp://a:1") == ["tcp://a:1"])
        #expect(RouterList.parse("tcp://a:1, ipc:///b,") == ["tcp://a:1", "ipc:///b"])
        #expect(RouterList.parse(" , ") == [])
    }
}
