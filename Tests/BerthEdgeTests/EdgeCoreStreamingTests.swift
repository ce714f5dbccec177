import BerthWire
import Testing

@testable import BerthEdge

/// The rules of streamed exchanges in `EdgeCore`: answers that stream stay in flight on their instance until their
/// last piece, have no deadline, are never retried, and fail explicitly when their link is lost; request bodies that
/// stream in are retried only until their first piece left.
@Suite struct EdgeCoreStreamingTests {
    typealias Core = EdgeCore<String>
    let base = EdgeCoreTests()

    func streamed(_ id: UInt64) -> Response {
        var response = Response(id: id, status: 200)
        response.bodyStreams = true
        return response
    }

    func uploading(_ id: UInt64, _ method: String = "PUT", timeout: UInt32 = 1_000) -> Request {
        var request = base.request(id, method, timeout: timeout)
        request.bodyStreams = true
        return request
    }

    func lost(_ actions: [Core.Action]) -> [(id: UInt64, code: ErrorCode)] {
        actions.compactMap { if case .streamLost(_, let request, let error) = $0 { (request.id, error.code) } else { nil } }
    }

    func cancelled(_ actions: [Core.Action]) -> [UInt64] {
        actions.compactMap { if case .cancelStream(_, let id) = $0 { id } else { nil } }
    }

    @Test func aStreamedAnswerStaysInFlightUntilItsLastPiece() {
        var core = base.core([EdgeCoreTests.ready("a-0", capacity: 1)])
        _ = base.submit(&core, base.request(1))
        let link = base.link(core, "a-0")
        #expect(base.delivered(core.response(streamed(1), onLink: link, now: base.at(1))) == [1])
        #expect(core.pendingCount == 1 && core.streamLink(1) == link)
        // The instance is full while the answer streams: a second request waits.
        #expect(base.sends(base.submit(&core, base.request(2), now: 2)).isEmpty)
        let (owner, _) = core.streamPiece(1, final: false, onLink: link, now: base.at(3))
        #expect(owner == "p1")
        let (_, actions) = core.streamPiece(1, final: true, onLink: link, now: base.at(4))
        #expect(core.streamLink(1) == nil)
        #expect(base.sends(actions).map(\.id) == [2], "the waiting request goes once the stream is over")
    }

    @Test func aStreamedAnswerHasNoDeadline() {
        var core = base.core([EdgeCoreTests.ready("a-0")])
        _ = base.submit(&core, base.request(1, timeout: 100))
        let link = base.link(core, "a-0")
        _ = core.response(streamed(1), onLink: link, now: base.at(10))
        // Heartbeats answered all along: the link is alive.
        var failed: [UInt64] = []
        for second in 1...5 {
            _ = core.heartbeat(inFlight: 1, onLink: link, now: base.at(second * 1_000 - 1))
            let (actions, _) = core.tick(now: base.at(second * 1_000))
            failed += base.failures(actions).map(\.id) + lost(actions).map(\.id)
        }
        #expect(failed.isEmpty)
        #expect(core.streamLink(1) == link)
    }

    @Test func aLostLinkFailsItsStreamsExplicitlyAndRetriesNone() {
        var core = base.core([EdgeCoreTests.ready("a-0", capacity: 4), EdgeCoreTests.ready("a-1", capacity: 4)])
        _ = base.submit(&core, base.request(1, "GET", name: "a-0"))
        let link = base.link(core, "a-0")
        _ = core.response(streamed(1), onLink: link, now: base.at(1))
        let actions = core.linkLost(link, reason: "broke its connection", now: base.at(2))
        #expect(lost(actions).map(\.code) == [.instanceLost])
        #expect(base.sends(actions).isEmpty, "a GET whose answer began streaming is never sent again")
        #expect(core.pendingCount == 0)
    }

    @Test func aClientLeavingMidStreamTellsTheSidecar() {
        var core = base.core([EdgeCoreTests.ready("a-0")])
        _ = base.submit(&core, base.request(1))
        let link = base.link(core, "a-0")
        _ = core.response(streamed(1), onLink: link, now: base.at(1))
        let actions = core.cancel(1)
        #expect(cancelled(actions) == [1])
        #expect(base.failures(actions).isEmpty && lost(actions).isEmpty)
        #expect(core.pendingCount == 0)
        let (owner, _) = core.streamPiece(1, final: false, onLink: link, now: base.at(2))
        #expect(owner == nil, "a piece after the cancel is nobody's")
    }

    @Test func aPieceFromAnotherLinkIsNobodys() {
        var core = base.core([EdgeCoreTests.ready("a-0"), EdgeCoreTests.ready("a-1")])
        _ = base.submit(&core, base.request(1, name: "a-0"))
        _ = core.response(streamed(1), onLink: base.link(core, "a-0"), now: base.at(1))
        let (owner, _) = core.streamPiece(1, final: true, onLink: base.link(core, "a-1"), now: base.at(2))
        #expect(owner == nil)
        #expect(core.streamLink(1) == base.link(core, "a-0"))
    }

    @Test func anUploadIsRetriedBeforeItsFirstCreditOnly() {
        var core = base.core([EdgeCoreTests.ready("a-0", capacity: 4), EdgeCoreTests.ready("a-1", capacity: 4)])
        let first = base.sends(base.submit(&core, uploading(1))).first!
        _ = core.heartbeat(inFlight: 1, onLink: first.link, now: base.at(1))
        // Lost before any credit: nothing of the body left the edge, and PUT may be sent again.
        let retried = base.sends(core.linkLost(first.link, reason: "broke", now: base.at(2)))
        #expect(retried.map(\.id) == [1])
        #expect(core.uploadCredit(1, onLink: retried[0].link, now: base.at(3)) == "p1")
        let actions = core.linkLost(retried[0].link, reason: "broke", now: base.at(4))
        #expect(base.failures(actions).map(\.code) == [.instanceLost])
    }

    @Test func aCreditStartsTheDeadlineAgain() {
        var core = base.core([EdgeCoreTests.ready("a-0")])
        let sent = base.sends(base.submit(&core, uploading(1, timeout: 1_000))).first!
        _ = core.uploadCredit(1, onLink: sent.link, now: base.at(900))
        _ = core.heartbeat(inFlight: 1, onLink: sent.link, now: base.at(1_000))
        let (early, _) = core.tick(now: base.at(1_500))
        #expect(base.failures(early).isEmpty, "1,000 ms from the credit at 900 have not passed")
        let (late, _) = core.tick(now: base.at(1_901))
        #expect(base.failures(late).map(\.code) == [.deadlineExceeded])
    }

    @Test func aClientLeavingMidUploadTellsTheSidecar() {
        var core = base.core([EdgeCoreTests.ready("a-0")])
        let sent = base.sends(base.submit(&core, uploading(1))).first!
        _ = core.uploadCredit(1, onLink: sent.link, now: base.at(1))
        #expect(cancelled(core.cancel(1)) == [1])
    }
}
