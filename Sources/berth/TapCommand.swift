import ArgumentParser
import BerthCommandLine
import BerthTap
import BerthWire
import Dispatch
import Logging
import Synchronization

import Glibc

struct Tap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the mesh's traffic as it happens.",
        discussion: """
            Subscribes to the router's event stream and prints one line per exchange (the network log), one JSON \
            object per event (--json), or a table of per-container counters (--stats). A request through the edge \
            is reported twice: by the edge (client side, end-to-end latency) and by the sidecar that served it.

            --stats counts each exchange once per side: a container's RECEIVED, BYTES IN/OUT, ERRORS and latency \
            come from its sidecar's events; the edge's SENT, BYTES OUT (request bodies), BYTES IN (response \
            bodies), ERRORS and latency come from the edge's events. An error is a status of 500 or more, or a \
            mesh error.

            Examples:
              berth tap --filter ContainerA/a-0
              berth tap --json --topic traffic.edge. | jq .latency_us
              berth tap --stats --events-out tcp://10.0.0.5:7703
            """
    )

    @Option(name: .customLong("events-out"), help: "The routers' events-out endpoints (XPUB), comma-separated: each event is shown once (default: the compose file's, or tcp://127.0.0.1:7703).")
    var eventsOut: String?

    @Option(name: .shortAndLong, help: "A compose file: tap its mesh, on whichever host it runs, with its keys.")
    var file: String?

    @OptionGroup var security: SecurityOptions

    @Flag(help: "One JSON object per line, keys as in Proto/berth.proto.")
    var json = false

    @Flag(help: "A table of counters per container instead of one line per event.")
    var stats = false

    @Option(
        name: .customLong("filter"),
        help: ArgumentHelp(
            "Only events about CLASS or CLASS/INSTANCE: the source or destination of traffic, the container of lifecycle and log events. Repeatable (any matches).",
            valueName: "CLASS[/INSTANCE]"
        )
    )
    var filters: [FilterArgument] = []

    @Option(
        name: .customLong("topic"),
        help: ArgumentHelp("Subscribe to topics starting with PREFIX, e.g. traffic.edge. or lifecycle. Repeatable (default: everything).", valueName: "PREFIX")
    )
    var topics: [String] = []

    @Option(help: "Print the tree of one trace (its W3C trace id, 32 hex digits) with timings, once its events have stopped coming for --settle, then exit.")
    var trace: String?

    @Option(help: "With --trace: how long no further event of the trace must come before the tree is printed.")
    var settle = DurationArgument(.seconds(1))

    @Option(help: "Exit after N matching events.")
    var count: Int?

    @Option(help: "How often --stats prints (default: 1s on a terminal, 10s otherwise).")
    var interval: DurationArgument?

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if json && stats { throw ValidationError("--json and --stats cannot be used together.") }
        if let trace {
            if json || stats { throw ValidationError("--trace prints a tree; it cannot be used with --json or --stats.") }
            guard TraceParent.isTraceID(trace) else {
                throw ValidationError("--trace '\(trace)' is not a trace id: 32 lowercase hex digits, as in traceparent 00-<trace id>-<span id>-01.")
            }
        }
        if let count, count < 1 { throw ValidationError("--count must be at least 1.") }
        if let interval, interval.duration <= .zero { throw ValidationError("--interval must be longer than zero.") }
    }

    func run() async throws {
        // A closed stdout must show up as EPIPE from write(2), which ends the tap, not as a signal that kills it.
        signal(SIGPIPE, SIG_IGN)
        let logger = common.bootstrap(label: "berth.tap")
        var (eventsOut, security) = (self.eventsOut ?? "tcp://127.0.0.1:7703", try self.security.start(logger: logger))
        if let file {
            let mesh = try ComposeOptions.client(of: ComposeOptions.load(file), logger: logger)
            eventsOut = self.eventsOut ?? mesh.eventsOut
            security = security ?? mesh.security
        }
        let subscriber = TapSubscriber(
            configuration: TapConfiguration(endpoint: eventsOut, topics: topics, security: security),
            logger: logger
        )
        let run = TapRun(
            filters: filters.map(\.filter),
            count: count,
            mode: trace.map { .trace($0, settle: settle.duration) } ?? (json ? .json : stats ? .stats : .lines),
            terminal: isatty(STDOUT_FILENO) == 1,
            colour: Terminal.wantsColour(fileDescriptor: STDOUT_FILENO),
            interval: interval?.duration,
            endpoint: eventsOut,
            logger: logger,
            collected: SharedTrace(traceID: trace ?? "")
        )
        do {
            try await firstToFinish(
                { try await run.run(subscriber) },
                { try await run.settled() },
                { await waitForTerminationSignal() },
                { await StandardOutput.waitUntilClosed() }
            )
            try run.printTrace()
        } catch is OutputClosed {
            // The reader went away (`berth tap | head`): nothing left to do.
        }
    }
}

struct FilterArgument: ExpressibleByArgument {
    let filter: TapFilter

    init?(argument: String) {
        guard let filter = TapFilter(argument) else { return nil }
        self.filter = filter
    }
}

/// One run of `berth tap`: reads the stream and writes what the options ask for.
private struct TapRun: Sendable {
    enum Mode: Equatable {
        case lines, json, stats
        /// One trace's tree, printed once no event of it came for `settle`.
        case trace(String, settle: Duration)
    }

    let filters: [TapFilter]
    let count: Int?
    let mode: Mode
    let terminal: Bool
    let colour: Bool
    let interval: Duration?
    let endpoint: String
    let logger: Logger
    /// With --trace: the trace's events so far.
    let collected: SharedTrace

    func run(_ subscriber: TapSubscriber) async throws {
        let lines = EventFormatter(colour: colour)
        let json = JSONEventFormatter()
        let aggregate = SharedStats()
        try await subscriber.withEvents { items in
            try await withThrowingTaskGroup(of: Void.self) { group in
                if mode == .stats {
                    let interval = interval ?? (terminal ? .seconds(1) : .seconds(10))
                    group.addTask {
                        while true {
                            try await Task.sleep(for: interval)
                            try showStats(aggregate.mutex.withLock { $0 })
                        }
                    }
                }
                var matched = 0
                reading: for try await item in items {
                    switch item {
                    case .event(let tapped):
                        guard filters.isEmpty || filters.contains(where: { $0.matches(tapped.event) }) else { continue }
                        switch mode {
                        case .lines: try StandardOutput.write(lines.line(tapped) + "\n")
                        case .json: try StandardOutput.write(json.line(tapped) + "\n")
                        case .stats:
                            if case .traffic(let traffic) = tapped.event { aggregate.mutex.withLock { $0.record(traffic) } }
                        case .trace:
                            guard case .traffic(let traffic) = tapped.event,
                                  collected.mutex.withLock({ state in
                                      guard state.tree.add(traffic) else { return false }
                                      state.last = .now
                                      return true
                                  })
                            else { continue }
                        }
                        matched += 1
                        if let count, matched >= count { break reading }
                    case .malformed(let warning):
                        // A publisher that keeps sending garbage must not bury the output: the first ten, then
                        // every time the count doubles.
                        if warning.count <= 10 || warning.count & (warning.count - 1) == 0 {
                            logger.warning("\(warning)")
                        }
                    case .dropped(let dropped):
                        logger.warning("dropped \(dropped) events: the output could not keep up")
                    }
                }
                group.cancelAll()
            }
        }
        if mode == .stats { try showStats(aggregate.mutex.withLock { $0 }) }
    }

    /// With --trace: returns once the trace has events and none came for its settle time.
    func settled() async throws {
        guard case .trace(_, let settle) = mode else { return try await Task.sleep(for: .seconds(1 << 40)) }
        while true {
            try await Task.sleep(for: min(settle / 4, .milliseconds(100)))
            if collected.mutex.withLock({ $0.last.map { $0.duration(to: .now) >= settle } ?? false }) { return }
        }
    }

    /// With --trace: the tree of what was collected.
    func printTrace() throws(OutputClosed) {
        guard case .trace = mode else { return }
        let tree = collected.mutex.withLock { $0.tree }
        if tree.events.isEmpty {
            try StandardOutput.write("trace \(tree.traceID): no events\n")
        } else {
            try StandardOutput.write(tree.render(EventFormatter(colour: colour)))
        }
    }

    private func showStats(_ stats: TrafficStats) throws(OutputClosed) {
        let table = StatsTable.render(stats)
        if terminal {
            let title = "berth tap --stats  \(endpoint)  \(stats.events) traffic events  (Ctrl-C to quit)\n\n"
            try StandardOutput.write(StatsTable.clearScreen + title + table)
        } else {
            try StandardOutput.write(table + "\n")
        }
    }
}

/// The `--trace` events so far and when the last came, shared by the reader and the task that waits for them to settle.
private final class SharedTrace: Sendable {
    let mutex: Mutex<(tree: TraceTree, last: ContinuousClock.Instant?)>

    init(traceID: String) {
        mutex = Mutex((TraceTree(traceID: traceID), nil))
    }
}

/// The `--stats` counters, shared by the reader and the task that prints them.
private final class SharedStats: Sendable {
    let mutex = Mutex(TrafficStats())
}

/// Standard output written with write(2): no buffer to flush at exit, and EPIPE reported instead of swallowed.
private enum StandardOutput {
    static func write(_ text: String) throws(OutputClosed) {
        var text = text
        let failed = text.withUTF8 { bytes -> Bool in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return true
                }
                offset += written
            }
            return false
        }
        if failed { throw OutputClosed() }
    }

    /// Returns when the reader of a pipe on stdout has gone (or the terminal hung up), or when cancelled, so that
    /// `berth tap | head -3` ends even when no further event comes to fail a write.
    static func waitUntilClosed() async {
        while !Task.isCancelled {
            var item = pollfd(fd: STDOUT_FILENO, events: 0, revents: 0)
            if poll(&item, 1, 0) == 1 && item.revents & Int16(POLLERR | POLLHUP) != 0 { return }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }
}

/// Writing to stdout failed: its reader is gone.
private struct OutputClosed: Error {}

/// Returns on SIGINT or SIGTERM (which no longer kill the process), or when cancelled.
private func waitForTerminationSignal() async {
    let (signals, continuation) = AsyncStream.makeStream(of: Int32.self)
    let sources = [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number)
        source.setEventHandler { continuation.yield(number) }
        source.resume()
        return source
    }
    defer { sources.forEach { $0.cancel() } }
    for await _ in signals { return }
}

/// Runs the tasks concurrently until the first one returns or throws, then cancels the others.
private func firstToFinish(_ tasks: (@Sendable () async throws -> Void)...) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for task in tasks { group.addTask(operation: task) }
        defer { group.cancelAll() }
        try await group.next()
    }
}
