import BerthWire
import Testing

@testable import BerthSidecar

/// The sidecar's bookkeeping of exchanges: capacity, load, and when a drain is over. No sockets, no sleeps.
@Suite struct SidecarCoreTests {
    let start = ContinuousClock.now
    let edge: [UInt8] = [7]
    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }
    func request(_ id: UInt64) -> Request { Request(id: id, target: Target(className: "A"), method: "GET", path: "/") }

    @Test func pastItsCapacityASidecarRefusesAsSaturatedAndSaysItsLoad() {
        var core = SidecarCore(capacity: 2, servedBy: Endpoint(className: "A", instanceID: "a-0"), edgeMemory: .seconds(60))
        #expect(core.request(request(1)) == .forward)
        #expect(core.request(request(2)) == .forward)
        guard case .refuse(let refusal) = core.request(request(3)) else {
            Issue.record("the third request should be refused")
            return
        }
        #expect(refusal.error?.code == .saturated)
        #expect(refusal.error?.component == "sidecar")
        #expect(refusal.inFlight == 2)
        var answer = Response(id: 1, status: 200)
        core.answered(&answer, now: at(1))
        #expect(answer.inFlight == 1)
        #expect(core.heartbeat(from: edge, now: at(1)).inFlight == 1)
    }

    @Test func aDrainTellsTheEdgesItKnowsAndEndsWhenNothingIsInFlight() {
        var core = SidecarCore(capacity: 4, servedBy: Endpoint(), edgeMemory: .seconds(60))
        _ = core.request(request(1))
        _ = core.heartbeat(from: edge, now: at(5))
        #expect(core.drain(now: at(10), leaveGrace: .seconds(1), timeout: .seconds(10)) == [edge])
        // A request in transit is still served.
        #expect(core.request(request(2)) == .forward)
        var answer = Response(id: 1, status: 200)
        core.answered(&answer, now: at(30))
        core.answered(&answer, now: at(1_000))
        #expect(core.tick(now: at(500)).drained == false, "edges get a heartbeat interval to hear it leaves")
        #expect(core.tick(now: at(1_020)).drained == false, "the last answer gets time to leave the process")
        #expect(core.tick(now: at(1_060)).drained == true)
        #expect(core.tick(now: at(1_070)).drained == false, "said once")
    }

    @Test func aDrainThatRunsOutAbandonsWhatIsLeft() {
        var core = SidecarCore(capacity: 4, servedBy: Endpoint(), edgeMemory: .seconds(60))
        _ = core.request(request(1))
        _ = core.drain(now: at(0), leaveGrace: .seconds(1), timeout: .seconds(10))
        let result = core.tick(now: at(10_000))
        #expect(result.drained && result.abandoned == 1)
    }
}
