import BerthBus
import BerthWire
import NIOCore
import Synchronization
import Testing

@testable import BerthEdge

/// Bodies that stream: what a Worker reads of them, the credit a feed grants back as its reader takes pieces, and
/// the pieces a pump sends as credit allows. No sockets: the bus thread's side is called directly.
struct BodyStreamTests {
    /// What a feed asked of its sender.
    final class SenderLog: Sendable {
        let grants = Mutex<[Int]>([])
        let abandoned = Atomic<Int>(0)

        func feed(window: Int = 4 << 10, initialGrant: Int = 4 << 10) -> BodyFeed {
            BodyFeed(window: window, initialGrant: initialGrant, grant: { bytes in self.grants.withLock { $0.append(bytes) } }, abandon: {
                self.abandoned.add(1, ordering: .relaxed)
            })
        }
    }

    static func pieces(_ texts: [String]) -> AsyncStream<ByteBuffer> {
        AsyncStream { continuation in
            for text in texts { continuation.yield(ByteBuffer(string: text)) }
            continuation.finish()
        }
    }

    @Test func aWorkersStreamIsReadPieceByPieceOrCollected() async throws {
        var read: [String] = []
        for try await piece in Body(stream: Self.pieces(["one ", "", "two"])) { read.append(String(buffer: piece)) }
        #expect(read == ["one ", "two"], "an empty piece is skipped, so that only the end is empty")
        let body = Body(stream: Self.pieces(["one ", "two"]), length: 7)
        #expect(body.isStream && body.length == 7 && !body.isEmpty)
        #expect(String(buffer: try await body.collect(upTo: 7)) == "one two")
        #expect(body.count == 7, "the bytes read so far")
    }

    @Test func collectStopsAtItsLimitAndAStreamIsReadOnce() async throws {
        let body = Body(stream: Self.pieces(["12345", "6789"]))
        let tooLarge = await #expect(throws: BodyError.self) { try await body.collect(upTo: 8) }
        #expect(tooLarge?.kind == .tooLarge)
        let again = await #expect(throws: BodyError.self) { try await body.collect(upTo: 100) }
        #expect(again?.kind == .readTwice)
        let whole = Body(string: "whole")
        #expect(String(buffer: try await whole.collect(upTo: 5)) == "whole")
        await #expect(throws: BodyError.self) { try await whole.collect(upTo: 4) }
    }

    @Test func aFeedGrantsWhatItsReaderTakesInHalfWindows() async throws {
        let log = SenderLog()
        let feed = log.feed()
        for _ in 0..<4 { #expect(feed.push([Frame(String(repeating: "x", count: 1024))], final: false) == .taken) }
        let overrun = feed.push([Frame("one byte too many")], final: false)
        guard case .refused(let reason) = overrun else { Issue.record("\(overrun)"); return }
        #expect(reason.contains("more than the 4096 it was granted"), "\(reason)")
        let reader = BodyStream(feed: feed, length: nil).reader()
        #expect(try await reader.nextFrames()?.byteCount == 1024)
        #expect(log.grants.withLock { $0 }.isEmpty, "a quarter of the window taken: no grant yet")
        #expect(try await reader.nextFrames()?.byteCount == 1024)
        #expect(log.grants.withLock { $0 } == [2048], "half the window taken: it is filled again")
        _ = try await reader.nextFrames()
        _ = try await reader.nextFrames()
        let cut = await #expect(throws: BodyError.self) { try await reader.nextFrames() }
        #expect(cut?.kind == .cut, "what came before the overrun is read, then the body is cut")
    }

    /// A feed that grants nothing at first grants its window when it is first read: a body nobody reads holds nothing.
    @Test func withoutAnInitialGrantTheFirstReadGrantsTheWindow() async throws {
        let log = SenderLog()
        let feed = log.feed(initialGrant: 0)
        guard case .refused = feed.push([Frame("before any grant")], final: false) else { Issue.record("took a piece it never granted"); return }
        let lazy = log.feed(initialGrant: 0)
        let reading = Task { try await BodyStream(feed: lazy, length: nil).reader().nextFrames() }
        while log.grants.withLock({ $0.isEmpty }) { await Task.yield() }
        #expect(log.grants.withLock { $0 } == [4 << 10])
        #expect(lazy.push([Frame("now")], final: false) == .taken)
        #expect(try await reading.value?.byteCount == 3)
    }

    @Test func aReaderWaitsForPiecesAndSeesACleanOrACutEnd() async throws {
        let log = SenderLog()
        let feed = log.feed()
        let stream = BodyStream(feed: feed, length: nil)
        let reading = Task { try await Body(stream: stream).collect(upTo: 1 << 20) }
        #expect(feed.push([Frame("later ")], final: false) == .taken)
        #expect(feed.push([Frame("and last")], final: true) == .taken)
        #expect(String(buffer: try await reading.value) == "later and last")
        #expect(log.abandoned.load(ordering: .relaxed) == 0, "read to its end: nothing to stop")

        let cutFeed = log.feed()
        let cutReading = Task { try await Body(stream: BodyStream(feed: cutFeed, length: nil)).collect(upTo: 1 << 20) }
        _ = cutFeed.push([Frame("some")], final: false)
        cutFeed.cut("the instance was lost")
        let error = await #expect(throws: BodyError.self) { try await cutReading.value }
        #expect(error == BodyError(.cut, "the instance was lost"))
    }

    @Test func aReaderThatGoesEarlyStopsTheSenderOnce() async throws {
        let log = SenderLog()
        let feed = log.feed()
        do {
            let stream = BodyStream(feed: feed, length: nil)
            _ = feed.push([Frame("unread")], final: false)
            _ = stream.reader()
        }
        #expect(log.abandoned.load(ordering: .relaxed) == 1)
        #expect(feed.push([Frame("more")], final: false) == .readerGone)
    }

    @Test func aCancelledReaderStopsWaiting() async throws {
        let feed = SenderLog().feed()
        let reading = Task { try await BodyStream(feed: feed, length: nil).reader().nextFrames() }
        reading.cancel()
        await #expect(throws: CancellationError.self) { try await reading.value }
    }

    /// A body made with a writer: writes wait while the reader is a window behind, and fail once it has gone.
    @Test func aWriterWaitsForItsReaderAndStopsWhenItGoes() async throws {
        let (body, writer) = Body.makeStream()
        let big = ByteBuffer(repeating: 0x61, count: 3 << 20)
        let writing = Task {
            try await writer.write(big)
            writer.finish()
        }
        #expect(try await body.collect(upTo: 4 << 20).readableBytes == 3 << 20)
        try await writing.value

        var (dropped, orphan): (Body?, BodyWriter) = Body.makeStream()
        _ = dropped?.isStream
        dropped = nil
        await #expect(throws: BodyError.self) { try await orphan.write(big) }
    }

    /// A pump sends no piece larger than its credit, waits for more, and ends with an empty final piece.
    @Test func aPumpSendsWithinItsCredit() async throws {
        let gate = CreditGate(initial: 4 << 10)
        let sent = Mutex<[(Int, Bool)]>([])
        let big = ByteBuffer(repeating: 0x61, count: 10 << 10)
        let body = BodyStream(AsyncStream { $0.yield(big); $0.finish() }, length: nil)
        let pumping = Task { await BodyPump.run(body, through: gate) { frames, final in sent.withLock { $0.append((frames.byteCount, final)) } } }
        while sent.withLock({ $0.count }) < 1 { await Task.yield() }
        #expect(sent.withLock { $0.map(\.0) } == [4 << 10], "it waits for credit")
        gate.granted(8 << 10)
        guard case .finished = await pumping.value else { Issue.record("the pump did not finish"); return }
        let pieces = sent.withLock { $0 }
        #expect(pieces.map(\.0) == [4 << 10, 6 << 10, 0] && pieces.map(\.1) == [false, false, true], "\(pieces)")
    }

    /// A source that waits for ever (an event stream with no events) does not keep the pump once its exchange is over.
    @Test func closingTheGateStopsAPumpThatWaitsForItsSource() async throws {
        let gate = CreditGate(initial: 4 << 10)
        let (silent, continuation) = AsyncStream<ByteBuffer>.makeStream()
        defer { continuation.finish() }
        let pumping = Task { await BodyPump.run(BodyStream(silent, length: nil), through: gate) { _, _ in } }
        gate.close()
        guard case .stopped = await pumping.value else { Issue.record("the pump did not stop"); return }
    }

    @Test func aClosedGateStopsThePump() async throws {
        let gate = CreditGate(initial: 0)
        let body = BodyStream(AsyncStream { $0.yield(ByteBuffer(string: "x")); $0.finish() }, length: nil)
        let pumping = Task { await BodyPump.run(body, through: gate) { _, _ in Issue.record("sent without credit") } }
        gate.close()
        guard case .stopped = await pumping.value else { Issue.record("the pump went on"); return }
    }
}
