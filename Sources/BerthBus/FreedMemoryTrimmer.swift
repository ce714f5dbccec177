import CBerthMemory
import CZeroMQ

/// Hands freed memory back to the system once big frames stop coming: glibc keeps freed heap, so a burst of 1 MiB
/// bodies would otherwise stay resident for the life of the process.
///
/// While they come, it is the other way round: glibc maps a block of 1 MiB fresh for each body (above its mmap
/// threshold) and gives it back at free, so every body paid ~130 page faults in the sidecar and ~20 in the edge and
/// the router; the sidecar spent 28% of its CPU per 1 MiB answer on it. Berth's own processes keep them in the heap
/// for the next body instead (up to 8 MiB free at its top; `MemoryPolicy`), in one heap for the process: with one per
/// thread (the bus thread, libzmq's I/O thread), each kept its own and the sidecar grew from 25 to 33 MB under 1 MiB
/// bodies. The trim after a quiet second returns what is kept.
struct FreedMemoryTrimmer {

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

/// The malloc policy Berth's own processes run with (why: `FreedMemoryTrimmer`). Process-wide, so it is set by the
/// executables' `main`, before any second thread, never by this library: a user's own Worker executable links the
/// bus too, and decides about its own malloc.
public enum MemoryPolicy {
    /// Sets it; returns whether every setting took. Call first thing in `main`: glibc fixes its number of heaps the
    /// first time a second thread allocates.
    @discardableResult
    public static func apply() -> Bool { berth_memory_apply_policy() != 0 }

    /// Whether `apply()` set it in this process.
    public static var isApplied: Bool { berth_memory_policy_applied() != 0 }
}
