/// Latencies in log-linear buckets (as HdrHistogram): exact below 64 µs, then 64 buckets per power of two,
/// so a percentile is off by less than 1 % of its value, and memory is at most a few KiB whatever the count.
public struct LatencyHistogram: Sendable, Hashable {
    /// Buckets per power of two, as a power of two.
    private static let subBucketBits = 6
    private static let subBuckets: UInt64 = 1 << subBucketBits

    /// Counts per bucket; grows up to the bucket of the largest value seen (≈1,200 buckets for 10 s).
    private var counts: [UInt64] = []
    public private(set) var count: UInt64 = 0
    public private(set) var minimum: UInt64 = .max
    public private(set) var maximum: UInt64 = 0

    public init() {}

    public mutating func record(_ microseconds: UInt64) {
        let index = Self.index(of: microseconds)
        if index >= counts.count { counts.append(contentsOf: repeatElement(0, count: index + 1 - counts.count)) }
        counts[index] += 1
        count += 1
        minimum = min(minimum, microseconds)
        maximum = max(maximum, microseconds)
    }

    /// The value at `fraction` (0.5 for p50, 0.99 for p99) by nearest rank: the smallest recorded value with at
    /// least that fraction of values at or below it, to within its bucket. `nil` when nothing was recorded.
    public func percentile(_ fraction: Double) -> UInt64? {
        guard count > 0 else { return nil }
        let rank = max(1, UInt64((fraction * Double(count)).rounded(.up)))
        // The ends are known exactly.
        if rank == 1 { return minimum }
        if rank >= count { return maximum }
        var seen: UInt64 = 0
        for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
            seen += bucketCount
            if seen >= rank {
                let (lower, width) = Self.bucket(index)
                return min(max(lower + (width - 1) / 2, minimum), maximum)
            }
        }
        return maximum
    }

    static func index(of value: UInt64) -> Int {
        guard value >= subBuckets else { return Int(value) }
        let octave = (63 - value.leadingZeroBitCount) - subBucketBits
        let sub = (value >> UInt64(octave)) - subBuckets
        return Int(subBuckets) * (octave + 1) + Int(sub)
    }

    /// The lowest value in bucket `index` and how many values it spans.
    static func bucket(_ index: Int) -> (lower: UInt64, width: UInt64) {
        guard index >= Int(subBuckets) else { return (UInt64(index), 1) }
        let octave = index / Int(subBuckets) - 1
        let sub = UInt64(index % Int(subBuckets))
        return ((subBuckets + sub) << UInt64(octave), 1 << UInt64(octave))
    }
}
