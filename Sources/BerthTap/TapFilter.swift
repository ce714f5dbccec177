import BerthWire

/// `--filter CLASS[/INSTANCE]`: keeps the events that involve one container class, or one instance of it.
///
/// A traffic event matches when its source or its destination matches; a lifecycle or log event when its
/// container does. The edge is the class `edge`, its name the instance: `edge/main`.
public struct TapFilter: Sendable, Hashable, CustomStringConvertible {
    public var className: String
    /// `nil`: every instance of the class.
    public var instanceID: String?

    public init(className: String, instanceID: String? = nil) {
        self.className = className
        self.instanceID = instanceID
    }

    /// Parses `CLASS` or `CLASS/INSTANCE`; `nil` when the class or the instance is empty.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, !first.isEmpty else { return nil }
        if parts.count == 2 {
            guard !parts[1].isEmpty else { return nil }
            self.init(className: String(first), instanceID: String(parts[1]))
        } else {
            self.init(className: String(first))
        }
    }

    public func matches(_ endpoint: Endpoint) -> Bool {
        endpoint.className == className && (instanceID == nil || endpoint.instanceID == instanceID)
    }

    public func matches(_ event: Event) -> Bool {
        switch event {
        case .traffic(let traffic): matches(traffic.source) || matches(traffic.destination)
        case .lifecycle(let lifecycle): matches(lifecycle.container)
        case .log(let line): matches(line.container)
        }
    }

    public var description: String { instanceID.map { "\(className)/\($0)" } ?? className }
}
