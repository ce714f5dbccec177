import ArgumentParser
import BerthBus
import BerthSpec
import Logging

/// Options every Berth executable takes.
public struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical (default: $LOG_LEVEL, else info).")
    public var logLevel: LogLevelArgument?

    @Option(name: .long, help: "How the kernel schedules libzmq's I/O threads: batch (a woken one waits for a busy core's running thread instead of preempting it) or normal.")
    public var ioScheduling: IOThreadScheduling = .batch

    public init() {}

    /// Sets up the process once: swift-log, the descriptor limit, and the bus's I/O threads (before any socket).
    /// Returns its logger.
    public func bootstrap(label: String) -> Logger {
        let logger = bootstrapLogging(label: label)
        raiseDescriptorLimit(logger: logger)
        do {
            try Context.shared.setIOThreadScheduling(ioScheduling)
        } catch {
            logger.warning("cannot set how the bus's I/O threads are scheduled", metadata: ["berth.error": "\(error)"])
        }
        return logger
    }

    /// Raises the soft limit on open descriptors to the hard one: an edge holds a descriptor per client, a router
    /// one per peer, and the soft default (often 1024) is a limit no one chose.
    private func raiseDescriptorLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        guard limit.rlim_cur < limit.rlim_max else { return }
        let before = limit.rlim_cur
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            logger.debug("raised the descriptor limit", metadata: ["berth.from": "\(before)", "berth.to": "\(limit.rlim_max)"])
        } else {
            logger.warning("cannot raise the descriptor limit", metadata: ["berth.limit": "\(before)", "berth.error": "\(String(cString: strerror(errno)))"])
        }
    }

    private func bootstrapLogging(label: String) -> Logger {
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

extension IOThreadScheduling: ExpressibleByArgument {}

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
        DurationParser.parse(text)
    }

    public var description: String { DurationParser.format(duration) }
    public static var defaultCompletionKind: CompletionKind { .default }
}

/// `host:port`, e.g. `127.0.0.1:8787`.
public struct HostPort: ExpressibleByArgument, Sendable, CustomStringConvertible {
    public var description: String { "\(host):\(port)" }
    public var defaultValueDescription: String { description }

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

import Glibc
