import BerthWire
import Testing

@testable import BerthEdge

/// How the edge writes an answer that streams to its client, and when it cuts one: no sockets, no sleeps.
@Suite struct ResponseStreamTests {
    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func anHTTP11ClientGetsChunksAndACleanLastChunk() {
        var stream = ResponseStream(id: 1, length: nil, minorVersion: 1, window: 16_384)
        #expect(stream.framing == .chunked && stream.headLength == nil)
        #expect(stream.piece(26, final: false, failed: nil) == .write(before: bytes("1a\r\n"), after: bytes("\r\n"), ends: false))
        #expect(stream.piece(0, final: true, failed: nil) == .write(before: [], after: bytes("0\r\n\r\n"), ends: true))
        #expect(stream.phase == .finished)
    }

    @Test func aLastPieceWithBytesEndsItsChunkThenTheBody() {
        var stream = ResponseStream(id: 1, length: nil, minorVersion: 1, window: 16_384)
        #expect(stream.piece(3, final: true, failed: nil) == .write(before: bytes("3\r\n"), after: bytes("\r\n0\r\n\r\n"), ends: true))
    }

    @Test func anHTTP10ClientGetsTheBodyUntilTheConnectionCloses() {
        var stream = ResponseStream(id: 1, length: nil, minorVersion: 0, window: 16_384)
        #expect(stream.framing == .untilClose)
        #expect(stream.piece(5, final: false, failed: nil) == .write(before: [], after: [], ends: false))
        #expect(stream.piece(0, final: true, failed: nil) == .write(before: [], after: [], ends: true))
    }

    @Test func aBodyOfKnownLengthGoesAsItIsAndIsCutIfShort() {
        var stream = ResponseStream(id: 1, length: 10, minorVersion: 1, window: 16_384)
        #expect(stream.headLength == 10)
        #expect(stream.piece(6, final: false, failed: nil) == .write(before: [], after: [], ends: false))
        guard case .reset = stream.piece(2, final: true, failed: nil) else { Issue.record("a short body must be cut"); return }
        #expect(stream.phase != .finished)
    }

    @Test func aBodyLongerThanItsLengthIsCut() {
        var stream = ResponseStream(id: 1, length: 4, minorVersion: 1, window: 16_384)
        guard case .reset = stream.piece(5, final: false, failed: nil) else { Issue.record("a long body must be cut"); return }
    }

    @Test func aFailedPieceResetsTheClientNeverEndsCleanly() {
        var stream = ResponseStream(id: 1, length: nil, minorVersion: 1, window: 16_384)
        _ = stream.piece(5, final: false, failed: nil)
        #expect(stream.piece(0, final: true, failed: "the app broke its connection") == .reset("the app broke its connection"))
        #expect(stream.phase == .failed("the app broke its connection"))
    }

    @Test func aLostInstanceResetsTheClient() {
        var stream = ResponseStream(id: 1, length: nil, minorVersion: 1, window: 16_384)
        #expect(stream.lost("the sidecar died") == .reset("the sidecar died"))
    }

    @Test func aSenderOverItsCreditIsCut() {
        var stream = ResponseStream(id: 1, length: nil, minorVersion: 1, window: 16_384)
        _ = stream.piece(16_384, final: false, failed: nil)
        guard case .reset = stream.piece(1, final: false, failed: nil) else { Issue.record("an overrun must be cut"); return }
    }

    @Test func creditFollowsWhatTheClientTook() {
        var stream = ResponseStream(id: 1, length: nil, minorVersion: 1, window: 16_000)
        for _ in 0..<4 { _ = stream.piece(4_000, final: false, failed: nil) }
        #expect(stream.written(pendingBytes: 16_000) == nil, "the client took nothing: no grant")
        #expect(stream.written(pendingBytes: 12_000) == nil, "one piece taken, 12,000 outstanding: over half the window")
        #expect(stream.written(pendingBytes: 8_000) == 8_000, "two pieces taken: the window is filled again")
        #expect(stream.written(pendingBytes: 0) == 8_000, "the last two taken: half the window again")
    }
}
