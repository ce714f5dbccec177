import Glibc

/// Wall-clock time for the timestamps of events, without Foundation.
public enum WallClock {
    /// Microseconds since the Unix epoch.
    public static func nowMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}

extension Duration {
    /// The duration in whole microseconds, as events carry latencies; negative durations count as zero.
    public var wholeMicroseconds: UInt64 {
        UInt64(clamping: components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000)
    }

    /// Whole milliseconds, rounded down, as requests carry their time left.
    public var milliseconds: Int64 { components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000 }
}
