import BerthWire
import Foundation

/// The network log: one line per event, for people watching a terminal.
///
/// ```
/// 14:03:07.123 edge      edge/main → ContainerA/a-0 :8080 GET /a/hello 200 in 12 B out 1.2 KiB 0.84 ms
/// 14:03:07.124 sidecar   edge/main → ContainerB/b-1 :3000 POST /b 502 in 0 B out 0 B 3.10 ms error app_unreachable (sidecar): connection refused
/// 14:03:08.001 lifecycle ContainerA/a-0 :8080 healthy pid 4242
/// 14:03:08.002 log       ContainerA/a-0 stderr listening on :8080
/// ```
///
/// Both the edge and the sidecar report an exchange, so a request through the edge shows up twice:
/// the edge's line has the client-side latency, the sidecar's the app's.
public struct EventFormatter: Sendable {
    /// ANSI colours; see `Terminal.wantsColour`.
    public var colour: Bool
    /// The zone the time of day is shown in.
    public var timeZone: TimeZone

    public init(colour: Bool = false, timeZone: TimeZone = .current) {
        self.colour = colour
        self.timeZone = timeZone
    }

    /// The line for `tapped`, without a newline.
    public func line(_ tapped: TappedEvent) -> String {
        switch tapped.event {
        case .traffic(let traffic): line(traffic)
        case .lifecycle(let lifecycle): line(lifecycle)
        case .log(let log): line(log)
        }
    }

    public func line(_ event: TrafficEvent) -> String {
        let kind = switch event.kind {
        case .edge: paint("edge     ", .blue)
        case .sidecar: paint("sidecar  ", .cyan)
        case .egress: paint("egress   ", .yellow)
        case .unspecified: "traffic  "
        }
        var line = "\(time(event.timeMicroseconds)) \(kind) \(Self.name(event.source)) → \(Self.name(event.destination))"
        if event.destination.port != 0 { line += " :\(event.destination.port)" }
        line += " \(event.method) \(event.path) \(status(event))"
        line += " in \(Units.bytes(event.bytesIn)) out \(Units.bytes(event.bytesOut))"
        line += " \(Units.latency(microseconds: event.latencyMicroseconds))"
        if let error = event.error {
            var text = "error \(Names.errorCode(error.code))"
            if !error.component.isEmpty { text += " (\(error.component))" }
            if !error.message.isEmpty { text += ": \(error.message)" }
            line += " " + paint(text, .red)
        }
        return line
    }

    public func line(_ event: LifecycleEvent) -> String {
        var line = "\(time(event.timeMicroseconds)) \(paint("lifecycle", .magenta)) \(Self.name(event.container))"
        if event.container.port != 0 { line += " :\(event.container.port)" }
        let state: Colour = switch event.state {
        case .healthy, .returned: .green
        case .starting, .restarting: .yellow
        case .exited, .ejected: .red
        case .stopping, .sleeping, .unspecified: .dim
        }
        line += " " + paint(Names.lifecycleState(event.state), state)
        if event.pid != 0 { line += " pid \(event.pid)" }
        if event.state == .exited || event.state == .restarting || event.exitCode != 0 { line += " exit \(event.exitCode)" }
        if event.restarts != 0 { line += " restarts \(event.restarts)" }
        if !event.message.isEmpty { line += " " + paint(event.message, .dim) }
        return line
    }

    public func line(_ event: LogLine) -> String {
        let stream = switch event.stream {
        case .stdout: paint("stdout", .dim)
        case .stderr: paint("stderr", .red)
        }
        return "\(time(event.timeMicroseconds)) \(paint("log      ", .dim)) \(Self.name(event.container)) \(stream) \(event.line)"
    }

    /// `Class/instance`; `Class` when the instance is not known; `-` for an endpoint nobody filled in.
    public static func name(_ endpoint: Endpoint) -> String {
        if endpoint.className.isEmpty { return endpoint.instanceID.isEmpty ? "-" : "-/\(endpoint.instanceID)" }
        return endpoint.instanceID.isEmpty ? endpoint.className : "\(endpoint.className)/\(endpoint.instanceID)"
    }

    /// Local time of day with milliseconds: `14:03:07.123`.
    func time(_ microseconds: UInt64) -> String {
        let seconds = Int64(microseconds / 1_000_000)
        let offset = Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds))))
        let ofDay = ((seconds + offset) % 86_400 + 86_400) % 86_400
        let millis = microseconds / 1_000 % 1_000
        let text = "\(Self.two(ofDay / 3_600)):\(Self.two(ofDay / 60 % 60)):\(Self.two(ofDay % 60)).\(Self.three(millis))"
        return paint(text, .dim)
    }

    private func status(_ event: TrafficEvent) -> String {
        guard event.status != 0 else { return paint("---", .red) }
        let text = "\(event.status)"
        return switch event.status {
        case 200..<300: paint(text, .green)
        case 300..<400: paint(text, .cyan)
        case 400..<500: paint(text, .yellow)
        default: paint(text, .red)
        }
    }

    enum Colour: String {
        case red = "31", green = "32", yellow = "33", blue = "34", magenta = "35", cyan = "36", dim = "2"
    }

    private func paint(_ text: String, _ colour: Colour) -> String {
        self.colour ? "\u{1B}[\(colour.rawValue)m\(text)\u{1B}[0m" : text
    }

    private static func two<T: BinaryInteger>(_ value: T) -> String { value < 10 ? "0\(value)" : "\(value)" }
    private static func three<T: BinaryInteger>(_ value: T) -> String { value < 10 ? "00\(value)" : value < 100 ? "0\(value)" : "\(value)" }
}

/// Whether output should be coloured.
public enum Terminal {
    /// True when `fileDescriptor` is a terminal and `NO_COLOR` is unset or empty (https://no-color.org).
    public static func wantsColour(fileDescriptor: Int32 = 1, environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        isatty(fileDescriptor) == 1 && (environment["NO_COLOR"] ?? "").isEmpty
    }
}

/// The lowercase names the tap shows for proto enums: the proto value's name without its enum prefix.
public enum Names {
    public static func trafficKind(_ kind: TrafficKind) -> String {
        switch kind {
        case .unspecified: "unspecified"
        case .edge: "edge"
        case .sidecar: "sidecar"
        case .egress: "egress"
        }
    }

    public static func lifecycleState(_ state: LifecycleState) -> String {
        switch state {
        case .unspecified: "unspecified"
        case .starting: "starting"
        case .healthy: "healthy"
        case .stopping: "stopping"
        case .sleeping: "sleeping"
        case .exited: "exited"
        case .restarting: "restarting"
        case .ejected: "ejected"
        case .returned: "returned"
        }
    }

    public static func logStream(_ stream: LogStream) -> String {
        switch stream {
        case .stdout: "stdout"
        case .stderr: "stderr"
        }
    }

    public static func errorCode(_ code: ErrorCode) -> String {
        switch code {
        case .none: "none"
        case .appUnreachable: "app_unreachable"
        case .appFailed: "app_failed"
        case .noInstance: "no_instance"
        case .saturated: "saturated"
        case .deadlineExceeded: "deadline_exceeded"
        case .tooLarge: "too_large"
        case .badRequest: "bad_request"
        case .instanceLost: "instance_lost"
        case .routerUnreachable: "router_unreachable"
        case .internal: "internal"
        case .appUnavailable: "app_unavailable"
        }
    }
}
