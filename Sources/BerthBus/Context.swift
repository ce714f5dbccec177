import CZeroMQ
import Dispatch
import Glibc
import Synchronization

/// How the kernel schedules a context's libzmq I/O threads (`ZMQ_THREAD_SCHED_POLICY`).
public enum IOThreadScheduling: String, Sendable, CaseIterable {
    /// The system's default policy: a woken I/O thread may preempt the thread that woke it.
    case normal
    /// `SCHED_BATCH`: a woken I/O thread runs on an idle core at once, and on a busy one when the running thread
    /// blocks or its slice ends, instead of preempting it. A bus thread that hands the I/O thread a message goes on
    /// with its turn; under load the I/O thread then takes a burst at once. On a loaded 2-core machine this cut the
    /// mesh's CPU per request by a seventh, for a longer tail at the 99.9th percentile (bench/PROFILE.md).
    case batch
}

/// A libzmq context. One per process is enough: `Context.shared`.
///
/// libzmq contexts are thread-safe; sockets are not (see `Socket`).
public final class Context: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    /// libzmq starts a context's I/O threads with its first socket; their scheduling is fixed from then on.
    private let threadsStarted = Atomic<Bool>(false)
    /// The ZAP handler of this context's CURVE server sockets (`Authenticator.start`).
    let authenticator = Mutex<Authenticator?>(nil)

    /// The process-wide context. Sockets close with LINGER 0, so exit is never delayed, except the event publisher's:
    /// an executable's last step, `terminate(waitingAtMost:)`, gives its last events a moment to leave.
    public static let shared = Context()

    public init(ioThreads: Int32 = 1) {
        handle = zmq_ctx_new()
        zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads)
    }

    /// Sets how the kernel schedules this context's I/O threads.
    /// - Throws: `BusError` when a socket was made already: its I/O threads run, and keep the policy they started with.
    public func setIOThreadScheduling(_ scheduling: IOThreadScheduling) throws(BusError) {
        let operation = "schedule the bus's I/O threads as \(scheduling.rawValue)"
        guard !threadsStarted.load(ordering: .acquiring) else {
            throw BusError(code: .alreadyStarted, operation: operation, message: "the I/O threads started with the first socket; set this before it")
        }
        guard scheduling == .batch else { return }
        // The I/O threads inherit the process's policy and priority, and libzmq aborts the process when it cannot
        // change them: from a real-time policy the inherited priority is invalid for SCHED_BATCH, and leaving
        // SCHED_IDLE may be refused. Only the two time-sharing policies switch safely.
        let current = sched_getscheduler(0)
        guard current == SCHED_OTHER || current == Self.schedBatch else {
            throw BusError(code: .notApplicable, operation: operation, message: "the process runs under scheduling policy \(current), which its I/O threads keep")
        }
        guard zmq_ctx_set(handle, ZMQ_THREAD_SCHED_POLICY, Self.schedBatch) == 0 else { throw BusError.last(operation) }
    }

    /// Linux's SCHED_BATCH, which Glibc's module leaves out (<sched.h> defines it under _GNU_SOURCE only).
    static let schedBatch: Int32 = 3

    /// Called for every socket made on this context.
    func socketMade() {
        threadsStarted.store(true, ordering: .releasing)
    }

    /// Waits until every socket is closed and what they still hold is sent (or their linger is over), at most
    /// `limit`; the context is unusable afterwards. An executable's last step: without it, the events a process
    /// publishes as it stops (an app's STOPPING and EXITED) die with it in libzmq's queue. zmq_ctx_term would wait
    /// for ever on a socket nobody closed, so it runs on a thread of its own and is given up on after `limit`.
    public func terminate(waitingAtMost limit: Duration) {
        let done = DispatchSemaphore(value: 0)
        let handle = UnsafeSendableHandle(pointer: handle)
        DispatchQueue(label: "berth-bus-terminate").async {
            zmq_ctx_term(handle.pointer)
            done.signal()
        }
        let (seconds, attoseconds) = limit.components
        _ = done.wait(timeout: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)))
    }

    /// The libzmq version this process runs, e.g. `4.3.4`.
    public static var libraryVersion: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}

/// A libzmq context handle, for the one call that crosses threads (zmq_ctx_term is thread-safe).
private struct UnsafeSendableHandle: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
}
