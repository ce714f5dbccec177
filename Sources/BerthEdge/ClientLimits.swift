#if canImport(Glibc)
import Glibc
#endif

/// How many client connections the edge takes before it stops accepting for a while: the rule as a plain value, so
/// that it is tested without using up descriptors.
struct ConnectionLimit: Equatable {
    /// Accepting pauses once this many connections are open.
    let pauseAt: Int
    /// It resumes when fewer than this are: not at every close, or a full edge would pause and log at every one.
    let resumeBelow: Int

    /// The soft descriptor limit less a reserve for the bus (its links to routers and sidecars, libzmq's own) and for
    /// files: an eighth, at least 64. Accepting resumes below nine tenths of that.
    init(descriptors soft: Int) {
        pauseAt = max(16, soft - max(64, soft / 8))
        resumeBelow = pauseAt - max(1, pauseAt / 10)
    }

    /// From this process's soft limit on open files (the executables raise it to the hard one at start).
    static func current() -> ConnectionLimit {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else {
            return ConnectionLimit(descriptors: Int.max / 2)
        }
        return ConnectionLimit(descriptors: Int(clamping: limit.rlim_cur))
    }
}

/// Bytes of request bodies the edge holds at once, over all connections: each connection says what it holds now,
/// and a growth that would pass the limit is refused (the request gets 503).
struct BodyMemory {
    let limit: Int
    private(set) var held = 0

    init(limit: Int) {
        self.limit = limit
    }

    /// One holder's bytes go from `counted` (what it was counted for) to `now`. Returns false, counting nothing,
    /// when that growth would pass the limit; a shrink always succeeds.
    mutating func recount(from counted: Int, to now: Int) -> Bool {
        let more = now - counted
        if more > 0 && held + more > limit { return false }
        held += more
        return true
    }
}
