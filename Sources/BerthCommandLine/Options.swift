import ArgumentParser
import Logging

/// Options every Berth executable takes.
public struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical (default: $LOG_LEVEL, else info).")
    public var logLevel: LogLevelArgument?

    public init() {}

    /// Sets up swift-log for the process once and returns its logger.
    public func bootstrapLogging(label: String) -> Logger {
        let level = logLevel?.level
            ?? ProcessEnvironment.value("LOG_LEVEL").flatMap { Logger.Level(rawValue: $0.lowercased()) }
            ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}

public struct LogLevelArgument: ExpressibleByArgument, Sendable {
    public let level: Logger.Level

    public init?(argument: String) {
        guard let level = Logger.Level(rawValue: argument.lowercased()) else { return nil }
        self.level = level
    }
}

/// A duration on the command line and in compose files: `250ms`, `30s`, `10m`, `1h`, or `1m30s`.
public struct DurationArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    public let duration: Duration

    public init(_ duration: Duration) { self.duration = duration }

    public init?(argument: String) {
        guard let duration = Self.parse(argument) else { return nil }
        self.duration = duration
    }

    public static func parse(_ text: String) -> Duration? {
        var total = Duration.zero
        var number = ""
        var unit = ""
        var parsedAny = false
        func flush() -> Bool {
            guard let value = Int64(number) else { return false }
            switch unit {
            case "ms": total += .milliseconds(value)
            case "s": total += .seconds(value)
            case "m": total += .seconds(value * 60)
            case "h": total += .seconds(value * 3_600)
            default: return false
            }
            parsedAny = true
            number = ""
            unit = ""
            return true
        }
        for character in text {
            if character.isNumber {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(character)
            } else if character.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(character)
            } else {
                return nil
            }
        }
        guard !number.isEmpty, flush(), parsedAny else { return nil }
        return total
    }

    public var description: String { "\(duration)" }
    public static var defaultCompletionKind: CompletionKind { .default }
}

/// `host:port`, e.g. `127.0.0.1:8787`.
public struct HostPort: ExpressibleByArgument, Sendable {
    public let host: String
    public let port: Int

    public init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]),
              (0...65_535).contains(port)
        else { return nil }
        host = String(argument[..<colon])
        self.port = port
    }
}

public enum ProcessEnvironment {
    public static func value(_ name: String) -> String? {
        guard let pointer = getenv(name) else { return nil }
        return String(cString: pointer)
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Signal names as people write them: `SIGTERM`, `TERM`, or a number.
public enum SignalName {
    static let names: [String: Int32] = [
        "HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12, "TERM": 15,
    ]

    public static func number(_ text: String) -> Int32? {
        if let number = Int32(text), (1...64).contains(number) { return number }
        var name = text.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        return names[name]
    }
}
