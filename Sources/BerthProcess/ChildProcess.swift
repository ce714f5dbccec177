import CBerthSpawn
import Dispatch
import Synchronization

import Glibc

/// How a child process ended.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    /// The code a shell would report: the exit code, or 128 + the signal.
    public var code: Int32 {
        switch self {
        case .exited(let code): code
        case .signalled(let signal): 128 + signal
        }
    }

    /// The codes a shell gives a command it could not run: 126 (found, not executable) and 127 (not found). A
    /// process that ends so before it ever served could not start: retrying it would fail the same way.
    public var isStartFailure: Bool { self == .exited(126) || self == .exited(127) }

    public var description: String {
        switch self {
        case .exited(let code): "exited with code \(code)"
        case .signalled(let signal): "was killed by signal \(signal)"
        }
    }
}

/// One line a child printed.
public struct OutputLine: Sendable, Equatable {
    public enum Stream: Sendable { case stdout, stderr }
    public var stream: Stream
    public var text: String
}

/// What to start.
public struct ProcessSpec: Sendable {
    /// The program and its arguments; the program is looked up in PATH when it has no slash.
    public var command: [String]
    /// Added to (and overriding) this process's own environment.
    public var environment: [String: String] = [:]
    public var workingDirectory: String?
    /// Its own process group, so that a stop reaches everything it started.
    public var newProcessGroup = true
    /// Sent to the child when this process dies, however it dies: nothing is left behind.
    public var parentDeathSignal: Int32 = SIGKILL
    /// A descriptor of a network namespace (Linux) that the child joins before exec; nil: this process's own.
    /// The caller keeps it open.
    public var networkNamespace: Int32?

    public init(command: [String]) {
        self.command = command
    }
}

public struct SpawnError: Error, CustomStringConvertible, Sendable {
    public var command: [String]
    public var errorNumber: Int32
    /// The child could not join `ProcessSpec.networkNamespace`.
    public var joiningNetworkNamespace = false
    public var description: String {
        "cannot start \(command.first ?? "(nothing)"): \(reason)"
    }

    /// Why, without the command.
    public var reason: String {
        let text = String(cString: strerror(errorNumber))
        return joiningNetworkNamespace ? "setns(CLONE_NEWNET) into its network namespace failed: \(text)" : text
    }

    /// The status a shell would report for the same failure: 127 when the program is not there, 126 otherwise.
    public var exitStatus: ExitStatus { errorNumber == ENOENT ? .exited(127) : .exited(126) }
}

/// A running child process: its pid, its output line by line, and its end.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    public let spec: ProcessSpec
    /// Every line the child prints on stdout and stderr, until both are closed.
    public let output: AsyncStream<OutputLine>
    private let exit = Mutex<(status: ExitStatus?, waiters: [CheckedContinuation<ExitStatus, Never>])>((nil, []))

    /// This process's environment, which a child inherits with its own variables on top.
    private static func inheritedEnvironment() -> [String: String] {
        var environment: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") {
                environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        return environment
    }

    /// Starts `spec`; throws when the program cannot be started at all (not found, not executable, bad folder).
    public init(_ spec: ProcessSpec) throws(SpawnError) {
        self.spec = spec
        guard !spec.command.isEmpty else { throw SpawnError(command: [], errorNumber: ENOENT) }
        var stdoutPipe: [Int32] = [0, 0]
        var stderrPipe: [Int32] = [0, 0]
        guard berth_pipe_cloexec(&stdoutPipe) == 0, berth_pipe_cloexec(&stderrPipe) == 0 else {
            throw SpawnError(command: spec.command, errorNumber: errno)
        }
        var environment = Self.inheritedEnvironment()
        for (key, value) in spec.environment { environment[key] = value }
        let environmentStrings = environment.map { "\($0.key)=\($0.value)" }
        let nullInput = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let (stdoutWrite, stderrWrite) = (stdoutPipe[1], stderrPipe[1])
        let (pid, step): (pid_t, Int32) = Spawner.shared.run {
            withCStrings(spec.command) { argv in
                withCStrings(environmentStrings) { envp in
                    var error: Int32 = 0
                    var step: Int32 = 0
                    let pid = berth_spawn(argv, envp, spec.workingDirectory, nullInput, stdoutWrite, stderrWrite,
                                          spec.newProcessGroup ? 1 : 0, spec.parentDeathSignal, spec.networkNamespace ?? -1,
                                          &error, &step)
                    return (pid < 0 ? -error : pid, step)
                }
            }
        }
        close(nullInput)
        close(stdoutPipe[1])
        close(stderrPipe[1])
        guard pid > 0 else {
            close(stdoutPipe[0])
            close(stderrPipe[0])
            throw SpawnError(command: spec.command, errorNumber: -pid,
                             joiningNetworkNamespace: step == Int32(BERTH_SPAWN_STEP_NETWORK_NAMESPACE))
        }
        self.pid = pid

        let (output, continuation) = AsyncStream.makeStream(of: OutputLine.self)
        self.output = output
        let open = Atomic<Int>(2)
        for (fd, stream) in [(stdoutPipe[0], OutputLine.Stream.stdout), (stderrPipe[0], .stderr)] {
            DispatchQueue(label: "berth-child-output").async {
                readLines(fd) { continuation.yield(OutputLine(stream: stream, text: $0)) }
                close(fd)
                if open.subtract(1, ordering: .relaxed).newValue == 0 { continuation.finish() }
            }
        }
        DispatchQueue(label: "berth-child-wait").async { [self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let ended: ExitStatus = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
            let waiters = exit.withLock { state in
                state.status = ended
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: ended) }
        }
    }

    /// Sends `signal` to the child, or to its whole process group when it has one.
    public func signal(_ signal: Int32) {
        guard status == nil else { return }
        if spec.newProcessGroup { kill(-pid, signal) } else { kill(pid, signal) }
    }

    /// How it ended, or nil while it runs.
    public var status: ExitStatus? { exit.withLock { $0.status } }

    /// Waits until the child has ended.
    public func wait() async -> ExitStatus {
        await withCheckedContinuation { continuation in
            let ended: ExitStatus? = exit.withLock { state in
                if let status = state.status { return status }
                state.waiters.append(continuation)
                return nil
            }
            if let ended { continuation.resume(returning: ended) }
        }
    }

    /// Sends `signal`, waits up to `grace`, then SIGKILLs the group; returns how it ended.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, grace: Duration) async -> ExitStatus {
        self.signal(signal)
        return await withTaskGroup(of: ExitStatus?.self) { group in
            group.addTask { await self.wait() }
            group.addTask {
                try? await Task.sleep(for: grace)
                return nil
            }
            if let first = await group.next(), let status = first {
                group.cancelAll()
                return status
            }
            self.signal(SIGKILL)
            let status = await self.wait()
            group.cancelAll()
            return status
        }
    }
}

/// Reads `fd` to its end and hands over each line without its newline; a last unterminated line counts too.
private func readLines(_ fd: Int32, _ line: (String) -> Void) {
    var pending: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16_384)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        var start = 0
        for index in 0..<count where buffer[index] == UInt8(ascii: "\n") {
            pending.append(contentsOf: buffer[start..<index])
            line(String(decoding: pending, as: UTF8.self))
            pending.removeAll(keepingCapacity: true)
            start = index + 1
        }
        pending.append(contentsOf: buffer[start..<count])
        // A line longer than 64 KiB is handed over in pieces rather than held without bound.
        if pending.count > 65_536 {
            line(String(decoding: pending, as: UTF8.self))
            pending.removeAll(keepingCapacity: true)
        }
    }
    if !pending.isEmpty { line(String(decoding: pending, as: UTF8.self)) }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    let array: [UnsafePointer<CChar>?] = pointers.map { UnsafePointer($0) } + [nil]
    return array.withUnsafeBufferPointer { body($0.baseAddress!) }
}
