/// Reads the durations compose files use: `250ms`, `30s`, `10m`, `1h`, `1m30s`, `1.5s`, or a bare integer of
/// seconds (`30`).
public enum DurationParser {
    /// The duration `text` spells, or nil if it is empty, negative, or uses a unit other than ms, s, m or h.
    public static func parse(_ text: String) -> Duration? {
        guard !text.isEmpty else { return nil }
        if text.allSatisfy(\.isASCIIDigit) {
            return Int64(text).flatMap { total(nanoseconds: $0, times: nanosecondsPerUnit["s"]!) }.map(Duration.nanoseconds)
        }

        var nanoseconds: Int64 = 0
        var rest = Substring(text)
        while !rest.isEmpty {
            let whole = rest.prefix(while: \.isASCIIDigit)
            rest = rest.dropFirst(whole.count)
            var fraction = Substring()
            if rest.first == "." {
                rest = rest.dropFirst()
                fraction = rest.prefix(while: \.isASCIIDigit)
                rest = rest.dropFirst(fraction.count)
                guard !fraction.isEmpty else { return nil }
            }
            guard !whole.isEmpty || !fraction.isEmpty else { return nil }
            let unitName = rest.prefix(while: \.isLetter)
            rest = rest.dropFirst(unitName.count)
            guard let unit = nanosecondsPerUnit[String(unitName)] else { return nil }

            guard let wholePart = Int64(whole.isEmpty ? "0" : whole), let part = total(nanoseconds: wholePart, times: unit)
            else { return nil }
            let (withFraction, overflow) = part.addingReportingOverflow(fractionalNanoseconds(fraction, unit: unit))
            let (sum, sumOverflow) = nanoseconds.addingReportingOverflow(withFraction)
            guard !overflow, !sumOverflow else { return nil }
            nanoseconds = sum
        }
        return .nanoseconds(nanoseconds)
    }

    /// `duration` as `parse` reads it: `1h2m3s`, `250ms`, `1.5s`, `0s`.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return "\(duration)" }
        let milliseconds = attoseconds / 1_000_000_000_000_000
        guard milliseconds * 1_000_000_000_000_000 == attoseconds else {
            var fraction = String(attoseconds / 1_000_000_000 + 1_000_000_000).dropFirst()  // nine digits
            while fraction.last == "0" { fraction.removeLast() }
            return "\(seconds).\(fraction)s"
        }
        var text = ""
        if seconds >= 3600 { text += "\(seconds / 3600)h" }
        if seconds % 3600 >= 60 { text += "\(seconds % 3600 / 60)m" }
        if seconds % 60 > 0 { text += "\(seconds % 60)s" }
        if milliseconds > 0 { text += "\(milliseconds)ms" }
        return text.isEmpty ? "0s" : text
    }

    private static let nanosecondsPerUnit: [String: Int64] = [
        "ms": 1_000_000,
        "s": 1_000_000_000,
        "m": 60_000_000_000,
        "h": 3_600_000_000_000,
    ]

    private static func total(nanoseconds value: Int64, times unit: Int64) -> Int64? {
        let (product, overflow) = value.multipliedReportingOverflow(by: unit)
        return overflow ? nil : product
    }

    /// `0.DIGITS` of a unit in nanoseconds. Digits past nanosecond precision are dropped.
    private static func fractionalNanoseconds(_ digits: Substring, unit: Int64) -> Int64 {
        var result: Int64 = 0
        var scale = unit
        for digit in digits {
            scale /= 10
            guard scale > 0 else { break }
            result += Int64(digit.asciiValue! - 48) * scale
        }
        return result
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
