import BerthTap
import Testing

/// Each event comes once per router a subscriber follows: the copies are dropped, the events themselves never.
struct DuplicateFilterTests {
    static func isNew(_ filter: inout DuplicateFilter, _ topic: String, _ payload: [UInt8]) -> Bool {
        Array(topic.utf8).withUnsafeBytes { topic in payload.withUnsafeBytes { filter.isNew(topic: topic, payload: $0) } }
    }

    @Test func aCopyIsDroppedAndEveryOtherMessageKept() {
        var filter = DuplicateFilter()
        #expect(Self.isNew(&filter, "traffic.A.a-0", [1, 2, 3]))
        #expect(!Self.isNew(&filter, "traffic.A.a-0", [1, 2, 3]), "the second router's copy")
        #expect(Self.isNew(&filter, "traffic.A.a-0", [1, 2, 4]), "another payload")
        #expect(Self.isNew(&filter, "traffic.A.a-1", [1, 2, 3]), "the same payload on another topic")
        #expect(Self.isNew(&filter, "traffic.A.a-", [0x31, 1, 2, 3]), "the boundary between topic and payload counts")
        #expect(filter.dropped == 1)
    }

    /// Memory is bounded: a message is remembered for between one and two generations of later messages.
    @Test func onlyRecentMessagesAreRemembered() {
        var filter = DuplicateFilter(generation: 4)
        for index in 0..<4 { #expect(Self.isNew(&filter, "t", [UInt8(index)])) }
        for index in 4..<8 { #expect(Self.isNew(&filter, "t", [UInt8(index)])) }
        #expect(!Self.isNew(&filter, "t", [0]), "one generation later, still remembered")
        for index in 8..<16 { #expect(Self.isNew(&filter, "t", [UInt8(index)])) }
        #expect(Self.isNew(&filter, "t", [0]), "two generations later, forgotten")
    }
}
