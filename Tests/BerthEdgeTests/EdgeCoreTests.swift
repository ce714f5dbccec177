import BerthWire
import Testing

@testable import BerthEdge

/// Every failure rule of the edge, as inputs to `EdgeCore` and the actions it returns: no sockets, no sleeps.
@Suite struct EdgeCoreTests {
    typealias Core = EdgeCore<String>

    let start = ContinuousClock.now
    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    static func ready(_ id: String, capacity: UInt32 = 2, className: String = "A") -> Ready {
        Ready(className: className, instanceID: id, ports: [80], capacity: capacity, heartbeatMilliseconds: 1_000, endpoint: "ipc:///\(id)")
    }

    /// A core that knows `instances` from router 0.
    func core(_ instances: [Ready], queueLimit: Int = 8) -> Core {
        var settings = Core.Settings()
        settings.queueLimit = queueLimit
        var core = Core(settings: settings, now: start, seed: 42)
        _ = core.directory(Directory(epoch: 1, sequence: 0, instances: instances), from: 0, now: start)
        return core
    }

    func request(_ id: UInt64, _ method: String = "GET", name: String? = nil, className: String = "A", timeout: UInt32 = 1_000) -> Request {
        Request(id: id, target: Target(className: className, instanceName: name), method: method, path: "/", timeoutMilliseconds: timeout)
    }

    /// The links the actions send on, in order.
    func sends(_ actions: [Core.Action]) -> [(link: Int, id: UInt64, attempt: UInt32)] {
        actions.compactMap { if case .send(let link, let request, _, _) = $0 { (link, request.id, request.attempt) } else { nil } }
    }

    func failures(_ actions: [Core.Action]) -> [(id: UInt64, code: ErrorCode)] {
        actions.compactMap { if case .fail(_, let request, let error) = $0 { (request.id, error.code) } else { nil } }
    }

    func delivered(_ actions: [Core.Action]) -> [UInt64] {
        actions.compactMap { if case .deliver(_, let request) = $0 { request.id } else { nil } }
    }

    func link(_ core: Core, _ id: String, className: String = "A") -> Int { core.member("\(className)/\(id)")!.link }

    func submit(_ core: inout Core, _ request: Request, now: Int = 0) -> [Core.Action] {
        core.submit(request, payload: "p\(request.id)", deadline: at(now) + .milliseconds(Int(request.timeoutMilliseconds)), now: at(now))
    }

    @Test func aRequestGoesToALiveInstanceAndItsAnswerIsDelivered() {
        var core = core([Self.ready("a-0")])
        let actions = submit(&core, request(1))
        #expect(actions.contains { if case .connect(_, "ipc:///a-0", _) = $0 { true } else { false } })
        #expect(sends(actions).map(\.id) == [1])
        let answer = core.response(Response(id: 1, status: 200), onLink: link(core, "a-0"), now: at(5))
        #expect(delivered(answer) == [1])
        #expect(core.pendingCount == 0)
    }

    @Test func noInstanceIs503AtOnce() {
        var core = core([Self.ready("a-0")])
        #expect(failures(submit(&core, request(1, className: "C"))).map(\.code) == [.noInstance])
    }

    @Test func beforeAnyDirectoryRequestsWaitThenFailAsRouterUnreachable() {
        var core = Core(settings: Core.Settings(), now: start, seed: 1)
        #expect(submit(&core, request(1, timeout: 10_000)).isEmpty)
        #expect(core.queued("A") == 1)
        let (actions, _) = core.tick(now: at(3_001))
        #expect(failures(actions).map(\.code) == [.routerUnreachable])
    }

    @Test func anEdgeThatStartsFollowingLateWaitsForItsFirstDirectoryFromThen() {
        var core = Core(settings: Core.Settings(), now: start, seed: 1)
        core.beginFollowing(now: at(60_000))
        #expect(submit(&core, request(1, timeout: 10_000), now: 60_000).isEmpty)
        #expect(core.queued("A") == 1)
        #expect(failures(core.tick(now: at(62_000)).actions).isEmpty)
        #expect(failures(core.tick(now: at(63_001)).actions).map(\.code) == [.routerUnreachable])
    }

    @Test func aDirectoryThatArrivesServesWhatWaited() {
        var core = Core(settings: Core.Settings(), now: start, seed: 1)
        _ = submit(&core, request(1))
        let actions = core.directory(Directory(epoch: 1, sequence: 0, instances: [Self.ready("a-0")]), from: 0, now: at(10))
        #expect(sends(actions).map(\.id) == [1])
    }

    @Test func everyInstanceFullQueuesUpToTheLimitThen503() {
        var core = core([Self.ready("a-0", capacity: 1)], queueLimit: 2)
        #expect(sends(submit(&core, request(1))).count == 1)
        #expect(submit(&core, request(2)).isEmpty)
        #expect(submit(&core, request(3)).isEmpty)
        #expect(failures(submit(&core, request(4))).map(\.code) == [.saturated])
        // An answer makes room: the first in the queue goes.
        let actions = core.response(Response(id: 1, status: 200), onLink: link(core, "a-0"), now: at(10))
        #expect(delivered(actions) == [1])
        #expect(sends(actions).map(\.id) == [2])
    }

    @Test func aFullSidecarRefusesAndTheRequestGoesToAnother() {
        var core = core([Self.ready("a-0"), Self.ready("a-1")])
        let first = sends(submit(&core, request(1))).first!
        let refusal = Response(id: 1, status: 0, error: MeshError(code: .saturated, message: "full", component: "sidecar"), inFlight: 2)
        let actions = core.response(refusal, onLink: first.link, now: at(1))
        let again = sends(actions)
        #expect(again.count == 1)
        #expect(again.first?.link != first.link)
        #expect(again.first?.attempt == 0, "the app never saw it: not a retry")
        #expect(delivered(actions).isEmpty)
    }

    @Test func anAppThatRefusedTheConnectionIsTriedOnAnotherInstanceWhateverTheMethod() {
        var core = core([Self.ready("a-0"), Self.ready("a-1")])
        let first = sends(submit(&core, request(1, "POST"))).first!
        let refused = Response(id: 1, status: 0, error: MeshError(code: .appUnreachable, message: "refused", component: "sidecar"))
        let actions = core.response(refused, onLink: first.link, now: at(1))
        #expect(sends(actions).map(\.attempt) == [1])
        #expect(sends(actions).first?.link != first.link)
        // A second refusal is the answer.
        let last = core.response(Response(id: 1, status: 0, error: refused.error), onLink: sends(actions).first!.link, now: at(2))
        #expect(delivered(last) == [1])
    }

    @Test func aRefusedConnectionWithNoOtherInstanceIsTheAnswer() {
        var core = core([Self.ready("a-0")])
        _ = submit(&core, request(1, "POST"))
        let refused = Response(id: 1, status: 0, error: MeshError(code: .appUnreachable, message: "refused", component: "sidecar"))
        #expect(delivered(core.response(refused, onLink: link(core, "a-0"), now: at(1))) == [1])
    }

    @Test func aLostLinkRetriesIdempotentRequestsAndFailsTheRestAsInstanceLost() {
        var core = core([Self.ready("a-0", capacity: 8), Self.ready("a-1", capacity: 8)])
        _ = submit(&core, request(1, "GET", name: "a-0"))
        _ = submit(&core, request(2, "POST", name: "a-0"))
        let lost = link(core, "a-0")
        // The sidecar answered something once: what it was sent was delivered.
        _ = core.heartbeat(inFlight: 2, onLink: lost, now: at(1))
        let actions = core.linkLost(lost, reason: "broke its connection", now: at(2))
        #expect(failures(actions).map(\.id) == [2])
        #expect(failures(actions).map(\.code) == [.instanceLost])
        let retried = sends(actions)
        #expect(retried.map(\.id) == [1])
        #expect(retried.map(\.attempt) == [1])
        #expect(retried.first?.link == link(core, "a-1"))
    }

    @Test func aLinkNeverHeardFromDeliveredNothingSoAnyMethodIsRetried() {
        var core = core([Self.ready("a-0"), Self.ready("a-1")])
        let first = sends(submit(&core, request(1, "POST"))).first!
        let actions = core.linkLost(first.link, reason: "broke its connection", now: at(2))
        #expect(failures(actions).isEmpty)
        #expect(sends(actions).map(\.attempt) == [1])
    }

    @Test func aRetryIsMadeOnceOnly() {
        var core = core([Self.ready("a-0"), Self.ready("a-1"), Self.ready("a-2")])
        let first = sends(submit(&core, request(1))).first!
        _ = core.heartbeat(inFlight: 1, onLink: first.link, now: at(1))
        let second = sends(core.linkLost(first.link, reason: "broke", now: at(2))).first!
        _ = core.heartbeat(inFlight: 1, onLink: second.link, now: at(3))
        let actions = core.linkLost(second.link, reason: "broke", now: at(4))
        #expect(failures(actions).map(\.code) == [.instanceLost])
    }

    @Test func aLinkSilentForThreeHeartbeatsIsLost() {
        var core = core([Self.ready("a-0"), Self.ready("a-1")])
        let first = sends(submit(&core, request(1, "GET", name: "a-0", timeout: 10_000))).first!
        var retried: [(link: Int, id: UInt64, attempt: UInt32)] = []
        for second in 1...4 {
            let (actions, _) = core.tick(now: at(second * 1_000 + 1))
            retried += sends(actions)
            #expect(failures(actions).isEmpty)
        }
        #expect(retried.map(\.id) == [1], "the GET goes elsewhere once its link is silent for 3 s")
        #expect(retried.first?.link != first.link)
    }

    @Test func theDeadlineIs504() {
        var core = core([Self.ready("a-0")])
        _ = submit(&core, request(1))
        #expect(failures(core.tick(now: at(999)).actions).isEmpty)
        #expect(failures(core.tick(now: at(1_021)).actions).map(\.code) == [.deadlineExceeded])
        // The late answer is dropped.
        #expect(delivered(core.response(Response(id: 1, status: 200), onLink: link(core, "a-0"), now: at(1_100))).isEmpty)
    }

    @Test func aCancelledRequestEndsAndItsAnswerIsDropped() {
        var core = core([Self.ready("a-0")])
        _ = submit(&core, request(1))
        #expect(failures(core.cancel(1)).map(\.code) == [.internal])
        #expect(delivered(core.response(Response(id: 1, status: 200), onLink: link(core, "a-0"), now: at(5))).isEmpty)
    }

    @Test func aNameAlwaysReachesTheSameInstanceAndOnlyItsNamesMoveWhenItLeaves() {
        let instances = (0..<5).map { Self.ready("a-\($0)", capacity: 1_000) }
        var one = core(instances)
        var other = core(instances.reversed())
        let names = (0..<200).map { "user-\($0)" }
        func placement(_ core: inout Core, from id: UInt64) -> [String: Int] {
            var placed: [String: Int] = [:]
            for (offset, name) in names.enumerated() {
                let send = sends(submit(&core, request(id + UInt64(offset), name: name))).first!
                placed[name] = send.link
            }
            return placed
        }
        let first = placement(&one, from: 0).mapValues { one.key(ofLink: $0)! }
        let second = placement(&other, from: 0).mapValues { other.key(ofLink: $0)! }
        #expect(first == second, "two edges send each name to the same instance")

        let leaving = "A/a-2"
        _ = one.update(DirectoryUpdate(epoch: 1, sequence: 1, instance: Self.ready("a-2"), removed: true), from: 0, now: at(1))
        let after = placement(&one, from: 1_000).mapValues { one.key(ofLink: $0)! }
        for name in names {
            if first[name] == leaving { #expect(after[name] != leaving) } else { #expect(after[name] == first[name], "\(name) moved") }
        }
    }

    @Test func unnamedRequestsSpreadOverInstancesByLoad() {
        var core = core((0..<4).map { Self.ready("a-\($0)", capacity: 100) })
        var counts: [Int: Int] = [:]
        for id in UInt64(1)...40 { counts[sends(submit(&core, request(id))).first!.link, default: 0] += 1 }
        #expect(counts.count == 4)
        #expect(counts.values.allSatisfy { $0 == 10 }, "equal loads take turns: \(counts)")
    }

    @Test func aMissedUpdateAsksForTheWholeDirectory() {
        var core = core([Self.ready("a-0")])
        let gap = core.update(DirectoryUpdate(epoch: 1, sequence: 2, instance: Self.ready("a-1"), removed: false), from: 0, now: at(1))
        #expect(gap.contains { if case .askDirectory(0) = $0 { true } else { false } })
        // Nothing is taken from a view until the new snapshot comes.
        #expect(core.member("A/a-1") == nil)
        _ = core.directory(Directory(epoch: 1, sequence: 2, instances: [Self.ready("a-0"), Self.ready("a-1")]), from: 0, now: at(2))
        #expect(core.member("A/a-1") != nil)
        let next = core.update(DirectoryUpdate(epoch: 1, sequence: 3, instance: Self.ready("a-2"), removed: false), from: 0, now: at(3))
        #expect(!next.contains { if case .askDirectory = $0 { true } else { false } })
        #expect(core.member("A/a-2") != nil)
    }

    @Test func anotherEpochIsAGapToo() {
        var core = core([Self.ready("a-0")])
        let actions = core.update(DirectoryUpdate(epoch: 2, sequence: 1, instance: Self.ready("a-1"), removed: false), from: 0, now: at(1))
        #expect(actions.contains { if case .askDirectory(0) = $0 { true } else { false } })
    }

    @Test func withEveryRouterGoneTheLastDirectoryStillServes() {
        var core = core([Self.ready("a-0")])
        _ = core.routerLost(0, now: at(1))
        #expect(sends(submit(&core, request(1), now: 2)).count == 1)
    }

    @Test func aRouterThatAnswersOutweighsOneThatWentQuiet() {
        var core = core([Self.ready("a-0"), Self.ready("a-1", capacity: 8)])
        _ = core.directory(Directory(epoch: 9, sequence: 0, instances: [Self.ready("a-1", capacity: 8)]), from: 1, now: at(1))
        _ = core.routerLost(0, now: at(2))
        for id in UInt64(1)...4 { #expect(sends(submit(&core, request(id), now: 3)).first?.link == link(core, "a-1")) }
        // Back: the two views are merged again.
        _ = core.directory(Directory(epoch: 1, sequence: 0, instances: [Self.ready("a-0"), Self.ready("a-1", capacity: 8)]), from: 0, now: at(4))
        #expect(core.member("A/a-0") != nil)
    }

    @Test func aLeavingSidecarGetsNothingNewButAnswersWhatItHas() {
        var core = core([Self.ready("a-0"), Self.ready("a-1", capacity: 8)])
        _ = submit(&core, request(1, name: "a-0"))
        _ = core.leaving(onLink: link(core, "a-0"), now: at(1))
        for id in UInt64(2)...5 { #expect(sends(submit(&core, request(id))).first?.link == link(core, "a-1")) }
        #expect(delivered(core.response(Response(id: 1, status: 200), onLink: link(core, "a-0"), now: at(2))) == [1])
    }

    @Test func anInstanceTheDirectoryDropsGoesOnceItsRequestsAreAnswered() {
        var core = core([Self.ready("a-0")])
        _ = submit(&core, request(1))
        let drop = core.update(DirectoryUpdate(epoch: 1, sequence: 1, instance: Self.ready("a-0"), removed: true), from: 0, now: at(1))
        #expect(!drop.contains { if case .disconnect = $0 { true } else { false } })
        let answered = core.response(Response(id: 1, status: 200), onLink: link(core, "a-0"), now: at(2))
        #expect(delivered(answered) == [1])
        #expect(answered.contains { if case .disconnect = $0 { true } else { false } })
        #expect(core.member("A/a-0") == nil)
    }

    // MARK: Outlier detection and stalls

    func ejections(_ actions: [Core.Action]) -> [(instance: String, duration: Duration?)] {
        actions.compactMap { if case .ejected(let ready, let duration, _) = $0 { (ready.instanceID, duration) } else { nil } }
    }

    @Test func fiveFailuresInARowSetAnInstanceAsideAndItComesBack() {
        var core = core([Self.ready("a-0", capacity: 8), Self.ready("a-1", capacity: 8), Self.ready("a-2", capacity: 8)])
        let broken = Response(id: 0, status: 0, error: MeshError(code: .appFailed, message: "reset", component: "sidecar"))
        var ejected: [(instance: String, duration: Duration?)] = []
        for id in UInt64(1)...5 {
            _ = submit(&core, request(id, name: "a-0"))
            var answer = broken
            answer.id = id
            ejected += ejections(core.response(answer, onLink: link(core, "a-0"), now: at(Int(id))))
        }
        #expect(ejected.map(\.instance) == ["a-0"])
        #expect(ejected.first?.duration == .seconds(30))
        // Set aside: unnamed requests go elsewhere, and so does its name.
        for id in UInt64(10)...20 { #expect(sends(submit(&core, request(id, timeout: 60_000), now: 10)).first?.link != link(core, "a-0")) }
        // Back after its ejection.
        let (actions, _) = core.tick(now: at(31_000))
        #expect(ejections(actions).map(\.instance) == ["a-0"])
        #expect(ejections(actions).first?.duration == nil)
    }

    @Test func anAnswerFromTheAppEndsTheRunOfFailures() {
        var core = core([Self.ready("a-0", capacity: 8), Self.ready("a-1", capacity: 8), Self.ready("a-2", capacity: 8)])
        var ejected = 0
        for id in UInt64(1)...9 {
            _ = submit(&core, request(id, name: "a-0"))
            let response = id == 5
                ? Response(id: id, status: 500)
                : Response(id: id, status: 0, error: MeshError(code: .appFailed, message: "reset", component: "sidecar"))
            ejected += ejections(core.response(response, onLink: link(core, "a-0"), now: at(Int(id)))).count
        }
        #expect(ejected == 0, "4 failures, an answer, then 4: never 5 in a row")
    }

    @Test func noMoreThanHalfAClassIsSetAside() {
        var core = core([Self.ready("a-0", capacity: 8), Self.ready("a-1", capacity: 8)])
        var ejected: [String] = []
        for name in ["a-0", "a-1"] {
            for id in UInt64(1)...5 {
                let requestID = id + (name == "a-1" ? 100 : 0)
                _ = submit(&core, request(requestID, name: name))
                let answer = Response(id: requestID, status: 0, error: MeshError(code: .appUnreachable, message: "refused", component: "sidecar"))
                ejected += ejections(core.response(answer, onLink: link(core, name), now: at(Int(id)))).map(\.instance)
            }
        }
        #expect(ejected.count == 1, "one of two may be set aside: \(ejected)")
    }

    @Test func aLoneInstanceIsNeverSetAside() {
        var core = core([Self.ready("a-0", capacity: 8)])
        var ejected = 0
        for id in UInt64(1)...10 {
            _ = submit(&core, request(id))
            let answer = Response(id: id, status: 0, error: MeshError(code: .appUnreachable, message: "refused", component: "sidecar"))
            ejected += ejections(core.response(answer, onLink: link(core, "a-0"), now: at(Int(id)))).count
        }
        #expect(ejected == 0)
    }

    @Test func aStalledInstanceGetsNoNewRequestWhileAnotherCanTakeIt() {
        var core = core([Self.ready("a-0", capacity: 64), Self.ready("a-1", capacity: 64)])
        // Two requests hang on a-0 (its app stopped); a-1 answers each of its own at once.
        _ = submit(&core, request(1, name: "a-0", timeout: 30_000))
        _ = submit(&core, request(2, name: "a-0", timeout: 30_000))
        var onStalled = 0
        for id in UInt64(10)...50 {
            let now = 1_100 + Int(id)
            guard let sent = sends(submit(&core, request(id, timeout: 30_000), now: now)).first else { continue }
            if sent.link == link(core, "a-0") { onStalled += 1 } else {
                _ = core.response(Response(id: id, status: 200), onLink: sent.link, now: at(now))
            }
        }
        #expect(onStalled == 0, "a-0 has answered nothing for over a second with two requests in flight")
    }

    @Test func aStalledLoneInstanceStillTakesRequests() {
        var core = core([Self.ready("a-0", capacity: 64)])
        _ = submit(&core, request(1, timeout: 30_000))
        _ = submit(&core, request(2, timeout: 30_000))
        #expect(sends(submit(&core, request(3, timeout: 30_000), now: 2_000)).count == 1)
    }

    @Test func anInstanceFarSlowerThanItsPeersIsSetAside() {
        var core = core((0..<4).map { Self.ready("a-\($0)", capacity: 100) })
        var id: UInt64 = 0
        var clock = 0
        // Forty rounds: a-3 takes 400 ms to answer, the others 2 ms.
        for _ in 0..<40 {
            for name in ["a-0", "a-1", "a-2", "a-3"] {
                id += 1
                _ = submit(&core, request(id, name: name, timeout: 60_000), now: clock)
                let took = name == "a-3" ? 400 : 2
                _ = core.response(Response(id: id, status: 200), onLink: link(core, name), now: at(clock + took))
            }
            clock += 10
        }
        let (actions, _) = core.tick(now: at(clock + 1_000))
        #expect(ejections(actions).map(\.instance) == ["a-3"])
    }
}
