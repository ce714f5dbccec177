import CZeroMQ
import Dispatch
import Synchronization

import Glibc

/// What runs on a `BusLoop`'s thread: it owns the sockets and all the state that goes with them.
public protocol BusLoopBody: AnyObject, SendableMetatype {
    /// The sockets to watch for incoming messages; read again before every poll.
    var sockets: [Socket] { get }
    /// A whole message arrived on `sockets[index]`.
    func received(_ frames: [Frame], on index: Int)
    /// Receiving on `sockets[index]` failed; the loop goes on.
    func receiveFailed(_ error: BusError, on index: Int)
    /// Called after every wake-up. Returns when it wants to be called next, or `nil` for no timer.
    func tick(now: ContinuousClock.Instant) -> ContinuousClock.Instant?
    /// The loop is about to stop: last words (e.g. DISCONNECT) go out here.
    func stopping()
    /// A descriptor the body watches in its loop's `DescriptorPoller` had `events` (poll(2)'s bits); `token` is the
    /// one it was watched with.
    func descriptorReady(token: Int, events: Int16)
}

extension BusLoopBody {
    public func receiveFailed(_ error: BusError, on index: Int) {}
    public func tick(now: ContinuousClock.Instant) -> ContinuousClock.Instant? { nil }
    public func stopping() {}
    public func descriptorReady(token: Int, events: Int16) {}
}

/// One thread that owns a set of ZeroMQ sockets and polls them, and takes work from Swift concurrency.
///
/// Sockets are not thread-safe, so they never leave this thread: other threads hand it closures through
/// `execute`, which wakes the poll through an eventfd. The body is made on the thread itself.
public final class BusLoop<Body: BusLoopBody>: Sendable {
    private struct Pending: ~Copyable {
        var work: [@Sendable (Body) -> Void] = []
        var stopRequested = false
        var running = false
    }

    private let name: String
    private let makeBody: @Sendable (BusLoop<Body>, DescriptorPoller) throws -> Body
    private let pending = Mutex(Pending())
    private let wakeFD: Int32
    /// Messages taken from one socket before the loop looks at the others.
    private let receiveBatch = 256

    public init(name: String, makeBody: @escaping @Sendable () throws -> Body) {
        self.name = name
        self.makeBody = { _, _ in try makeBody() }
        self.wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
    }

    /// A loop whose body drives plain descriptors of its own (`DescriptorPoller`), or hands work back to the loop
    /// itself (from a task it starts, say).
    public init(name: String, makeBodyWithLoop: @escaping @Sendable (BusLoop<Body>, DescriptorPoller) throws -> Body) {
        self.name = name
        self.makeBody = makeBodyWithLoop
        self.wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
    }

    deinit {
        close(wakeFD)
    }

    /// Runs `work` on the loop's thread, soon. Returns false when the loop has stopped (the work is dropped).
    @discardableResult
    public func execute(_ work: @escaping @Sendable (Body) -> Void) -> Bool {
        let wake: Bool? = pending.withLock { pending in
            guard !pending.stopRequested else { return nil }
            pending.work.append(work)
            return pending.work.count == 1
        }
        guard let wake else { return false }
        if wake { signal() }
        return true
    }

    /// Asks the loop to stop after the work already handed to it.
    public func stop() {
        pending.withLock { $0.stopRequested = true }
        signal()
    }

    private func signal() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Starts the thread and returns when it has stopped: after `stop()`, or when the calling task is cancelled.
    /// - Throws: what `makeBody` threw (a bind that failed, say).
    public func run() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // A thread of its own for as long as the loop runs: the block blocks in poll(2).
                DispatchQueue(label: name).async { [self] in
                    berth_name_thread(name)
                    do {
                        let descriptors = try DescriptorPoller()
                        let body = try makeBody(self, descriptors)
                        loop(body, descriptors: descriptors)
                        continuation.resume()
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
            }
        } onCancel: {
            stop()
        }
    }

    /// Polls the sockets' ZMQ_FD descriptors with poll(2) rather than `zmq_poll`: zmq_poll asks every socket for
    /// ZMQ_EVENTS twice per wake-up (two system calls each), which on the router was most of its system calls.
    /// Here a socket costs nothing until its descriptor fires or a send on it leaves its state unknown.
    private func loop(_ body: Body, descriptors: DescriptorPoller) {
        var fds: [pollfd] = []
        let readyEvents = UnsafeMutablePointer<epoll_event>.allocate(capacity: receiveBatch)
        defer { readyEvents.deallocate() }
        var next = body.tick(now: .now)
        var trimmer = FreedMemoryTrimmer()
        while true {
            let sockets = body.sockets
            var inputWaiting = false
            fds.removeAll(keepingCapacity: true)
            for socket in sockets {
                if !socket.inputWaiting && socket.needsEventCheck { socket.inputWaiting = socket.hasInput }
                inputWaiting = inputWaiting || socket.inputWaiting
                fds.append(pollfd(fd: socket.signalFD, events: Int16(POLLIN), revents: 0))
                if socket.bigFrameBytesMoved > 0 {
                    trimmer.moved(socket.bigFrameBytesMoved)
                    socket.bigFrameBytesMoved = 0
                }
            }
            fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0))
            fds.append(pollfd(fd: descriptors.fd, events: Int16(POLLIN), revents: 0))

            let wakeAt = trimmer.trimIfQuiet(wakeAt: next)
            let timeout = inputWaiting ? 0 : Self.milliseconds(until: wakeAt)
            if poll(&fds, nfds_t(fds.count), timeout) < 0 && errno != EINTR { break }
            for (index, socket) in sockets.enumerated() where fds[index].revents != 0 {
                socket.inputWaiting = true
            }
            if fds[sockets.count].revents != 0 {
                var counter: UInt64 = 0
                _ = read(wakeFD, &counter, 8)
            }
            let readyCount = fds[sockets.count + 1].revents != 0 ? descriptors.ready(into: readyEvents, capacity: Int32(receiveBatch)) : 0

            let (work, stopRequested) = pending.withLock { pending in
                let work = pending.work
                pending.work.removeAll(keepingCapacity: true)
                return (work, pending.stopRequested)
            }
            for item in work { item(body) }
            if stopRequested {
                body.stopping()
                return
            }
            for index in 0..<readyCount {
                let event = readyEvents[index]
                body.descriptorReady(token: Int(Int64(bitPattern: event.data.u64)), events: Int16(truncatingIfNeeded: event.events))
            }

            for (index, socket) in sockets.enumerated() where socket.inputWaiting {
                // Up to a batch from one socket before the others get their turn; what is left keeps it waiting.
                for _ in 0..<receiveBatch {
                    do {
                        guard let frames = try socket.receive() else {
                            socket.inputWaiting = false
                            break
                        }
                        body.received(frames, on: index)
                    } catch {
                        body.receiveFailed(error, on: index)
                        // An oversized message was drained and the next may be fine; any other failure is the
                        // socket's, and trying again at once would only spin.
                        if error.code != .tooManyFrames {
                            socket.inputWaiting = false
                            break
                        }
                    }
                }
            }
            next = body.tick(now: .now)
        }
    }

    private static func milliseconds(until deadline: ContinuousClock.Instant?) -> Int32 {
        guard let deadline else { return -1 }
        let left = ContinuousClock.now.duration(to: deadline)
        guard left > .zero else { return 0 }
        let (seconds, attoseconds) = left.components
        return Int32(clamping: seconds * 1_000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }
}
