import CZeroMQ

import Glibc

/// The plain descriptors a `BusLoop` body drives itself (non-blocking TCP connections, a listening socket), kept in
/// an epoll set that the loop polls as one descriptor beside its ZeroMQ sockets: a wake-up costs the same with ten
/// thousand idle client connections as with ten, and a connection costs a system call only when its interest
/// changes. Ready descriptors reach the body through `BusLoopBody.descriptorReady(token:events:)`.
///
/// Events are poll(2)'s bits (POLLIN, POLLOUT, POLLRDHUP…), which epoll shares. A token names a descriptor to
/// its body, since a descriptor number may be closed and reused before its readiness is delivered.
public final class DescriptorPoller: Sendable {
    let fd: Int32

    init() throws(BusError) {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw BusError(code: .system(errno), operation: "epoll_create1", message: String(cString: strerror(errno))) }
    }

    deinit {
        close(fd)
    }

    /// Starts watching `descriptor` for `events`.
    public func watch(_ descriptor: Int32, events: Int16, token: Int) {
        control(EPOLL_CTL_ADD, descriptor, events: events, token: token)
    }

    /// Watches `descriptor` for other `events` from now on.
    public func change(_ descriptor: Int32, events: Int16, token: Int) {
        control(EPOLL_CTL_MOD, descriptor, events: events, token: token)
    }

    /// Stops watching `descriptor`; call it before closing the descriptor.
    public func unwatch(_ descriptor: Int32) {
        _ = epoll_ctl(fd, EPOLL_CTL_DEL, descriptor, nil)
    }

    private func control(_ operation: Int32, _ descriptor: Int32, events: Int16, token: Int) {
        var event = epoll_event()
        event.events = UInt32(UInt16(bitPattern: events))
        event.data.u64 = UInt64(bitPattern: Int64(token))
        _ = epoll_ctl(fd, operation, descriptor, &event)
    }

    /// Takes up to `capacity` ready descriptors without waiting, into `events`; returns how many.
    func ready(into events: UnsafeMutablePointer<epoll_event>, capacity: Int32) -> Int {
        max(0, Int(epoll_wait(fd, events, capacity, 0)))
    }
}
