import BerthBus
import BerthHTTP
import BerthWire
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
    /// Body bytes of an answer that streams the client may send before `grant`; 0: the answer comes whole.
    var streamWindow = 0
    /// An answer streams when its length is over this, or its length is unknown and it is not whole once the app
    /// paused (chunked, server-sent events, close-delimited).
    var streamAbove = Streaming.threshold
    /// The body streams in after the head (`append`), as the app's connection takes it; chunked when `chunked`.
    var bodyStreams = false
    var chunked = false
    /// An Upgrade (WebSocket): a 101 answer streams the new protocol's bytes, and the end of the request's body is the
    /// client closing its side, passed on as the end of ours (shutdown).
    var upgrade = false
}

/// A piece of an answer that streams.
enum AppBodyPiece {
    case data([Frame])
    /// The body is whole.
    case end
    /// The body was cut short: the app broke the connection, or sent what is not HTTP.
    case failed(AppClientError)
    /// The app's connection took request body bytes: its sender may send this many more (a streamed request).
    case requestCredit(Int)
}

/// An exchange the caller may grant credit to or cancel.
struct AppExchangeHandle {
    fileprivate let exchange: Exchange
}

/// The app's answer: its head and its body in frames ready for the bus.
struct AppAnswer: Sendable {
    var head: HTTPResponseHead
    var body: [Frame]
    /// The body streams: `body` is empty, and it comes in `AppRequest.pieces`.
    var streams = false
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
    /// The edge gave the exchange up: its client went away.
    case cancelled
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
    /// The most request body of one exchange held at once, arrived and not yet taken by the app.
    static let uploadWindow = Streaming.window
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

    /// Sends `request` and calls `completion` exactly once, on the bus thread: maybe before this returns. An answer
    /// that streams calls `completion` with its head, then `request.pieces` until it ends.
    @discardableResult
    func execute(
        _ request: AppRequest, pieces: ((AppBodyPiece) -> Void)? = nil, completion: @escaping (Result<AppAnswer, AppClientError>) -> Void
    ) -> AppExchangeHandle {
        let exchange = Exchange(request, pieces: pieces, completion: completion)
        guard !shutDown else {
            exchange.finish(.failure(.shutDown))
            return AppExchangeHandle(exchange: exchange)
        }
        noteDeadline(request.deadline)
        start(exchange)
        return AppExchangeHandle(exchange: exchange)
    }

    /// The receiver of a streaming answer grants `bytes` more: reading the app's connection goes on.
    func grant(_ handle: AppExchangeHandle, bytes: UInt64) {
        let exchange = handle.exchange
        exchange.sender.granted(bytes)
        guard let connection = exchange.connection, connection.exchange === exchange, connection.readPaused else { return }
        connection.readPaused = false
        updateEvents(connection)
        readMore(connection)
    }

    /// A piece of a request body that streams; `final`: the body is whole. False: the sender broke the credit rules.
    func append(_ handle: AppExchangeHandle, body: [Frame], final: Bool) -> Bool {
        let exchange = handle.exchange
        guard exchange.request.bodyStreams, !exchange.uploadDone, let connection = exchange.connection, connection.exchange === exchange else {
            return true
        }
        do {
            try exchange.upload.receive(body.byteCount)
        } catch {
            close(connection, failing: .invalidAnswer("the edge sent more request body than it was granted"), mayRetry: false)
            return false
        }
        let count = body.byteCount
        if exchange.request.chunked && count > 0 { connection.writer.append(Frame(String(count, radix: 16) + "\r\n")) }
        connection.writer.append(contentsOf: body)
        if exchange.request.chunked && count > 0 { connection.writer.append(Frame("\r\n")) }
        if final {
            exchange.uploadDone = true
            if exchange.request.chunked { connection.writer.append(Frame("0\r\n\r\n")) }
            connection.shutdownAfterWrite = exchange.request.upgrade
            // The answer's deadline counts from the end of the body.
            exchange.extendDeadline(by: exchange.timeout)
            noteDeadline(exchange.request.deadline)
        }
        writeMore(connection)
        if final && connection.shutdownAfterWrite && connection.writer.isEmpty { Glibc.shutdown(connection.fd, Int32(SHUT_WR)) }
        return true
    }

    /// The exchange is not wanted any more (its client went away): its connection closes, so that the app sees it
    /// go, and it ends as failed with `.cancelled`.
    func cancel(_ handle: AppExchangeHandle) {
        let exchange = handle.exchange
        if let connection = exchange.connection, connection.exchange === exchange {
            close(connection, failing: .cancelled, mayRetry: false)
        } else {
            for pool in pools.values { pool.waiting.removeAll { $0 === exchange } }
            exchange.finish(.failure(.cancelled))
        }
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
            guard events & ~Int16(POLLOUT) != 0, connection.phase == .busy else { return }
            if connection.readPaused {
                // Not reading (no credit), yet the connection broke: the stream ends as failed.
                if events & Int16(POLLERR | POLLHUP) != 0 { close(connection, failing: .closedEarly, mayRetry: false) }
                return
            }
            readMore(connection)
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
                // A streaming answer, or a request body still streaming in, has no deadline: credit paces it, and
                // its client may end it.
                guard let exchange = connection.exchange, !exchange.streaming, !exchange.request.bodyStreams || exchange.uploadDone else { continue }
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
        exchange.connection = connection
        connection.readPaused = false
        connection.reader = HTTPResponseReader(
            requestWasHead: exchange.request.isHead, maxBodyBytes: exchange.request.maxResponseBytes,
            streamAbove: exchange.request.streamWindow > 0 ? exchange.request.streamAbove : nil, upgrade: exchange.request.upgrade
        )
        connection.writer.append(Frame(exchange.request.head))
        connection.writer.append(contentsOf: exchange.request.body)
        connection.outputBroken = false
        writeMore(connection)
        // A body that streams in is asked for now that a connection takes it: the app never refuses what it was sent.
        if exchange.request.bodyStreams, !exchange.uploadDone, connection.exchange === exchange, let first = exchange.upload.grant() {
            exchange.event(.requestCredit(first))
        }
    }

    /// Writes what it can of the request: the head and the body frames, in one sendmsg when the socket takes them.
    private func writeMore(_ connection: AppConnection) {
        guard !connection.writer.isEmpty, let exchange = connection.exchange else { return }
        switch connection.writer.write(to: connection.fd) {
        case .done:
            exchange.bodyWritten()
            setWantsWrite(connection, false)
            grantUpload(exchange, pending: 0)
            // The client closed its side of an upgraded connection: so does this one, once all it sent is written.
            if connection.shutdownAfterWrite { Glibc.shutdown(connection.fd, Int32(SHUT_WR)) }
        case .blocked:
            setWantsWrite(connection, true)
            grantUpload(exchange, pending: connection.writer.pendingBytes)
        case .failed:
            // The app stopped reading: an answer it already sent may still be there to read.
            connection.writer = FrameWriter()
            connection.outputBroken = true
            setWantsWrite(connection, false)
            readMore(connection)
        }
    }

    /// After a write of a request body that streams in: the credit its sender gets for what the app took.
    private func grantUpload(_ exchange: Exchange, pending: Int) {
        guard exchange.request.bodyStreams, !exchange.uploadDone else { return }
        let unwritten = min(exchange.upload.held, pending)
        if let more = exchange.upload.consume(exchange.upload.held - unwritten) { exchange.event(.requestCredit(more)) }
    }

    private func setWantsWrite(_ connection: AppConnection, _ wants: Bool) {
        connection.wantsWrite = wants
        updateEvents(connection)
    }

    /// Polls for what the connection waits for: input unless a stream has no credit left, output while it writes.
    private func updateEvents(_ connection: AppConnection) {
        let events = (connection.readPaused ? 0 : Int16(POLLIN)) | (connection.wantsWrite ? Int16(POLLOUT) : 0)
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
        case .paused:
            connection.readPaused = true
            updateEvents(connection)
        case .complete: answered(connection)
        case .failed(let error, let mayRetry): close(connection, failing: error, mayRetry: mayRetry)
        }
    }

    private enum ReadOutcome {
        case waiting
        /// A streaming answer used all its credit: the connection is not read until more is granted.
        case paused
        case complete
        case failed(AppClientError, mayRetry: Bool)
    }

    /// Reads until the answer is complete or the socket has nothing more: straight into the body's frame when its
    /// length is known, otherwise through the shared buffer.
    private func read(_ connection: AppConnection, into reader: inout HTTPResponseReader) -> ReadOutcome {
        guard let exchange = connection.exchange else { return .waiting }
        while true {
            let count: Int
            var full = false
            // A streaming answer reads no more than its credit: body bytes are never more than the bytes read.
            if exchange.streaming && exchange.sender.isBlocked { return .paused }
            let limit = exchange.streaming ? min(scratch.count, exchange.sender.available) : scratch.count
            if let room = reader.directBodyRoom() {
                count = Glibc.read(connection.fd, room.baseAddress, room.count)
                if count > 0 { reader.filledDirectly(count) }
            } else {
                count = Glibc.read(connection.fd, scratch.baseAddress, limit)
                full = count == limit
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
                let complete = reader.endOfInput()
                if exchange.streaming { passOn(reader: &reader, exchange) }
                return complete ? .complete : .failed(.closedEarly, mayRetry: !reader.hasStarted && !exchange.streaming)
            }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    streamIfUnfinished(&reader, exchange)
                    return .waiting
                }
                return .failed(.closedEarly, mayRetry: !reader.hasStarted && !exchange.streaming)
            }
            if !exchange.streaming && exchange.request.streamWindow > 0, reader.head != nil,
               reader.bodyStreamsFromStart || (reader.directBodyRoom() == nil && reader.bodyBytesHeld > exchange.request.streamAbove) {
                beginStream(&reader, exchange)
            }
            if exchange.streaming { passOn(reader: &reader, exchange) }
            if reader.isComplete { return .complete }
            // A read that did not fill its buffer took all there was: poll before reading again.
            if !full {
                streamIfUnfinished(&reader, exchange)
                acknowledgeNow(connection)
                return .waiting
            }
        }
    }

    /// The app paused with its answer's head sent and a body of unknown length unfinished (server-sent events, a
    /// chunked answer written as it is made): the answer streams from now, so what it wrote reaches the client now.
    private func streamIfUnfinished(_ reader: inout HTTPResponseReader, _ exchange: Exchange) {
        guard !exchange.streaming, exchange.request.streamWindow > 0, reader.head != nil, !reader.isComplete,
              reader.directBodyRoom() == nil else { return }
        beginStream(&reader, exchange)
        passOn(reader: &reader, exchange)
    }

    /// The answer streams: its head goes to the caller now, with no body; the body follows in pieces.
    private func beginStream(_ reader: inout HTTPResponseReader, _ exchange: Exchange) {
        guard let head = reader.head else { return }
        exchange.streaming = true
        exchange.sender = CreditSender(initial: exchange.request.streamWindow)
        exchange.finish(.success(AppAnswer(head: head, body: [], streams: true)))
    }

    /// Hands what arrived of a streaming answer's body to the caller, counted against its credit.
    private func passOn(reader: inout HTTPResponseReader, _ exchange: Exchange) {
        let frames = reader.takeAvailableBody()
        guard !frames.isEmpty else { return }
        exchange.sender.sent(frames.byteCount)
        exchange.piece(.data(frames))
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
        // So does one whose body still streams in.
        let bodyWhole = !exchange.request.bodyStreams || exchange.uploadDone
        let keepAlive = head.keepAlive && connection.writer.isEmpty && !connection.outputBroken && bodyWhole
        let answer = AppAnswer(head: head, body: exchange.streaming ? [] : reader.takeBody())
        connection.exchange = nil
        exchange.connection = nil
        connection.reader = nil
        connection.writer = FrameWriter()
        if keepAlive {
            release(connection)
        } else {
            close(connection, failing: nil, mayRetry: false)
        }
        if exchange.streaming {
            exchange.piece(.end)
        } else {
            exchange.finish(.success(answer))
        }
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
        if let exchange = connection.exchange, exchange.streaming {
            connection.exchange = nil
            exchange.connection = nil
            if let failure { exchange.piece(.failed(failure)) }
        } else if let exchange = connection.exchange, !exchange.isFinished {
            connection.exchange = nil
            exchange.connection = nil
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
    /// The answer's body streams: its head went to `completion`, its pieces go to `request.pieces`.
    var streaming = false
    /// What the receiver of a streaming answer still lets it send.
    var sender = CreditSender(initial: 0)
    /// The connection that carries it, once it has one.
    weak var connection: AppConnection?
    /// A request body that streams in: what its sender was granted, and whether it is whole.
    var upload = CreditReceiver(window: AppClient.uploadWindow, initialGrant: 0)
    var uploadDone = false
    /// The exchange's time to answer, counted again from the end of a body that streams in.
    let timeout: Duration
    /// The stream ended (or the caller gave it up): no more pieces.
    private var ended = false

    /// For an answer that streams: its body's pieces after the head, and how it ends.
    private var pieces: ((AppBodyPiece) -> Void)?

    init(_ request: AppRequest, pieces: ((AppBodyPiece) -> Void)?, completion: @escaping (Result<AppAnswer, AppClientError>) -> Void) {
        self.request = request
        timeout = ContinuousClock.now.duration(to: request.deadline)
        self.pieces = pieces
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

    func extendDeadline(by duration: Duration) {
        request.deadline = .now + duration
    }

    /// Credit for a request body that streams in: said while the exchange lasts.
    func event(_ piece: AppBodyPiece) {
        guard !ended, let pieces else { return }
        pieces(piece)
    }

    /// A piece of a streaming answer; after `.end` or `.failed`, nothing more.
    func piece(_ piece: AppBodyPiece) {
        guard streaming, !ended, let pieces else { return }
        switch piece {
        case .data, .requestCredit: break
        case .end, .failed:
            ended = true
            self.pieces = nil
        }
        pieces(piece)
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
    var wantsWrite = true
    /// A streaming answer has no credit left: its input is not polled.
    var readPaused = false
    /// Shut the output down once the writer is empty (an upgraded connection whose client closed its side).
    var shutdownAfterWrite = false
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
