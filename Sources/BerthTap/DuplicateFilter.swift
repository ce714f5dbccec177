/// Drops the second copy of a message that came from two routers: every router of a mesh proxies every event, so a
/// subscriber that follows them all (to keep hearing the mesh when one dies) gets each event once per router, byte
/// for byte the same. No socket and no clock (Tests/BerthTapTests/DuplicateFilterTests.swift).
///
/// Copies arrive within moments of each other, so only recent messages are remembered: two generations of at most
/// `generation` digests each, the older dropped when the newer fills. A message is a duplicate if its digest is in
/// either, so between `generation` and twice that many of the latest messages are remembered, in bounded memory.
/// Digests are 64-bit keyed hashes of topic and payload; two different events sharing one would need a collision
/// among a few thousand, about one chance in 10^12.
public struct DuplicateFilter: Sendable {
    public let generation: Int
    private var current: Set<UInt64> = []
    private var previous: Set<UInt64> = []
    /// Copies dropped so far.
    public private(set) var dropped = 0

    public init(generation: Int = 4_096) {
        self.generation = max(1, generation)
        current.reserveCapacity(self.generation)
    }

    /// Whether the message is new; a copy of one seen lately is counted and refused.
    public mutating func isNew(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> Bool {
        var hasher = Hasher()
        hasher.combine(bytes: topic)
        hasher.combine(topic.count)
        hasher.combine(bytes: payload)
        let digest = UInt64(bitPattern: Int64(hasher.finalize()))
        if current.contains(digest) || previous.contains(digest) {
            dropped += 1
            return false
        }
        if current.count >= generation {
            swap(&current, &previous)
            current.removeAll(keepingCapacity: true)
        }
        current.insert(digest)
        return true
    }
}
