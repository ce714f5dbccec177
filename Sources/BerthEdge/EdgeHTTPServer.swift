import BerthBus
import BerthHTTP
import BerthWire
import Logging

import Glibc

/// The edge's HTTP/1.1 server, driven by the edge's bus thread.
///
/// Client connections are non-blocking sockets that the bus loop polls beside its ZeroMQ sockets, so a request on
/// a declarative route goes from the client's socket to the router and its answer back to the client on one thread:
/// no event loop, no task, no lock. A request body is read into the frame that goes on the bus, and an answer's
/// body is written to the client from the frames it came in. A `Worker` in code runs in a task per request.
///
/// Keep-alive and pipelining: a connection has one request open at a time, and reads the next only when the answer
/// to the last is written. A client that closes its side, or goes, while its request is open has its request
/// cancelled in the mesh, as nginx and Envoy take it.
final class EdgeHTTPServer {
    /// What every connection is served with.
    struct Serving: Sendable {
        let worker: any Worker
        /// Set when the worker decides without a task (declarative routes, a sidecar's egress listener).
        let routes: (any DirectWorker)?
        let maxBodyBytes: Int
        /// The limit of a request body that streams; nil: none.
        let maxStreamedBodyBytes: Int?
        /// Request bodies held at once, over all connections; a body that would pass it gets 503.
        let maxBufferedBytes: Int
        let idleTimeout: Duration
        /// A client's whole head must arrive within this, from the first byte (or the connection's start).
        let headerTimeout: Duration
        /// CONNECT is read and its tunnel handed to the Worker (`EdgeConfiguration.tunnels`).
        let tunnels: Bool
        let logger: Logger

        init(
            worker: any Worker, maxBodyBytes: Int, maxStreamedBodyBytes: Int? = nil, maxBufferedBytes: Int, idleTimeout: Duration,
            headerTimeout: Duration, tunnels: Bool = false, logger: Logger
        ) {
            self.worker = worker
            self.routes = worker as? any DirectWorker
            self.maxBodyBytes = maxBodyBytes
            self.maxStreamedBodyBytes = maxStreamedBodyBytes
            self.maxBufferedBytes = maxBufferedBytes
            self.idleTimeout = idleTimeout
            self.headerTimeout = headerTimeout
            self.tunnels = tunnels && worker.streamsBodies
            self.logger = logger
        }
    }

    /// Where a request of a connection is.
    enum Open {
        /// Sent into the mesh from this thread; `id` cancels it.
        case mesh(id: UInt64)
        /// A Worker's task has it.
        case worker(Task<Void, Never>)
    }

    private static let listenerToken = 0
    /// Bytes of pipelined requests held per connection while one is open; past it, only its end is watched for.
    private static let maxPendingBytes = 64 << 10
    private static let lingerTime: Duration = .seconds(2)
    // poll(2)'s POLLRDHUP (the peer shut its side), which Glibc's module does not export.
    static let pollReadHangUp = Int16(0x2000)

    private let serving: Serving
    private let env: Environment
    private let loop: BusLoop<EdgeBus>
    private var listener: ListeningSocket?
    /// What this server asks of the mesh: requests on routes to send, requests whose client went away. Its owner
    /// takes them after every call into the server (`takeMeshWork`); the server never calls into the bus.
    enum MeshWork {
        case send(Exchange, body: [Frame])
        case cancel(UInt64)
        /// The client's socket took some of a streamed answer: the sidecar may send `bytes` more.
        case credit(id: UInt64, bytes: Int)
        /// A piece of a request body that streams in.
        case piece(id: UInt64, body: [Frame], final: Bool)
    }

    private var meshWork: [MeshWork] = []
    private let ids: RequestIDs
    private let configuration: EdgeConfiguration
    private var connections: [Int: ClientConnection] = [:]
    private var nextToken = 1
    private let descriptors: DescriptorPoller
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
    private var lingering = 0
    private var accepting = Accepting.open
    private static let pauseWarningInterval: Duration = .seconds(60)
    /// When a pause in accepting was last logged as a warning, and how many pauses came since.
    private var pauseWarned: ContinuousClock.Instant?
    private var pausesUnsaid = 0
    /// When accepting pauses, so that the bus keeps the descriptors it needs.
    private let connectionLimit: ConnectionLimit
    /// Request bodies held now, over all connections (`Serving.maxBufferedBytes`).
    private var bodyMemory: BodyMemory
    private var drained: (() -> Void)?
    private var nextIdleSweep: ContinuousClock.Instant = .now
    /// Worker's answers that stream, by connection.
    private var workerStreams: [Int: WorkerStream] = [:]

    /// Whether the listener is watched, and if not, what brings it back.
    enum Accepting: Equatable {
        case open
        /// Connections reached `connectionLimit.pauseAt`: back when enough of them are gone.
        case pausedAtLimit
        /// accept(2) itself failed for want of descriptors or memory: back at the instant.
        case pausedAfterError(until: ContinuousClock.Instant)
    }

    init(
        serving: Serving, listener: ListeningSocket, env: Environment, loop: BusLoop<EdgeBus>, descriptors: DescriptorPoller,
        ids: RequestIDs, configuration: EdgeConfiguration
    ) {
        self.serving = serving
        self.ids = ids
        self.configuration = configuration
        self.listener = listener
        self.env = env
        self.loop = loop
        self.descriptors = descriptors
        connectionLimit = .current()
        bodyMemory = BodyMemory(limit: serving.maxBufferedBytes)
        descriptors.watch(listener.fd, events: Int16(POLLIN), token: Self.listenerToken)
    }

    deinit {
        scratch.deallocate()
        if let listener { Glibc.close(listener.fd) }
        for connection in connections.values { Glibc.close(connection.fd) }
    }

    func ready(token: Int, events: Int16) {
        if token == Self.listenerToken { return accept() }
        guard let connection = connections[token] else { return }
        if events & Int16(POLLOUT) != 0 { flush(connection) }
        guard connections[token] != nil else { return }
        if events & (Int16(POLLIN) | Self.pollReadHangUp | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
            readable(connection, hungUp: events & (Self.pollReadHangUp | Int16(POLLHUP) | Int16(POLLERR)) != 0)
        }
    }

    /// When `tick` wants to be called next.
    func tick(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        var next: ContinuousClock.Instant?
        if case .pausedAfterError(let until) = accepting {
            if until <= now { resumeAccepting() } else { next = until }
        }
        if lingering > 0 {
            for connection in connections.values {
                guard let until = connection.lingerUntil else { continue }
                if until <= now { close(connection) } else { next = min(next ?? until, until) }
            }
        }
        if now >= nextIdleSweep {
            closeIdle(now: now)
            closeSlowHeads(now: now)
            nextIdleSweep = now + min(serving.idleTimeout / 4, serving.headerTimeout / 4, .seconds(1))
        }
        return min(next ?? nextIdleSweep, nextIdleSweep)
    }

    /// Connections without a request in the mesh that made no progress for the idle timeout: kept-alive ones nobody
    /// uses, and clients that send a request (or read an answer) too slowly to ever finish.
    private func closeIdle(now: ContinuousClock.Instant) {
        let limit = now - serving.idleTimeout
        for connection in Array(connections.values) where connection.open == nil && connection.lingerUntil == nil && connection.lastActive < limit {
            if connection.reader.hasStarted || !connection.writer.isEmpty {
                serving.logger.debug("closing a client connection that made no progress", metadata: [
                    "berth.connection": "\(connection.token)", "berth.idle": "\(serving.idleTimeout)",
                ])
            }
            close(connection)
        }
    }

    /// Connections whose head has not arrived within the header timeout, however slowly its bytes still trickle in
    /// (slowloris): answered 408 and closed.
    private func closeSlowHeads(now: ContinuousClock.Instant) {
        for connection in Array(connections.values) where connection.headDeadline.map({ $0 <= now }) ?? false {
            connection.headDeadline = nil
            guard connection.takesRequests else { continue }
            serving.logger.debug("closing a client connection whose request head did not arrive in time", metadata: [
                "berth.connection": "\(connection.token)", "berth.header_timeout": "\(serving.headerTimeout)",
            ])
            let error = MeshError(code: .deadlineExceeded, message: "the request's head did not arrive within \(serving.headerTimeout)", component: "edge")
            respond(connection, with: .failure(error, status: 408), closing: true)
        }
    }

    // MARK: Connections

    private func accept() {
        guard let listener else { return }
        for _ in 0..<64 {
            let fd = Glibc.accept(listener.fd, nil, nil)
            if fd < 0 {
                switch errno {
                case EINTR, ECONNABORTED: continue
                case EAGAIN: return
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    pauseAccepting(.pausedAfterError(until: .now + .milliseconds(100)), why: String(cString: strerror(errno)))
                    return
                default:
                    serving.logger.warning("accepting a client connection failed", metadata: ["berth.error": "\(String(cString: strerror(errno)))"])
                    return
                }
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let token = nextToken
            nextToken += 1
            let connection = ClientConnection(token: token, fd: fd, reader: newReader())
            connection.headDeadline = .now + serving.headerTimeout
            connections[token] = connection
            descriptors.watch(fd, events: connection.events, token: token)
            if connections.count >= connectionLimit.pauseAt {
                return pauseAccepting(.pausedAtLimit, why: "\(connections.count) client connections, near the descriptor limit")
            }
        }
    }

    /// Stops watching the listener: connections that come wait in its backlog. A full backlog pauses the edge again
    /// each time it drains a little, so the warning is said once a minute at most, with the pauses since.
    private func pauseAccepting(_ pause: Accepting, why: String) {
        guard let listener else { return }
        if accepting == .open {
            descriptors.unwatch(listener.fd)
            pausesUnsaid += 1
            let now = ContinuousClock.now
            let metadata: Logger.Metadata = [
                "berth.reason": "\(why)", "berth.connections": "\(connections.count)", "berth.max_connections": "\(connectionLimit.pauseAt)",
                "berth.pauses": "\(pausesUnsaid)",
            ]
            if pauseWarned.map({ $0.duration(to: now) >= Self.pauseWarningInterval }) ?? true {
                serving.logger.warning("not accepting client connections for now; serving those open", metadata: metadata)
                pauseWarned = now
                pausesUnsaid = 0
            } else {
                serving.logger.debug("accepting paused again", metadata: metadata)
            }
        }
        accepting = pause
    }

    private func resumeAccepting() {
        guard accepting != .open else { return }
        accepting = .open
        guard let listener else { return }
        descriptors.watch(listener.fd, events: Int16(POLLIN), token: Self.listenerToken)
        serving.logger.debug("accepting client connections again", metadata: ["berth.connections": "\(connections.count)"])
    }

    private func close(_ connection: ClientConnection) {
        guard connections.removeValue(forKey: connection.token) != nil else { return }
        connection.isClosed = true
        descriptors.unwatch(connection.fd)
        Glibc.close(connection.fd)
        _ = bodyMemory.recount(from: connection.countedBodyBytes, to: 0)
        connection.countedBodyBytes = 0
        if accepting == .pausedAtLimit && connections.count < connectionLimit.resumeBelow { resumeAccepting() }
        if connection.lingerUntil != nil { lingering -= 1 }
        switch connection.open {
        case .mesh(let id): meshWork.append(.cancel(id))
        case .worker(let task): task.cancel()
        case nil: break
        }
        connection.open = nil
        connection.stream = nil
        connection.streamGate?.close()
        workerStreams[connection.token] = nil
        connection.upload?.feed?.cut("the client went away")
        connection.upload = nil
        if connections.isEmpty, listener == nil, let drained {
            self.drained = nil
            drained()
        }
    }

    private func setEvents(_ connection: ClientConnection, _ events: Int16) {
        guard connection.events != events else { return }
        connection.events = events
        descriptors.change(connection.fd, events: events, token: connection.token)
    }

    // MARK: Reading

    /// `hungUp`: the client shut its side or the connection broke.
    private func readable(_ connection: ClientConnection, hungUp: Bool) {
        connection.lastActive = .now
        if connection.lingerUntil != nil { return discardInput(connection) }
        if connection.upload != nil { return readUpload(connection, hungUp: hungUp) }
        if connection.open != nil || !connection.writer.isEmpty { return readAhead(connection, hungUp: hungUp) }
        readRequest(connection)
    }

    /// Reads and dispatches requests until one is open, an answer waits to be written, or the socket has no more:
    /// a body of known length is read straight into its frame. Requests answered at once (no route, say) loop here
    /// rather than recurse, however many a client pipelines.
    private func readRequest(_ connection: ClientConnection) {
        guard !connection.reading else { return }
        connection.reading = true
        defer { connection.reading = false }
        while connection.takesRequests {
            if !connection.pending.isEmpty {
                do {
                    let taken = try connection.pending.withUnsafeBytes { try connection.reader.consume($0) }
                    connection.pending.removeFirst(taken)
                } catch {
                    refuse(connection, error as? HTTPMessageError ?? HTTPMessageError("\(error)"))
                    return
                }
                if connection.reader.head == nil {
                    if connection.headDeadline == nil && connection.reader.hasStarted { connection.headDeadline = .now + serving.headerTimeout }
                } else {
                    connection.headDeadline = nil
                }
                if startsUpload(connection, paused: false) { return dispatchUpload(connection) }
                guard countBody(connection) else { return refuseForMemory(connection) }
                if connection.reader.isComplete {
                    dispatch(connection)
                } else {
                    sendContinueIfAsked(connection)
                }
                continue
            }
            let count: Int
            if let room = connection.reader.directBodyRoom() {
                count = read(connection.fd, room.baseAddress, room.count)
                if count > 0 {
                    connection.reader.filledDirectly(count)
                    if connection.reader.isComplete { dispatch(connection) }
                    continue
                }
            } else {
                count = read(connection.fd, scratch.baseAddress, scratch.count)
                if count > 0 {
                    connection.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<count]))
                    continue
                }
            }
            if count == 0 { return clientWentAway(connection) }
            if errno == EINTR { continue }
            if errno != EAGAIN { return clientWentAway(connection) }
            if startsUpload(connection, paused: true) { dispatchUpload(connection) }
            return
        }
    }

    // MARK: Request bodies that stream

    /// Bodies of known length over this stream (into the mesh on a route, or to a Worker that `streamsBodies`).
    static let streamAbove = Streaming.threshold

    private func newReader() -> HTTPRequestReader {
        HTTPRequestReader(
            maxBodyBytes: serving.maxBodyBytes, streamAbove: serving.routes != nil || serving.worker.streamsBodies ? Self.streamAbove : nil,
            maxStreamedBytes: serving.maxStreamedBodyBytes, tunnels: serving.tunnels
        )
    }

    /// Whether the request being read goes on now, its body streaming after it: a body of known length over
    /// `streamAbove`, or one of unknown length (chunked) that is over it or not whole when the client `paused`.
    private func startsUpload(_ connection: ClientConnection, paused: Bool) -> Bool {
        let reader = connection.reader
        guard connection.upload == nil, connection.open == nil, let head = reader.head, !reader.isComplete, bodyMayStream(head)
        else { return false }
        if reader.bodyStreamsFromStart { return true }
        return reader.directBodyRoom() == nil && (paused || reader.bodyBytesHeld > Self.streamAbove)
    }

    /// A request on a route streams its body into the mesh; one the Worker's task handles streams it to the Worker
    /// only if it takes bodies that stream (an egress call out of the mesh does not).
    private func bodyMayStream(_ head: HTTPRequestHead) -> Bool {
        if let routes = serving.routes, case .worker = routes.decide(HTTPMapping.edgeRequest(head, body: [])) {
            return serving.worker.streamsBodies
        }
        return serving.routes != nil || serving.worker.streamsBodies
    }

    /// Sends the request into the mesh with its body to follow, what was read of the body waiting for the first grant;
    /// or hands it to the Worker's task, its body a stream that the task's reading lets in.
    private func dispatchUpload(_ connection: ClientConnection) {
        guard let head = connection.reader.head else { return }
        if let twice = Failures.singleHeaders.first(where: { name in head.headers.count { $0.name.caseInsensitiveEquals(name) } > 1 }) {
            return refuse(connection, HTTPMessageError("the request has more than one \(twice) header"))
        }
        sendContinueIfAsked(connection)
        connection.request = head
        connection.exchange &+= 1
        var request = HTTPMapping.edgeRequest(head, body: [])
        switch serving.routes?.decide(request) ?? .worker {
        case .answer(let response):
            // Answered at once (no route): the body is not read, so the connection closes after the answer.
            respond(connection, with: response, closing: true)
        case .worker:
            let length = head.headers.first { $0.name.caseInsensitiveEquals("content-length") }.flatMap { Int($0.value) }
            let feed = uploadToWorker(connection, held: connection.reader.takeAvailableBody(), tunnel: false)
            request.body = Body(stream: BodyStream(feed: feed, length: length))
            runWorker(connection, request)
            setEvents(connection, connection.writer.isEmpty ? 0 : Int16(POLLOUT))
        case .forward(let forwarded, let target, let port):
            let id = ids.next()
            connection.open = .mesh(id: id)
            connection.upload = RequestUpload(id: id, held: connection.reader.takeAvailableBody())
            var exchange = Exchange(
                forwarded, id: id, to: target, port: port, configuration: configuration, ids: ids,
                reply: .connection(token: connection.token, exchange: connection.exchange), streamsAnswer: true
            )
            exchange.streamsBody()
            meshWork.append(.send(exchange, body: []))
            // Nothing more is read until the sidecar grants credit.
            setEvents(connection, connection.writer.isEmpty ? 0 : Int16(POLLOUT))
        }
    }

    /// What the client sends of the body of the request `connection` hands to its Worker now (or, for a WebSocket,
    /// `tunnel`, all it sends from now on), `held` what came of it already: the feed the Worker's task reads, which
    /// reads the client only as it is read. Nothing more is read until the Worker first reads, so a client cannot make
    /// the edge hold a window for a Worker that never reads.
    private func uploadToWorker(_ connection: ClientConnection, held: [Frame], tunnel: Bool) -> BodyFeed {
        let token = connection.token, number = connection.exchange, loop = loop
        let feed = BodyFeed(
            initialGrant: 0,
            grant: { bytes in loop.execute { $0.server.grantUpload(token: token, exchange: number, bytes: UInt64(bytes)) } },
            abandon: { loop.execute { $0.server.uploadAbandoned(token: token, exchange: number) } }
        )
        connection.upload = RequestUpload(id: 0, feed: feed, held: held, tunnel: tunnel)
        return feed
    }

    /// A WebSocket's Upgrade, or a CONNECT, to a Worker that takes streams: its body is the client's side of the
    /// socket or tunnel, from the bytes that came after its head on.
    private func dispatchWorkerTunnel(_ connection: ClientConnection, _ request: EdgeRequest) {
        var request = request
        let early = connection.pending.isEmpty ? [] : [Frame(connection.pending)]
        connection.pending.removeAll()
        request.body = Body(stream: BodyStream(feed: uploadToWorker(connection, held: early, tunnel: true), length: nil))
        runWorker(connection, request)
        setEvents(connection, streamEvents(connection))
    }

    /// A WebSocket's Upgrade: sent into the mesh, after which the client's bytes stream to the app as they come.
    private func dispatchTunnel(_ connection: ClientConnection, _ forwarded: EdgeRequest, to target: Target, port: Int?) {
        let id = ids.next()
        connection.open = .mesh(id: id)
        // What the client sent after its head is already the new protocol's.
        let early = connection.pending.isEmpty ? [] : [Frame(connection.pending)]
        connection.pending.removeAll()
        connection.upload = RequestUpload(id: id, held: early, tunnel: true)
        var exchange = Exchange(
            forwarded, id: id, to: target, port: port, configuration: configuration, ids: ids,
            reply: .connection(token: connection.token, exchange: connection.exchange), streamsAnswer: true
        )
        exchange.upgrades()
        meshWork.append(.send(exchange, body: []))
        setEvents(connection, streamEvents(connection))
    }

    /// What a connection with a stream or an upload open polls for: output while it writes; input while its upload
    /// has credit (or, with none, while pipelined requests may still be held), and the client's going away.
    private func streamEvents(_ connection: ClientConnection) -> Int16 {
        var events = connection.writer.isEmpty ? Int16(0) : Int16(POLLOUT)
        if let upload = connection.upload {
            if !upload.ended && !upload.sender.isBlocked { events |= Int16(POLLIN) | Self.pollReadHangUp }
        } else {
            events |= (connection.pending.count < Self.maxPendingBytes ? Int16(POLLIN) : 0) | Self.pollReadHangUp
        }
        return events
    }

    /// Reads a WebSocket's client side as far as its credit goes, and passes its bytes on as they are.
    private func readTunnel(_ connection: ClientConnection, hungUp: Bool) {
        while let upload = connection.upload, !upload.ended, !upload.sender.isBlocked {
            let count = read(connection.fd, scratch.baseAddress, min(scratch.count, upload.sender.available))
            if count > 0 {
                sendPiece(connection, [Frame(copying: UnsafeRawBufferPointer(rebasing: scratch[..<count]))], final: false)
                continue
            }
            if count == 0 {
                // The client closed its side: the app's side closes too, and the app's end ends the exchange.
                sendPiece(connection, [], final: true)
                connection.upload!.ended = true
                break
            }
            if errno == EINTR { continue }
            if errno == EAGAIN { break }
            return clientWentAway(connection)
        }
        let events = streamEvents(connection)
        setEvents(connection, events)
        if hungUp && events & Int16(POLLIN) == 0 && connection.upload?.ended != true { clientWentAway(connection) }
    }

    /// The sidecar of request `exchange` of connection `token` granted `bytes` more of its body.
    func grantUpload(token: Int, exchange number: UInt64, bytes: UInt64) {
        guard let connection = connections[token], connection.exchange == number, connection.upload != nil else { return }
        connection.upload!.sender.granted(bytes)
        if !connection.upload!.held.isEmpty {
            let held = connection.upload!.held
            connection.upload!.held = []
            sendPiece(connection, held, final: false)
        }
        readUpload(connection, hungUp: false)
    }

    private func sendPiece(_ connection: ClientConnection, _ body: [Frame], final: Bool) {
        guard let upload = connection.upload, !body.isEmpty || final else { return }
        connection.upload!.sender.sent(body.byteCount)
        guard let feed = upload.feed else { return meshWork.append(.piece(id: upload.id, body: body, final: final)) }
        // A Worker that gave the body up: the rest is read and dropped.
        if feed.push(body, final: final) != .taken { connection.upload!.discarding = true }
    }

    /// The Worker of request `exchange` of connection `token` gave its body up before its end: the rest is read and
    /// dropped, so that the connection can go on once the Worker answers.
    func uploadAbandoned(token: Int, exchange number: UInt64) {
        guard let connection = connections[token], connection.exchange == number, connection.upload?.feed != nil else { return }
        connection.upload!.discarding = true
        readUpload(connection, hungUp: false)
    }

    /// Reads the body that streams in, as far as its credit goes: no further, so a sidecar whose app reads slowly
    /// stops this client's reads (TCP then stops the client).
    private func readUpload(_ connection: ClientConnection, hungUp: Bool) {
        guard let upload = connection.upload, !connection.reading else { return }
        if upload.tunnel { return readTunnel(connection, hungUp: hungUp) }
        connection.reading = true
        let finished = readUploadBody(connection, hungUp: hungUp)
        connection.reading = false
        // A body dropped to its end after an early answer: the next request may be read once that answer is out.
        if finished && upload.discarding && connection.writer.isEmpty && !connection.pending.isEmpty { readRequest(connection) }
    }

    /// Reads as much of the body as its credit allows (all of it, when it is dropped); true once it is whole.
    private func readUploadBody(_ connection: ClientConnection, hungUp: Bool) -> Bool {
        connection.lastActive = .now
        let discarding = connection.upload!.discarding
        while (discarding || !connection.upload!.sender.isBlocked) && !connection.reader.isComplete {
            let limit = discarding ? scratch.count : min(scratch.count, connection.upload!.sender.available)
            let taken: Int
            do {
                if !connection.pending.isEmpty {
                    let count = min(connection.pending.count, limit)
                    taken = try connection.pending.withUnsafeBytes { try connection.reader.consume(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
                    connection.pending.removeFirst(taken)
                } else {
                    let count = read(connection.fd, scratch.baseAddress, limit)
                    if count == 0 {
                        clientWentAway(connection)
                        return false
                    }
                    if count < 0 {
                        if errno == EINTR { continue }
                        if errno == EAGAIN { break }
                        clientWentAway(connection)
                        return false
                    }
                    let bytes = UnsafeRawBufferPointer(rebasing: scratch[..<count])
                    taken = try connection.reader.consume(bytes)
                    // What follows the body is the client's next request.
                    if taken < count { connection.pending.append(contentsOf: bytes[taken...]) }
                }
            } catch {
                abandonUpload(connection, error as? HTTPMessageError ?? HTTPMessageError("\(error)"))
                return false
            }
            if connection.reader.isComplete { break }
            let body = connection.reader.takeAvailableBody()
            if !body.isEmpty && !discarding { sendPiece(connection, body, final: false) }
        }
        if connection.reader.isComplete {
            let last = connection.reader.takeAvailableBody()
            if !discarding { sendPiece(connection, last, final: true) }
            connection.upload = nil
            connection.reader = newReader()
            connection.continueSent = false
            setEvents(connection, Int16(POLLIN) | Self.pollReadHangUp | (connection.writer.isEmpty ? 0 : Int16(POLLOUT)))
            return true
        }
        // Out of credit: not even the client's going away is polled for (it would wake the loop until credit came),
        // only an error or a hang-up, which poll(2) reports whatever is asked.
        let wantsInput = discarding || !connection.upload!.sender.isBlocked
        setEvents(connection, (wantsInput ? Int16(POLLIN) | Self.pollReadHangUp : 0) | (connection.writer.isEmpty ? 0 : Int16(POLLOUT)))
        if hungUp && !wantsInput { clientWentAway(connection) }
        return false
    }

    /// A body that cannot be read on (malformed chunked coding): the exchange is cancelled in the mesh, and the client
    /// gets 400 if its answer has not begun, or a reset if it has.
    private func abandonUpload(_ connection: ClientConnection, _ error: HTTPMessageError) {
        guard let upload = connection.upload else { return }
        connection.upload = nil
        // Its answer went already: nothing more can be said on this connection.
        if upload.discarding { return close(connection) }
        if let feed = upload.feed {
            // The Worker reading it sees it cut, and its answer is not waited for.
            feed.cut(error.description)
            if case .worker(let task) = connection.open { task.cancel() }
        } else {
            meshWork.append(.cancel(upload.id))
        }
        if connection.stream != nil { return reset(connection, error.description) }
        connection.open = nil
        refuse(connection, error)
    }

    /// While a request is open, the next ones (pipelined) are held, up to a limit; a connection that ends now ends
    /// the open request too.
    private func readAhead(_ connection: ClientConnection, hungUp: Bool) {
        // With the held bytes at their limit nothing more is read, so the end of the connection cannot show as a
        // read of nothing: the hang-up itself says it (and, polled level-triggered, would wake the loop again and
        // again until it is dealt with).
        if hungUp && connection.pending.count >= Self.maxPendingBytes { return clientWentAway(connection) }
        while connection.pending.count < Self.maxPendingBytes {
            let count = read(connection.fd, scratch.baseAddress, min(scratch.count, Self.maxPendingBytes - connection.pending.count))
            if count > 0 {
                connection.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<count]))
                continue
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && errno == EAGAIN { return }
            return clientWentAway(connection)
        }
        // Full: only the client's going away is watched for until the open request is answered.
        setEvents(connection, Self.pollReadHangUp | (connection.writer.isEmpty ? 0 : Int16(POLLOUT)))
    }

    private func clientWentAway(_ connection: ClientConnection) {
        if connection.open != nil {
            serving.logger.debug("a client went away before its answer", metadata: ["berth.connection": "\(connection.token)"])
        }
        close(connection)
    }

    /// A client that sent `Expect: 100-continue` waits for this before its body.
    private func sendContinueIfAsked(_ connection: ClientConnection) {
        guard let head = connection.reader.head, head.expectsContinue, head.minorVersion == 1, !connection.continueSent else { return }
        connection.continueSent = true
        connection.writer.append(Frame("HTTP/1.1 100 Continue\r\n\r\n"))
        flush(connection)
    }

    /// Drops what a client still sends after its answer said the connection closes: closing with input unread would
    /// reset the connection, and the client could lose the answer.
    private func discardInput(_ connection: ClientConnection) {
        while true {
            let count = read(connection.fd, scratch.baseAddress, scratch.count)
            if count > 0 { continue }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && errno == EAGAIN { return }
            return close(connection)
        }
    }

    // MARK: Requests

    private func dispatch(_ connection: ClientConnection) {
        guard let head = connection.reader.head else { return }
        if let twice = Failures.singleHeaders.first(where: { name in head.headers.count { $0.name.caseInsensitiveEquals(name) } > 1 }) {
            return refuse(connection, HTTPMessageError("the request has more than one \(twice) header"))
        }
        connection.dispatchedBodyBytes = connection.reader.bodyBytesHeld
        let body = connection.reader.takeBody()
        connection.reader = newReader()
        connection.continueSent = false
        connection.request = head
        connection.exchange &+= 1
        let request = HTTPMapping.edgeRequest(head, body: body)

        if let routes = serving.routes {
            switch routes.decide(request) {
            case .answer(let response):
                // A refused CONNECT closes: what its client sends next may be meant for the tunnel it asked for.
                return respond(connection, with: response, closing: head.isConnect)
            case .forward(let forwarded, let target, let port) where HTTPMapping.isWebSocketUpgrade(head):
                return dispatchTunnel(connection, forwarded, to: target, port: port)
            case .forward(let forwarded, let target, let port):
                let id = ids.next()
                connection.open = .mesh(id: id)
                let exchange = Exchange(
                    forwarded, id: id, to: target, port: port, configuration: configuration, ids: ids,
                    reply: .connection(token: connection.token, exchange: connection.exchange), streamsAnswer: true
                )
                // Nothing reads the body after this, so its frames go to the bus as read (`Body.framesForBus` would
                // make new ones for a second reader).
                return meshWork.append(.send(exchange, body: body))
            case .worker:
                break
            }
        }
        if serving.worker.streamsBodies && (HTTPMapping.isWebSocketUpgrade(head) || head.isConnect) {
            return dispatchWorkerTunnel(connection, request)
        }
        runWorker(connection, request)
    }

    /// Hands `request` to the Worker in a task of its own. Its answer is written whole, or piece by piece if its body
    /// streams, as the client takes it; the span of the client's request is published when the answer is out.
    private func runWorker(_ connection: ClientConnection, _ request: EdgeRequest) {
        let worker = serving.worker
        let env = env
        let logger = serving.logger
        let token = connection.token
        let number = connection.exchange
        let loop = loop
        let span = WorkerSpan.make(request, ids: ids, configuration: configuration)
        connection.open = .worker(Task {
            var response: EdgeResponse
            do {
                response = try await WorkerSpan.run(span, request) { try await worker.fetch($0, env: env) }
            } catch {
                logger.warning("worker failed", metadata: ["berth.path": "\(request.path)", "berth.error": "\(error)"])
                response = .failure(MeshError(code: .internal, message: "the worker failed: \(error)", component: "edge"))
            }
            guard let body = response.body.stream else {
                let response = response
                loop.execute { bus in
                    if let span { bus.publishTraffic(span.event(response)) }
                    bus.server.answer(token: token, exchange: number, with: response)
                }
                return
            }
            let gate = CreditGate(initial: Streaming.window)
            let head = response
            loop.execute { $0.server.beginWorkerStream(token: token, exchange: number, with: head, gate: gate, span: span) }
            let end = await BodyPump.run(body, through: gate) { frames, final in
                loop.execute { _ = $0.server.streamPiece(token: token, exchange: number, body: frames, final: final, failed: nil) }
            }
            if case .failed(let reason) = end {
                logger.warning("worker's answer failed as it streamed", metadata: ["berth.path": "\(request.path)", "berth.error": "\(reason)"])
                response.meshError = MeshError(code: .internal, message: "the worker's answer failed as it streamed: \(reason)", component: "edge")
            }
            let streamed = response
            loop.execute { bus in
                bus.server.endWorkerStream(token: token, exchange: number)
                if case .failed(let reason) = end { bus.server.streamLost(token: token, exchange: number, reason: reason) }
                if let span { bus.publishTraffic(span.event(streamed)) }
            }
        })
    }

    /// The answer to the request `exchange` of connection `token`, if both are still there.
    /// What the server asked of the mesh since the last call, in order.
    func takeMeshWork() -> [MeshWork] {
        guard !meshWork.isEmpty else { return [] }
        defer { meshWork.removeAll(keepingCapacity: true) }
        return meshWork
    }

    func answer(token: Int, exchange number: UInt64, with response: EdgeResponse) {
        guard let connection = connections[token], connection.exchange == number, connection.open != nil else { return }
        connection.open = nil
        // An answer before the whole body streamed in (an error, an app that answers early): the rest of the body is
        // read and dropped after it. A WebSocket that was refused (no 101) has no end to wait for: it closes.
        if connection.upload?.tunnel == true {
            connection.upload = nil
            return respond(connection, with: response, closing: true)
        }
        connection.upload?.discarding = true
        // Nobody will read the rest: whoever still waits for it (a pump passing it on) stops.
        connection.upload?.feed?.cut("the answer went before the whole body was read")
        respond(connection, with: response)
    }

    // MARK: Streamed answers

    /// The head of a Worker's answer whose body streams: written now, the body to follow as `gate` lets the Worker's
    /// task send it (the credit comes back as the client's socket takes what was written). An answer that may have no
    /// body (HEAD, 204, 304) goes without it, and the task stops.
    func beginWorkerStream(token: Int, exchange number: UInt64, with response: EdgeResponse, gate: CreditGate, span: WorkerSpan?) {
        guard let connection = connections[token], connection.exchange == number, case .worker? = connection.open else { return gate.close() }
        let request = connection.request
        // The answer that opens a tunnel: a WebSocket's 101, a CONNECT's 2xx.
        let opens = response.status == 101 || (request?.isConnect == true && (200..<300).contains(response.status))
        let switched = opens && connection.upload?.tunnel == true
        guard switched || (HTTPMapping.bodyAllowed(status: response.status) && request?.isHead != true) else {
            gate.close()
            connection.open = nil
            if response.status == 101 {
                return respond(connection, with: .failure(MeshError(
                    code: .internal, message: "the worker answered 101 to a request that did not ask to switch to WebSocket", component: "edge"
                )))
            }
            return respond(connection, with: response)
        }
        connection.streamGate = gate
        // The app's side of a WebSocket, followed frame by frame: cut between two frames, it is closed with 1011.
        connection.webSocket = switched && response.status == 101 ? WebSocketFrameScanner() : nil
        if let span { workerStreams[token] = WorkerStream(span: span, response: response, exchange: number, lastEvent: .now) }
        let stream = ResponseStream(id: 0, length: response.body.length, minorVersion: request?.minorVersion ?? 1, switched: switched)
        writeHead(connection, of: response, streaming: stream)
    }

    /// A Worker's answer that streams, for its progress events.
    struct WorkerStream {
        let span: WorkerSpan
        let response: EdgeResponse
        let exchange: UInt64
        var lastEvent: ContinuousClock.Instant
    }

    /// The Worker's task of request `exchange` of connection `token` is done with its stream.
    func endWorkerStream(token: Int, exchange number: UInt64) {
        if workerStreams[token]?.exchange == number { workerStreams[token] = nil }
    }

    /// Progress events of Worker's answers that have streamed for `interval` since their last event, with their bytes
    /// so far, as the mesh's streams get them (`EdgeBus.progressInterval`).
    func workerStreamProgress(now: ContinuousClock.Instant, interval: Duration) -> [TrafficEvent] {
        var events: [TrafficEvent] = []
        for (token, stream) in workerStreams where stream.lastEvent.duration(to: now) >= interval {
            workerStreams[token]!.lastEvent = now
            var event = stream.span.event(stream.response)
            event.inProgress = true
            events.append(event)
        }
        return events
    }

    /// The head of an answer whose body streams (request `id` in the mesh): written now, with chunked coding for an
    /// HTTP/1.1 client unless the app said the length. False when the connection is gone: the stream is not wanted.
    func beginStream(token: Int, exchange number: UInt64, id: UInt64, with response: EdgeResponse) -> Bool {
        guard let connection = connections[token], connection.exchange == number, case .mesh(let open)? = connection.open, open == id else {
            return false
        }
        let length = response.header("content-length").flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
        let minorVersion = connection.request?.minorVersion ?? 1
        writeHead(connection, of: response, streaming: ResponseStream(id: id, length: length, minorVersion: minorVersion, switched: response.status == 101))
        return connections[token] != nil
    }

    /// Writes the head of an answer whose body follows as `stream` says.
    private func writeHead(_ connection: ClientConnection, of response: EdgeResponse, streaming stream: ResponseStream) {
        let (head, closes) = HTTPMapping.head(of: response, bodyBytes: stream.headLength, for: connection.request, forceClose: listener == nil)
        connection.stream = stream
        // The request's body is no longer held: the app has it.
        connection.dispatchedBodyBytes = 0
        _ = countBody(connection)
        connection.writer.append(Frame(head))
        connection.closesAfterWrite = closes || stream.framing == .untilClose
        connection.lingersAfterWrite = false
        flush(connection)
    }

    /// A piece of a streamed answer: written as it came. False when the connection is gone.
    func streamPiece(token: Int, exchange number: UInt64, body: [Frame], final: Bool, failed: String?) -> Bool {
        guard let connection = connections[token], connection.exchange == number, var stream = connection.stream else { return false }
        if connection.webSocket != nil {
            for frame in body { frame.withUnsafeBytes { connection.webSocket!.scan($0) } }
            if final && connection.webSocket!.atFrameBoundary && !connection.webSocket!.sawClose {
                // The app's side ended without closing the WebSocket (it died, or was put to sleep).
                streamLost(token: token, exchange: number, reason: "the app closed its connection without closing the WebSocket")
                return false
            }
        }
        let step = stream.piece(body.byteCount, final: final, failed: failed)
        connection.stream = stream
        switch step {
        case .reset(let reason):
            reset(connection, reason)
            return false
        case .write(let before, let after, let ends):
            if !before.isEmpty { connection.writer.append(Frame(before)) }
            connection.writer.append(contentsOf: body)
            if !after.isEmpty { connection.writer.append(Frame(after)) }
            if ends {
                connection.stream = nil
                connection.streamGate = nil
                connection.open = nil
                connection.request = nil
            }
            flush(connection)
            return connections[token] != nil
        }
    }

    /// A streamed answer was cut where it came from: the client's connection is reset, so that the body never looks
    /// whole; a WebSocket between two frames gets a close frame (`closeFrame`, 1011) first, then the end.
    func streamLost(token: Int, exchange number: UInt64, reason: String, closeFrame: [UInt8]? = nil) {
        guard let connection = connections[token], connection.exchange == number, connection.stream != nil else { return }
        // A Worker's WebSocket: the server follows its frames itself (the bus does for the mesh's).
        let closeFrame = closeFrame ?? (connection.webSocket?.atFrameBoundary == true ? WebSocketFrameScanner.internalErrorClose : nil)
        guard let closeFrame else { return reset(connection, reason) }
        connection.stream = nil
        connection.streamGate?.close()
        connection.upload = nil
        connection.open = nil
        connection.writer.append(Frame(closeFrame))
        connection.closesAfterWrite = true
        flush(connection)
    }

    /// Ends the connection with a reset (RST), what it had to write dropped: no clean end of a body.
    private func reset(_ connection: ClientConnection, _ reason: String) {
        serving.logger.debug("resetting a client connection: its streamed answer was cut", metadata: [
            "berth.connection": "\(connection.token)", "berth.reason": "\(reason)",
        ])
        var hard = linger(l_onoff: 1, l_linger: 0)
        setsockopt(connection.fd, SOL_SOCKET, SO_LINGER, &hard, socklen_t(MemoryLayout<linger>.size))
        connection.open = nil
        connection.stream = nil
        connection.streamGate?.close()
        close(connection)
    }

    /// After a write of a streamed answer: the credit its sidecar gets for what the client took.
    private func grant(_ connection: ClientConnection) {
        guard var stream = connection.stream else { return }
        let more = stream.written(pendingBytes: connection.writer.pendingBytes)
        connection.stream = stream
        guard let more else { return }
        if let gate = connection.streamGate { return gate.granted(UInt64(more)) }
        meshWork.append(.credit(id: stream.id, bytes: more))
    }

    /// A request that cannot be read: 413 for a body over the limit, 431 for a head over it, 414 for a request line
    /// over it, 501 for what the edge does not do, 505 for HTTP/2.0 and the like, 400 for anything else; the connection closes, since what the client
    /// sends next can no longer be told apart from what it sent.
    private func refuse(_ connection: ClientConnection, _ error: HTTPMessageError) {
        let response: EdgeResponse
        switch error.kind {
        case .bodyTooLarge:
            response = .failure(MeshError(code: .tooLarge, message: error.description, component: "edge"))
        case .headTooLarge:
            response = .failure(MeshError(code: .badRequest, message: error.description, component: "edge"), status: 431)
        case .targetTooLong:
            response = .failure(MeshError(code: .badRequest, message: error.description, component: "edge"), status: 414)
        case .notImplemented:
            response = .failure(MeshError(code: .badRequest, message: error.description, component: "edge"), status: 501)
        case .versionNotSupported:
            response = .failure(MeshError(code: .badRequest, message: error.description, component: "edge"), status: 505)
        case .malformed:
            response = .failure(MeshError(code: .badRequest, message: error.description, component: "edge"))
        }
        serving.logger.debug("refused a client's request", metadata: ["berth.error": "\(error)"])
        connection.request = connection.reader.head
        respond(connection, with: response, closing: true)
    }

    // MARK: Body memory

    /// Counts what the connection's bodies hold now, the one it reads and the one in the mesh; false, counting
    /// nothing more, when that would take the edge past `maxBufferedBytes`.
    private func countBody(_ connection: ClientConnection) -> Bool {
        let held = connection.dispatchedBodyBytes + connection.reader.bodyBytesHeld
        guard bodyMemory.recount(from: connection.countedBodyBytes, to: held) else { return false }
        connection.countedBodyBytes = held
        return true
    }

    /// A body that would take the edge past its limit on held bodies: 503 with Retry-After, and the connection
    /// closes, its body unread.
    private func refuseForMemory(_ connection: ClientConnection) {
        serving.logger.debug("refused a request body: the edge holds too many bytes of bodies", metadata: [
            "berth.buffered": "\(bodyMemory.held)", "berth.body": "\(connection.reader.bodyBytesHeld)",
        ])
        let error = MeshError(
            code: .saturated,
            message: "the edge holds \(bodyMemory.held) bytes of request bodies and this one would pass its \(bodyMemory.limit)-byte limit; try again",
            component: "edge"
        )
        connection.request = connection.reader.head
        respond(connection, with: .failure(error), closing: true)
    }

    // MARK: Writing

    private func respond(_ connection: ClientConnection, with response: EdgeResponse, closing: Bool = false) {
        var response = response
        if !(100...999).contains(response.status) {
            serving.logger.warning("the worker answered with an invalid status", metadata: [
                "berth.path": "\(connection.request?.target ?? "?")", "berth.status": "\(response.status)",
            ])
            response = .failure(MeshError(code: .internal, message: "the worker answered with status \(response.status), which HTTP has not got", component: "edge"))
        }
        let request = connection.request
        let bodyFrames = HTTPMapping.bodyAllowed(status: response.status) && request?.isHead != true ? response.body.frames : []
        let (head, closes) = HTTPMapping.head(
            of: response, bodyBytes: bodyFrames.byteCount, for: request, forceClose: closing || listener == nil
        )
        connection.request = nil
        // The request's body is no longer held: the app has it, or never will.
        connection.dispatchedBodyBytes = 0
        _ = countBody(connection)
        connection.writer.append(Frame(head))
        connection.writer.append(contentsOf: bodyFrames)
        connection.closesAfterWrite = closes
        // Closing after a request that was not read to its end (a 413, a 400) must not reset the connection.
        connection.lingersAfterWrite = closing
        flush(connection)
    }

    private func flush(_ connection: ClientConnection) {
        connection.lastActive = .now
        switch connection.writer.write(to: connection.fd) {
        case .blocked:
            grant(connection)
            setEvents(connection, Int16(POLLOUT) | (connection.open == nil ? 0 : Self.pollReadHangUp))
        case .failed:
            close(connection)
        case .done where connection.stream != nil:
            // A stream still open: more comes from the mesh; meanwhile the client's going away is watched for.
            grant(connection)
            setEvents(connection, streamEvents(connection))
        case .done:
            written(connection)
        }
    }

    /// Everything queued is written: close, linger, or go on with the next request.
    private func written(_ connection: ClientConnection) {
        guard !connection.closesAfterWrite else {
            guard connection.lingersAfterWrite else { return close(connection) }
            shutdown(connection.fd, Int32(SHUT_WR))
            connection.lingerUntil = .now + Self.lingerTime
            lingering += 1
            setEvents(connection, Int16(POLLIN) | Self.pollReadHangUp)
            return
        }
        setEvents(connection, Int16(POLLIN) | Self.pollReadHangUp)
        // The rest of a body the app did not wait for is dropped first.
        if connection.upload != nil { return readUpload(connection, hungUp: false) }
        // A request already held (pipelined) goes on now. The socket itself is not read here: bytes in it wake the
        // loop (the poll is level-triggered), and a client that waits for each answer before its next request has
        // sent nothing yet, so the read would find nothing, one system call per request.
        if !connection.pending.isEmpty { readRequest(connection) }
    }

    // MARK: Draining

    /// Stops accepting, closes idle connections, and calls `completion` once every open request is answered and
    /// its connection closed.
    /// Answers given from now on close their connections.
    func drain(then completion: @escaping () -> Void) {
        closeListener()
        drained = completion
        for connection in Array(connections.values) where connection.isIdle {
            close(connection)
        }
        if connections.isEmpty {
            drained = nil
            completion()
        }
    }

    /// The loop stops: every connection goes, open requests with it.
    func stop() {
        closeListener()
        for connection in Array(connections.values) { close(connection) }
    }

    private func closeListener() {
        guard let listener else { return }
        descriptors.unwatch(listener.fd)
        Glibc.close(listener.fd)
        self.listener = nil
    }
}

/// A request body that streams from the client into the mesh as its sidecar grants credit.
struct RequestUpload {
    /// The exchange in the mesh; 0 for a body that streams to a Worker (`feed`).
    let id: UInt64
    var sender = CreditSender(initial: 0)
    /// Where a Worker's task reads the body; nil when it goes into the mesh.
    var feed: BodyFeed?
    /// What was read before the first grant, sent with it.
    var held: [Frame] = []
    /// A WebSocket's client side: its bytes go as they are, until it closes.
    var tunnel = false
    /// The client closed its side of the tunnel: nothing more to read.
    var ended = false
    /// The app answered before the whole body came: the rest is read and dropped, as nginx does, so that the client
    /// gets its answer and the connection goes on.
    var discarding = false
}

/// One client connection of the edge's server.
final class ClientConnection {
    let token: Int
    let fd: Int32
    var events = Int16(POLLIN) | EdgeHTTPServer.pollReadHangUp
    var reader: HTTPRequestReader
    /// Bytes read but not parsed yet: the rest of a request, or the next ones.
    var pending: [UInt8] = []
    var writer = FrameWriter()
    /// Numbers the requests of this connection, so that an answer meant for an earlier one is never written.
    var exchange: UInt64 = 0
    var open: EdgeHTTPServer.Open?
    /// The answer being written streams: set from its head to its last piece.
    var stream: ResponseStream?
    /// Credit for the Worker's task whose answer `stream` is.
    var streamGate: CreditGate?
    /// The app's side of a WebSocket a Worker passed on, frame by frame.
    var webSocket: WebSocketFrameScanner?
    /// The request's body streams into the mesh: set from its dispatch to its last piece.
    var upload: RequestUpload?
    /// The head of the request being answered.
    var request: HTTPRequestHead?
    var continueSent = false
    var closesAfterWrite = false
    var lingersAfterWrite = false
    /// Set once the answer that closes the connection is out and the client's rest is being dropped.
    var lingerUntil: ContinuousClock.Instant?
    var isClosed = false
    /// The last time the client sent something or took some of an answer.
    var lastActive = ContinuousClock.now
    /// `readRequest` is on the stack for this connection.
    var reading = false
    /// When the head being read must be whole (`Serving.headerTimeout`); nil between requests and once it is.
    var headDeadline: ContinuousClock.Instant?
    /// Bytes of the body of the request in the mesh (or a Worker's), held until it is answered.
    var dispatchedBodyBytes = 0
    /// What of the server's `BodyMemory` this connection accounts for.
    var countedBodyBytes = 0

    init(token: Int, fd: Int32, reader: HTTPRequestReader) {
        self.token = token
        self.fd = fd
        self.reader = reader
    }

    /// A request may be read now: none is open, no answer waits to be written, the connection is not ending.
    var takesRequests: Bool { !isClosed && open == nil && upload == nil && writer.isEmpty && lingerUntil == nil }

    /// Nothing open, nothing to write, no request begun.
    var isIdle: Bool { open == nil && writer.isEmpty && pending.isEmpty && !reader.hasStarted }
}
