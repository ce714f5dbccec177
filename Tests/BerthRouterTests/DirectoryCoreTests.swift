@testable import BerthRouter
import BerthWire
import Testing

/// The router's directory as a state machine: READY, heartbeats, leaving and expiry in; updates and answers out.
@Suite struct DirectoryCoreTests {
    let start = ContinuousClock.now
    let sidecarA: [UInt8] = [1]
    let sidecarB: [UInt8] = [2]
    let edge: [UInt8] = [9]

    func ready(_ instance: String, endpoint: String = "ipc:///x") -> Ready {
        Ready(className: "A", instanceID: instance, ports: [80], capacity: 4, heartbeatMilliseconds: 1_000, endpoint: endpoint)
    }

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    func updates(_ actions: [DirectoryCore.Action]) -> [DirectoryUpdate] {
        actions.compactMap {
            if case .toEdge(_, .directoryUpdate(let update)) = $0 { return update }
            return nil
        }
    }

    @Test func anEdgeGetsTheSnapshotThenNumberedUpdates() {
        var core = DirectoryCore(epoch: 7, deadAfter: .seconds(3))
        _ = core.ready(ready("a-0"), from: sidecarA, now: at(0))
        let snapshot = core.directoryRequest(fromEdge: edge, now: at(1))
        #expect(snapshot == [.toEdge(identity: edge, .directory(Directory(epoch: 7, sequence: 1, instances: [ready("a-0")])))])
        let joined = updates(core.ready(ready("a-1"), from: sidecarB, now: at(2)))
        #expect(joined == [DirectoryUpdate(epoch: 7, sequence: 2, instance: ready("a-1"), removed: false)])
        let left = updates(core.leaving(sidecar: sidecarB, reason: "draining"))
        #expect(left == [DirectoryUpdate(epoch: 7, sequence: 3, instance: ready("a-1"), removed: true)])
    }

    @Test func aSidecarThatMissesItsHeartbeatsLeavesTheDirectory() {
        var core = DirectoryCore(epoch: 1, deadAfter: .seconds(3))
        _ = core.directoryRequest(fromEdge: edge, now: at(0))
        _ = core.ready(ready("a-0"), from: sidecarA, now: at(0))
        _ = core.heartbeat(fromSidecar: sidecarA, now: at(1_000))
        _ = core.heartbeat(fromEdge: edge, now: at(2_000))
        #expect(updates(core.tick(now: at(3_500))).isEmpty)
        let removed = updates(core.tick(now: at(4_001)))
        #expect(removed.map(\.removed) == [true])
        #expect(core.instanceCount == 0)
    }

    @Test func anUnknownSidecarIsAskedToRegisterAndAnUnknownEdgeToAskAgain() {
        var core = DirectoryCore(epoch: 1, deadAfter: .seconds(3))
        #expect(core.heartbeat(fromSidecar: sidecarA, now: at(0)) == [
            .toSidecar(identity: sidecarA, .disconnect(Disconnect(reason: "unknown sidecar: send READY"))),
        ])
        #expect(core.heartbeat(fromEdge: edge, now: at(0)) == [
            .toEdge(identity: edge, .disconnect(Disconnect(reason: "unknown edge: ask for the directory"))),
        ])
    }

    @Test func theSameInstanceOnANewConnectionReplacesTheOld() {
        var core = DirectoryCore(epoch: 1, deadAfter: .seconds(3))
        _ = core.directoryRequest(fromEdge: edge, now: at(0))
        _ = core.ready(ready("a-0", endpoint: "ipc:///old"), from: sidecarA, now: at(0))
        let replaced = updates(core.ready(ready("a-0", endpoint: "ipc:///new"), from: sidecarB, now: at(10)))
        #expect(replaced.map(\.instance.endpoint) == ["ipc:///new"])
        #expect(core.instanceCount == 1)
        // The old connection's heartbeat is a stranger's now.
        #expect(core.heartbeat(fromSidecar: sidecarA, now: at(20)).count == 1)
        #expect(updates(core.tick(now: at(3_020))).isEmpty || core.instanceCount == 0)
    }

    @Test func aRepeatedReadyChangesNothing() {
        var core = DirectoryCore(epoch: 1, deadAfter: .seconds(3))
        _ = core.directoryRequest(fromEdge: edge, now: at(0))
        _ = core.ready(ready("a-0"), from: sidecarA, now: at(0))
        #expect(updates(core.ready(ready("a-0"), from: sidecarA, now: at(50))).isEmpty)
        #expect(core.sequence == 1)
    }
}
