/// Numbers as people read them in a terminal.
public enum Units {
    /// `512 B`, `1.2 KiB`, `3.4 MiB`, … (powers of 1024, one decimal under 100 units).
    public static func bytes(_ count: UInt64) -> String {
        guard count >= 1_024 else { return "\(count) B" }
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(count) / 1_024
        var unit = 0
        while value >= 1_024 && unit < units.count - 1 {
            value /= 1_024
            unit += 1
        }
        return value < 100 ? "\(fixed(value, decimals: 1)) \(units[unit])" : "\(fixed(value, decimals: 0)) \(units[unit])"
    }

    /// `0.84 ms`, `12.3 ms`, `250 ms`, `1.25 s`, from microseconds.
    public static func latency(microseconds: UInt64) -> String {
        let milliseconds = Double(microseconds) / 1_000
        switch milliseconds {
        case ..<10: return "\(fixed(milliseconds, decimals: 2)) ms"
        case ..<100: return "\(fixed(milliseconds, decimals: 1)) ms"
        case ..<1_000: return "\(fixed(milliseconds, decimals: 0)) ms"
        default: return "\(fixed(milliseconds / 1_000, decimals: 2)) s"
        }
    }

    /// `value` rounded half up to `decimals` places, without Foundation's locale-dependent formatting.
    static func fixed(_ value: Double, decimals: Int) -> String {
        var scale: UInt64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = UInt64((value * Double(scale)).rounded(.toNearestOrAwayFromZero))
        let whole = scaled / scale
        guard decimals > 0 else { return "\(whole)" }
        let fraction = String(scaled % scale)
        return "\(whole).\(String(repeating: "0", count: decimals - fraction.count))\(fraction)"
    }
}
