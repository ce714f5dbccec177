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
        let key = Key(label: label, dimensions: dimensions.flatMap { [$0.0, $0.1] })
        return counters.withLock { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions)
            cache[key] = counter
            return counter
        }
    }

    public func timer(_ label: String, _ dimensions: [(String, String)] = []) -> Timer {
        let key = Key(label: label, dimensions: dimensions.flatMap { [$0.0, $0.1] })
        return timers.withLock { cache in
            if let timer = cache[key] { return timer }
            let timer = Timer(label: label, dimensions: dimensions)
            cache[key] = timer
            return timer
        }
    }

    public func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> Gauge {
        let key = Key(label: label, dimensions: dimensions.flatMap { [$0.0, $0.1] })
        return gauges.withLock { cache in
            if let gauge = cache[key] { return gauge }
            let gauge = Gauge(label: label, dimensions: dimensions)
            cache[key] = gauge
            return gauge
        }
    }
}

extension Timer {
    public func record(_ duration: Duration) {
        recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
