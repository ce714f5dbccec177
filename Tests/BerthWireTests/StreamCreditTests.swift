import BerthWire
import Testing

/// The credit rules of a streamed body: a sender never sends more than it was granted; a receiver grants in steps of
/// half a window or more, never holds more than its window, refuses a sender that overruns, and charges every piece
/// at least `Streaming.minimumPieceCost`, so a window holds a bounded number of messages.
@Suite struct StreamCreditTests {
    @Test func aSenderIsBlockedOnceItSentItsGrant() {
        var sender = CreditSender(initial: 4_000)
        #expect(!sender.isBlocked)
        sender.sent(2_400)
        #expect(sender.available == 1_600)
        sender.sent(1_600)
        #expect(sender.isBlocked)
        sender.granted(1_200)
        #expect(sender.available == 1_200 && !sender.isBlocked)
    }

    @Test func lessThanTheSmallestPieceIsNoCredit() {
        var sender = CreditSender(initial: Streaming.minimumPieceCost - 1)
        #expect(sender.isBlocked)
        sender.granted(1)
        #expect(!sender.isBlocked)
        sender.sent(1)
        #expect(sender.available == 0, "a 1-byte piece costs the minimum")
    }

    @Test func aHugeGrantDoesNotOverflow() {
        var sender = CreditSender(initial: .max)
        sender.granted(.max)
        #expect(sender.available > 0)
    }

    @Test func aReceiverWithNoInitialGrantGrantsItsWindowFirst() {
        var receiver = CreditReceiver(window: 1_000, initialGrant: 0)
        #expect(receiver.grant() == 1_000)
        #expect(receiver.grant() == nil, "a full window is not granted twice")
    }

    @Test func aSenderThatOverrunsItsGrantIsRefused() throws {
        var receiver = CreditReceiver(window: 4_000, initialGrant: 4_000)
        try receiver.receive(4_000)
        #expect(throws: CreditReceiver.Overrun.self) { try receiver.receive(1) }
    }

    @Test func tinyPiecesCostTheMinimumSoAWindowHoldsFewMessages() throws {
        let window = Streaming.minimumPieceCost * 10
        var receiver = CreditReceiver(window: window, initialGrant: window)
        for _ in 0..<10 { try receiver.receive(1) }
        #expect(throws: CreditReceiver.Overrun.self) { try receiver.receive(1) }
        #expect(receiver.held == 10)
        try receiver.receive(0) // an empty last piece costs nothing
    }

    @Test func grantsComeOnceHalfTheWindowIsHandedOn() throws {
        var receiver = CreditReceiver(window: 30_000, initialGrant: 30_000)
        for _ in 0..<10 { try receiver.receive(3_000) }
        #expect(receiver.consume(12_000) == nil, "18,000 outstanding: more than half the window")
        #expect(receiver.consume(3_000) == 15_000, "15,000 outstanding: filled up to the window again")
        #expect(receiver.held == 15_000)
        #expect(receiver.granted - receiver.consumed == 30_000)
    }

    @Test func aPiecesCreditComesBackOnceItIsWhollyHandedOn() throws {
        var receiver = CreditReceiver(window: 4_000, initialGrant: 4_000)
        try receiver.receive(4_000)
        #expect(receiver.consume(3_999) == nil)
        #expect(receiver.consumed == 0)
        #expect(receiver.consume(1) == 4_000)
    }

    @Test func nothingIsGrantedForBytesNotHandedOn() throws {
        var receiver = CreditReceiver(window: 4_000, initialGrant: 4_000)
        try receiver.receive(4_000)
        // A slow reader: nothing leaves, so nothing more may come.
        for _ in 0..<10 { #expect(receiver.consume(0) == nil) }
        #expect(receiver.held == 4_000)
    }

    @Test func consumingMoreThanArrivedCountsOnlyWhatArrived() throws {
        var receiver = CreditReceiver(window: 4_000, initialGrant: 4_000)
        try receiver.receive(3_000)
        _ = receiver.consume(5_000)
        #expect(receiver.consumed == 3_000 && receiver.held == 0)
    }
}
