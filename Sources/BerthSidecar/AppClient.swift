import BerthBus
import BerthHTTP
import DequeModule

import Glibc

/// One HTTP/1.1 exchange with the app, as the sidecar asks for it.
struct AppRequest: Sendable {
    var port: Int
    /// The request line and headers, ready for the wire.
    var head: [UInt8]
    /// A HEAD request: its answer has no body whatever its headers say.
    var isHead: Bool
    /// The body as the bus delivered it: written to the connection from the frames themselves, never copied.
    var body: [Frame]
    var deadline: ContinuousClock.Instant
    var maxResponseBytes: Int
    /// Sent again on a fresh connection when a reused one turns out closed before any answer came: safe only for
    /// idempotent methods.
    var mayRetry: Bool
}

/// The app's answer: its head and its body in frames ready for the bus.
struct AppAnswer: Sendable {
    var head: HTTPResponseHead
    var body: [Frame]
}

/// Why the app gave no answer.
enum AppClientError: Error, Sendable, Equatable {
    /// Nothing accepts connections on the port.
    case refused
    case connectTimeout
    case connectFailed(String)
    /// The app closed the connection before its answer was complete.
    case closedEarly
    case deadlineExceeded
    case tooLarge(limit: Int)
    /// The answer is not HTTP/1.1 as RFC 9112 frames it.
    case invalidAnswer(String)
    case shutDown
}

/// A keep-alive HTTP/1.1 client for the app, driven by the sidecar's bus thread.
///
/// Its connections are non-blocking sockets that the bus loop polls beside its ZeroMQ sockets, so a request goes
/// from the router's message to the app and its answer back to the router without leaving that thread: no event
/// loop, no task, no lock. At most `maxConnectionsPerPort` connections per port; the requests beyond wait in order.
/// Request bodies are written from the bus frames with `sendmsg`, and a body of known length is read straight into
/// the frame that goes back on the bus.
final class AppClient {
    private let address: AppAddress?
    private let host: String
    /// Where connections to the app are made: the app may live in a network namespace of its own.
    private let network: AppNetwork
    private let connectTimeout: Duration
    private let maxConnectionsPerPort: Int
    private var pools: [Int: Pool] = [:]
    private var connections: [Int: AppConnection] = [:]
    private var nextToken = 0
    private let descriptors: DescriptorPoller
    /// The earliest deadline of any exchange or connection attempt: `expire` looks no closer before it.
    private var nextDeadline: ContinuousClock.Instant?
    private var shutDown = false
    /// One read buffer for every connection: only the bus thread reads.
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)

    init(host: String, network: AppNetwork = .host, connectTimeout: Duration, maxConnectionsPerPort: Int, descriptors: DescriptorPoller) {
        self.descriptors = descriptors
        self.host = host
        self.network = network
        address = AppAddress(host)
        self.connectTimeout = connectTimeout
        self.maxConnectionsPerPort = max(1, maxConnectionsPerPort)
    }

    deinit {
        for connection in connections.values { Glibc.close(connection.fd) }
        scratch.deallocate()
    }

    /// Sends `request` and calls `completion` exactly once, on the bus thread: maybe before this returns.
    func execute(_ request: AppRequest, completion: @escaping (Result<AppAnswer, AppClientError>) -> Void) {
        let exchange = Exchange(request, completion: completion)
        guard !shutDown else { return exchange.finish(.failure(.shutDown)) }
        noteDeadline(request.deadline)
        start(exchange)
    }

    /// Calls `completion` with whether something accepts TCP connections on `port`.
    func accepts(port: Int, completion: @escaping (Bool) -> Void) {
        guard !shutDown else { return completion(false) }
        connect(pool(for: port), then: .probe(completion))
    }

    /// Fails what waits and closes every connection: requests still on one fail with `.closedEarly`, later ones
    /// with `.shutDown`.
    func shutdown() {
        shutDown = true
        for pool in pools.values {
            while let exchange = pool.waiting.popFirst() { exchange.finish(.failure(.shutDown)) }
        }
        for connection in Array(connections.values) { self.close(connection, failing: .closedEarly, mayRetry: false) }
    }

    // MARK: Readiness

    func ready(token: Int, events: Int16) {
        guard let connection = connections[token] else { return }
        switch connection.phase {
        case .connecting:
            connected(connection)
        case .idle:
            // An idle connection that turns readable was closed by the app, or sent what nobody asked for.
            close(connection, failing: .closedEarly, mayRetry: false)
        case .busy:
            if events & Int16(POLLOUT) != 0 { writeMore(connection) }
            if events & ~Int16(POLLOUT) != 0, connection.phase == .busy { readMore(connection) }
        case .closed:
            return
        }
    }

    /// Fails what is overdue. Returns when it next has to be called.
    func expire(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        guard let due = nextDeadline, due <= now else { return nextDeadline }
        nextDeadline = nil
        for connection in Array(connections.values) {
            switch connection.phase {
            case .connecting:
                if connection.connectDeadline <= now {
                    close(connection, failing: .connectTimeout, mayRetry: false)
                    continue
                }
                noteDeadline(connection.connectDeadline)
                if case .exchange(let exchange) = connection.afterConnect, !exchange.isFinished {
                    // It gives up; the connection goes on opening and joins the pool.
                    if exchange.request.deadline <= now { exchange.finish(.failure(.deadlineExceeded)) } else { noteDeadline(exchange.request.deadline) }
                }
            case .busy:
                guard let exchange = connection.exchange else { continue }
                if exchange.request.deadline <= now {
                    // The connection's state is unknown once its exchange gives up: closed, not reused.
                    close(connection, failing: .deadlineExceeded, mayRetry: false)
                } else {
                    noteDeadline(exchange.request.deadline)
                }
            case .idle, .closed:
                continue
            }
        }
        for pool in pools.values where !pool.waiting.isEmpty {
            pool.waiting.removeAll { exchange in
                guard exchange.request.deadline > now else {
                    exchange.finish(.failure(.deadlineExceeded))
                    return true
                }
                noteDeadline(exchange.request.deadline)
                return false
            }
        }
        return nextDeadline
    }

    private func noteDeadline(_ deadline: ContinuousClock.Instant) {
        if nextDeadline.map({ deadline < $0 }) ?? true { nextDeadline = deadline }
    }

    // MARK: Connections

    private func pool(for port: Int) -> Pool {
        if let pool = pools[port] { return pool }
        let pool = Pool(port: port)
        pools[port] = pool
        return pool
    }

    /// Sends `exchange` on an idle connection, a new one, or when one is free; `fresh` skips the idle ones.
    private func start(_ exchange: Exchange, fresh: Bool = false) {
        let pool = pool(for: exchange.request.port)
        while !fresh, let connection = pool.idle.popLast() {
            // A request that must not be sent twice first makes sure the app has not closed the connection while it
            // sat idle (its FIN may not have been read yet): one MSG_PEEK, where a retry is not allowed.
            guard exchange.request.mayRetry || Self.isOpen(connection.fd) else {
                close(connection, failing: nil, mayRetry: false)
                continue
            }
            return begin(exchange, on: connection)
        }
        if pool.open < maxConnectionsPerPort {
            connect(pool, then: .exchange(exchange))
        } else {
            pool.waiting.append(exchange)
        }
    }

    /// Whether an idle connection is still open and quiet: no end of input, no error, nothing unasked for.
    private static func isOpen(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let result = recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        return result < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
    }

    private func connect(_ pool: Pool, then next: AppConnection.AfterConnect) {
        guard let address else {
            return next.failed(.connectFailed("\(host) is not an IP address"))
        }
        let fd: Int32
        do {
            fd = try network.socket(family: address.family, type: Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        } catch {
            return next.failed(.connectFailed(error.description))
        }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let result = address.connect(fd, port: pool.port)
        let error = errno
        if result != 0 && error != EINPROGRESS {
            Glibc.close(fd)
            return next.failed(error == ECONNREFUSED ? .refused : .connectFailed(Self.describe(errno: error)))
        }
        nextToken += 1
        let connection = AppConnection(token: nextToken, fd: fd, pool: pool, afterConnect: next, connectDeadline: .now + connectTimeout)
        pool.open += 1
        connections[connection.token] = connection
        descriptors.watch(fd, events: connection.events, token: connection.token)
        noteDeadline(connection.connectDeadline)
        if result == 0 { connected(connection) }
    }

    private func connected(_ connection: AppConnection) {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(connection.fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { error = errno }
        guard error == 0 else {
            let failure: AppClientError = error == ECONNREFUSED ? .refused : .connectFailed(Self.describe(errno: error))
            return close(connection, failing: failure, mayRetry: false)
        }
        let next = connection.afterConnect
        connection.afterConnect = nil
        connection.phase = .idle
        setWantsWrite(connection, false)
        switch next {
        case .exchange(let exchange) where !exchange.isFinished:
            begin(exchange, on: connection)
        case .probe(let completion):
            // Closed, not pooled: a probe every readiness interval would otherwise leave a connection each time.
            close(connection, failing: nil, mayRetry: false)
            completion(true)
        case .exchange, nil:
            release(connection)
        }
    }

    /// A connection free for the next exchange: the first that waits, or the idle list.
    private func release(_ connection: AppConnection) {
        let pool = connection.pool
        while let next = pool.waiting.popFirst() {
            if !next.isFinished { return begin(next, on: connection) }
        }
        connection.phase = .idle
        pool.idle.append(connection)
    }

    private func begin(_ exchange: Exchange, on connection: AppConnection) {
        exchange.attempts += 1
        connection.exchanges += 1
        connection.phase = .busy
        connection.exchange = exchange
        connection.reader = HTTPResponseReader(requestWasHead: exchange.request.isHead, maxBodyBytes: exchange.request.maxResponseBytes)
        connection.writer.append(Frame(exchange.request.head))
        connection.writer.append(contentsOf: exchange.request.body)
        connection.outputBroken = false
        writeMore(connection)
    }

    /// Writes what it can of the request: the head and the body frames, in one sendmsg when the socket takes them.
    private func writeMore(_ connection: AppConnection) {
        guard !connection.writer.isEmpty, let exchange = connection.exchange else { return }
        switch connection.writer.write(to: connection.fd) {
        case .done:
            exchange.bodyWritten()
            setWantsWrite(connection, false)
        case .blocked:
            setWantsWrite(connection, true)
        case .failed:
            // The app stopped reading: an answer it already sent may still be there to read.
            connection.writer = FrameWriter()
            connection.outputBroken = true
            setWantsWrite(connection, false)
            readMore(connection)
        }
    }

    private func setWantsWrite(_ connection: AppConnection, _ wants: Bool) {
        let events = wants ? Int16(POLLIN | POLLOUT) : Int16(POLLIN)
        if connection.events != events {
            connection.events = events
            descriptors.change(connection.fd, events: events, token: connection.token)
        }
    }

    /// Reads what has arrived of the answer.
    private func readMore(_ connection: AppConnection) {
        guard connection.phase == .busy, var reader = connection.reader else { return }
        // Worked on as the only copy, so that its buffers grow in place, and put back before anything else.
        connection.reader = nil
        let outcome = read(connection, into: &reader)
        connection.reader = reader
        switch outcome {
        case .waiting: return
        case .complete: answered(connection)
        case .failed(let error, let mayRetry): close(connection, failing: error, mayRetry: mayRetry)
        }
    }

    private enum ReadOutcome {
        case waiting
        case complete
        case failed(AppClientError, mayRetry: Bool)
    }

    /// Reads until the answer is complete or the socket has nothing more: straight into the body's frame when its
    /// length is known, otherwise through the shared buffer.
    private func read(_ connection: AppConnection, into reader: inout HTTPResponseReader) -> ReadOutcome {
        while true {
            let count: Int
            var full = false
            if let room = reader.directBodyRoom() {
                count = Glibc.read(connection.fd, room.baseAddress, room.count)
                if count > 0 { reader.filledDirectly(count) }
            } else {
                count = Glibc.read(connection.fd, scratch.baseAddress, scratch.count)
                full = count == scratch.count
                if count > 0 {
                    do {
                        let taken = try reader.consume(UnsafeRawBufferPointer(rebasing: scratch[..<count]))
                        // Bytes after the answer were never asked for: the connection is not reused.
                        if taken < count { connection.outputBroken = true }
                    } catch {
                        return .failed(error.tooLarge ? .tooLarge(limit: reader.maxBodyBytes) : .invalidAnswer(error.description), mayRetry: false)
                    }
                }
            }
            if count == 0 {
                connection.outputBroken = true
                return reader.endOfInput() ? .complete : .failed(.closedEarly, mayRetry: !reader.hasStarted)
            }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { return .waiting }
                return .failed(.closedEarly, mayRetry: !reader.hasStarted)
            }
            if reader.isComplete { return .complete }
            // A read that did not fill its buffer took all there was: poll before reading again.
            if !full {
                acknowledgeNow(connection)
                return .waiting
            }
        }
    }

    /// Sends the ACK for what was read now, not up to 40 ms later. An app that writes its answer in two pieces (a
    /// head, then a body: Python's http.server, many others) has Nagle's algorithm hold the second piece until the
    /// first is acknowledged, and on a kept-alive connection Linux delays that ACK, hoping to carry it on data we
    /// would send: we send nothing until the answer is whole. TCP_QUICKACK is not sticky; setting it sends the
    /// pending ACK at once, so it is set after every read that leaves an answer incomplete, and only then.
    private func acknowledgeNow(_ connection: AppConnection) {
        var one: Int32 = 1
        _ = setsockopt(connection.fd, Int32(IPPROTO_TCP), Int32(TCP_QUICKACK), &one, socklen_t(MemoryLayout<Int32>.size))
    }

    private func answered(_ connection: AppConnection) {
        guard let exchange = connection.exchange, var reader = connection.reader, let head = reader.head else { return }
        // An answer that came before the whole request went out (a 413, say) leaves the rest unsent: the
        // connection cannot carry another request.
        let keepAlive = head.keepAlive && connection.writer.isEmpty && !connection.outputBroken
        let answer = AppAnswer(head: head, body: reader.takeBody())
        connection.exchange = nil
        connection.reader = nil
        connection.writer = FrameWriter()
        if keepAlive {
            release(connection)
        } else {
            close(connection, failing: nil, mayRetry: false)
        }
        exchange.finish(.success(answer))
    }

    /// Closes `connection`; the exchange on it, if any, fails with `failure`, or is sent once more when
    /// `mayRetry` and it is a first attempt of an idempotent request on a reused connection.
    private func close(_ connection: AppConnection, failing failure: AppClientError?, mayRetry: Bool) {
        guard connections.removeValue(forKey: connection.token) != nil else { return }
        descriptors.unwatch(connection.fd)
        Glibc.close(connection.fd)
        let pool = connection.pool
        pool.open -= 1
        pool.idle.removeAll { $0 === connection }
        connection.phase = .closed
        if let next = connection.afterConnect {
            connection.afterConnect = nil
            next.failed(failure ?? .closedEarly)
        }
        // A connection still opening carries its exchange in `afterConnect`, above: this one had been sent.
        if let exchange = connection.exchange, !exchange.isFinished {
            connection.exchange = nil
            if mayRetry && connection.exchanges > 1 && exchange.request.mayRetry && exchange.attempts == 1 && !shutDown {
                // A kept-alive connection the app had already closed: nothing was answered, so ask again once, on a
                // new connection: the other idle ones may have been closed by the app just as this one was.
                start(exchange, fresh: true)
            } else {
                exchange.finish(.failure(failure ?? .closedEarly))
            }
        }
        if !shutDown { serveWaiting(pool) }
    }

    private func serveWaiting(_ pool: Pool) {
        while pool.open < maxConnectionsPerPort, let next = pool.waiting.popFirst() {
            if !next.isFinished { connect(pool, then: .exchange(next)) }
        }
    }

    private static func describe(errno code: Int32) -> String {
        String(cString: strerror(code))
    }
}

private final class Pool {
    let port: Int
    /// Connections open or being opened.
    var open = 0
    var idle: [AppConnection] = []
    var waiting: Deque<Exchange> = []

    init(port: Int) { self.port = port }
}

/// One request on its way: finished exactly once, by its answer, its deadline, or a failure.
private final class Exchange {
    private(set) var request: AppRequest
    private var completion: ((Result<AppAnswer, AppClientError>) -> Void)?
    var attempts = 0

    init(_ request: AppRequest, completion: @escaping (Result<AppAnswer, AppClientError>) -> Void) {
        self.request = request
        self.completion = completion
    }

    var isFinished: Bool { completion == nil }

    /// The body is on the connection: it is kept only while the request may be sent again.
    func bodyWritten() {
        if !request.mayRetry { request.body = [] }
    }

    func finish(_ result: Result<AppAnswer, AppClientError>) {
        guard let completion else { return }
        self.completion = nil
        completion(result)
    }
}

/// One TCP connection to the app, and the exchange it carries.
private final class AppConnection {
    enum Phase: Equatable {
        case connecting
        case idle
        case busy
        case closed
    }

    /// What a connection being opened is for.
    enum AfterConnect {
        case exchange(Exchange)
        case probe((Bool) -> Void)

        func failed(_ error: AppClientError) {
            switch self {
            case .exchange(let exchange): exchange.finish(.failure(error))
            case .probe(let completion): completion(false)
            }
        }
    }

    let token: Int
    let fd: Int32
    let pool: Pool
    var phase = Phase.connecting
    var events = Int16(POLLOUT)
    var afterConnect: AfterConnect?
    let connectDeadline: ContinuousClock.Instant
    /// Exchanges started on this connection so far.
    var exchanges = 0
    /// The exchange the connection carries once open.
    var exchange: Exchange?
    var reader: HTTPResponseReader?
    /// The request's bytes still to go: empty once all went out (or the app stopped taking them).
    var writer = FrameWriter()
    /// The connection carried something other than one request and its answer: never reused.
    var outputBroken = false

    init(token: Int, fd: Int32, pool: Pool, afterConnect: AfterConnect, connectDeadline: ContinuousClock.Instant) {
        self.token = token
        self.fd = fd
        self.pool = pool
        self.afterConnect = afterConnect
        self.connectDeadline = connectDeadline
    }
}

/// The app's IP address, IPv4 or IPv6.
private enum AppAddress {
    case v4(in_addr)
    case v6(in6_addr)

    init?(_ host: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            self = .v4(v4)
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    var family: Int32 {
        switch self {
        case .v4: AF_INET
        case .v6: AF_INET6
        }
    }

    func connect(_ fd: Int32, port: Int) -> Int32 {
        let networkPort = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        switch self {
        case .v4(let address):
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = networkPort
            socketAddress.sin_addr = address
            return Self.connect(fd, to: &socketAddress)
        case .v6(let address):
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = networkPort
            socketAddress.sin6_addr = address
            return Self.connect(fd, to: &socketAddress)
        }
    }

    private static func connect<SocketAddress>(_ fd: Int32, to address: inout SocketAddress) -> Int32 {
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<SocketAddress>.size)) }
        }
    }
}
