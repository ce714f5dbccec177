import CZeroMQ

/// Hands freed memory back to the system once big frames stop coming: glibc keeps freed heap, so a burst of 1 MiB
/// bodies would otherwise stay resident for the life of the process.
///
/// While they come, it is the other way round: glibc maps a block of 1 MiB fresh for each body (above its mmap
/// threshold) and gives it back at free, so every body paid ~130 page faults in the sidecar and ~20 in the edge and
/// the router; the sidecar spent 28% of its CPU per 1 MiB answer on it. `keepFreedBlocks` keeps them in the heap
/// for the next body instead, and the trim after a quiet second returns them.
struct FreedMemoryTrimmer {
    /// Once per process, before its first loop runs.
    static let keepFreedBlocks: Void = {
        _ = mallopt(M_MMAP_THRESHOLD, 64 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 256 << 20)
    }()

    /// Bytes of big frames after which a trim is worth its cost, and how long they must have stopped first.
    private let afterBytes = 4 << 20
    private let quietFor = Duration.seconds(1)
    private var bytes = 0
    private var lastMoved = ContinuousClock.now

    mutating func moved(_ count: Int) {
        bytes += count
        lastMoved = .now
    }

    /// Trims if big frames have stopped long enough; returns when the loop should wake next (`wakeAt`, or earlier
    /// for a trim still to come).
    mutating func trimIfQuiet(wakeAt: ContinuousClock.Instant?) -> ContinuousClock.Instant? {
        guard bytes >= afterBytes else { return wakeAt }
        let due = lastMoved + quietFor
        guard ContinuousClock.now < due else {
            malloc_trim(0)
            bytes = 0
            return wakeAt
        }
        return min(wakeAt ?? due, due)
    }
}
