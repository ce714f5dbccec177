import BerthWire
import Testing

/// The credit rules of a streamed body: a sender never sends more than it was granted; a receiver grants in steps of
/// half a window or more, never holds more than its window, and refuses a sender that overruns.
@Suite struct StreamCreditTests {
    @Test func aSenderIsBlockedOnceItSentItsGrant() {
        var sender = CreditSender(initial: 100)
        #expect(!sender.isBlocked)
        sender.sent(60)
        #expect(sender.available == 40)
        sender.sent(40)
        #expect(sender.isBlocked)
        sender.granted(10)
        #expect(sender.available == 10 && !sender.isBlocked)
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
        var receiver = CreditReceiver(window: 1_000, initialGrant: 1_000)
        try receiver.receive(1_000)
        #expect(throws: CreditReceiver.Overrun.self) { try receiver.receive(1) }
    }

    @Test func grantsComeOnceHalfTheWindowIsHandedOn() throws {
        var receiver = CreditReceiver(window: 1_000, initialGrant: 1_000)
        try receiver.receive(1_000)
        #expect(receiver.consume(400) == nil, "600 outstanding: more than half the window")
        #expect(receiver.consume(100) == 500, "500 outstanding: filled up to the window again")
        #expect(receiver.held == 500)
        #expect(receiver.granted - receiver.consumed == 1_000)
    }

    @Test func nothingIsGrantedForBytesNotHandedOn() throws {
        var receiver = CreditReceiver(window: 1_000, initialGrant: 1_000)
        try receiver.receive(1_000)
        // A slow reader: nothing leaves, so nothing more may come.
        for _ in 0..<10 { #expect(receiver.consume(0) == nil) }
        #expect(receiver.held == 1_000)
    }

    @Test func consumingMoreThanArrivedCountsOnlyWhatArrived() throws {
        var receiver = CreditReceiver(window: 1_000, initialGrant: 1_000)
        try receiver.receive(100)
        _ = receiver.consume(5_000)
        #expect(receiver.consumed == 100)
    }
}
