import CoreMetrics
import Synchronization

/// swift-metrics handles made once per label set and reused: making one costs a registry lookup under a lock,
/// which has no place on the request path.
public final class MetricsCache: Sendable {
    private struct Key: Hashable {
        var label: String
        var dimensions: [String]
    }

    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[Key: Timer]>([:])
    private let gauges = Mutex<[Key: Gauge]>([:])

    public init() {}

    public func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
        Self.cached(counters, label, dimensions) { Counter(label: $0, dimensions: $1) }
    }

    public func timer(_ label: String, _ dimensions: [(String, String)] = []) -> Timer {
        Self.cached(timers, label, dimensions) { Timer(label: $0, dimensions: $1) }
    }

    public func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> Gauge {
        Self.cached(gauges, label, dimensions) { Gauge(label: $0, dimensions: $1) }
    }

    private static func cached<Metric>(
        _ cache: borrowing Mutex<[Key: Metric]>, _ label: String, _ dimensions: [(String, String)],
        make: (String, [(String, String)]) -> Metric
    ) -> Metric {
        let key = Key(label: label, dimensions: dimensions.flatMap { [$0.0, $0.1] })
        return cache.withLock { cache in
            if let metric = cache[key] { return metric }
            let metric = make(label, dimensions)
            cache[key] = metric
            return metric
        }
    }
}

extension Timer {
    public func record(_ duration: Duration) {
        recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
