import BerthBus
import DequeModule
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 exchange with the app, as the sidecar asks for it.
struct AppRequest: Sendable {
    var port: Int
    var head: HTTPRequestHead
    /// The body as the bus delivered it: copied to the connection a slice at a time, never whole.
    var body: [Frame]
    var deadline: NIODeadline
    var maxResponseBytes: Int
    /// Sent again on a fresh connection when a reused one turns out closed before any answer came: safe only for
    /// idempotent methods.
    var mayRetry: Bool
}

/// The app's answer: its head and its body as the chunks it arrived in.
struct AppAnswer: Sendable {
    var head: HTTPResponseHead
    var body: [ByteBuffer]
    var byteCount: Int
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
    case failed(String)
    case shutDown
}

/// A keep-alive HTTP/1.1 client for one app on one host, on one event loop of its own.
///
/// Everything runs on that loop: connections per port (at most `maxConnectionsPerPort`, the rest wait in order),
/// deadlines, retries. There is no Swift task per request and no URL is ever built or parsed: the request head goes
/// out as the router delivered it, and the completion is called once, on the loop.
final class AppClient: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let eventLoop: any EventLoop
    private let host: String
    private let connectTimeout: TimeAmount
    private let maxConnectionsPerPort: Int
    private let pools: NIOLoopBoundBox<Pools>

    init(host: String, connectTimeout: Duration, maxConnectionsPerPort: Int) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        eventLoop = group.next()
        self.host = host
        self.connectTimeout = TimeAmount(connectTimeout)
        self.maxConnectionsPerPort = max(1, maxConnectionsPerPort)
        pools = .makeBoxSendingValue(Pools(), eventLoop: eventLoop)
    }

    /// Sends `request` and calls `completion` exactly once, on the client's event loop.
    func execute(_ request: AppRequest, completion: @escaping @Sendable (Result<AppAnswer, AppClientError>) -> Void) {
        if eventLoop.inEventLoop {
            start(Exchange(request, completion: completion))
        } else {
            eventLoop.execute { self.start(Exchange(request, completion: completion)) }
        }
    }

    func execute(_ request: AppRequest) async -> Result<AppAnswer, AppClientError> {
        await withCheckedContinuation { continuation in
            execute(request) { continuation.resume(returning: $0) }
        }
    }

    /// Whether something accepts TCP connections on `port`: on loopback the answer is immediate.
    func accepts(port: Int) async -> Bool {
        guard let address = try? SocketAddress(ipAddress: host, port: port) else { return false }
        do {
            let channel = try await ClientBootstrap(group: eventLoop).connectTimeout(connectTimeout).connect(to: address).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }

    /// Fails whatever waits, then closes every connection (shutting the loop down does); requests still on one
    /// fail with `.closedEarly`, later ones with `.shutDown`.
    func shutdown() async {
        try? await eventLoop.submit {
            let pools = self.pools.value
            pools.shutDown = true
            for pool in pools.byPort.values {
                while let exchange = pool.waiting.popFirst() { exchange.finish(.failure(.shutDown)) }
            }
        }.get()
        try? await group.shutdownGracefully()
    }

    // MARK: On the event loop

    private func start(_ exchange: Exchange) {
        let pools = pools.value
        guard !pools.shutDown else { return exchange.finish(.failure(.shutDown)) }
        if exchange.timer == nil {
            exchange.timer = eventLoop.assumeIsolated().scheduleTask(deadline: exchange.request.deadline) {
                exchange.connection?.abandon()
                exchange.finish(.failure(.deadlineExceeded))
            }
        }
        let pool = pools.pool(for: exchange.request.port)
        while let connection = pool.idle.popLast() {
            if connection.isActive {
                return connection.start(exchange)
            }
        }
        if pool.open < maxConnectionsPerPort {
            connect(pool, for: exchange)
        } else {
            pool.waiting.append(exchange)
        }
    }

    private func connect(_ pool: Pool, for exchange: Exchange) {
        pool.open += 1
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: host, port: pool.port)
        } catch {
            pool.open -= 1
            return exchange.finish(.failure(.connectFailed("\(host):\(pool.port) is not an IP address")))
        }
        let port = pool.port
        let connecting = ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 512 << 10))
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(AppConnection(port: port))
                }
            }
            .connect(to: address)
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard let connection = try? channel.pipeline.syncOperations.handler(type: AppConnection.self) else {
                    pool.open -= 1
                    channel.close(promise: nil)
                    return exchange.finish(.failure(.failed("the connection to the app could not be set up")))
                }
                connection.onIdle = { [unowned self] connection in self.release(connection, to: pool) }
                connection.onClosed = { [unowned self] connection, unanswered in self.closed(connection, in: pool, unanswered: unanswered) }
                if exchange.isFinished {
                    self.release(connection, to: pool)
                } else {
                    connection.start(exchange)
                }
            case .failure(let error):
                pool.open -= 1
                exchange.finish(.failure(Self.classify(connectError: error)))
                self.serveWaiting(pool)
            }
        }
    }

    /// A connection finished its exchange and can take another.
    private func release(_ connection: AppConnection, to pool: Pool) {
        while let next = pool.waiting.popFirst() {
            if !next.isFinished { return connection.start(next) }
        }
        pool.idle.append(connection)
    }

    private func closed(_ connection: AppConnection, in pool: Pool, unanswered: Unanswered?) {
        pool.open -= 1
        pool.idle.removeAll { $0 === connection }
        if let (exchange, error, nothingReceived) = unanswered {
            // A kept-alive connection the app had already closed: nothing was answered, so ask again once.
            if nothingReceived && connection.exchanges > 1 && exchange.request.mayRetry && exchange.attempts == 1 {
                start(exchange)
            } else {
                exchange.finish(.failure(error))
            }
        }
        serveWaiting(pool)
    }

    private func serveWaiting(_ pool: Pool) {
        while pool.open < maxConnectionsPerPort, let next = pool.waiting.popFirst() {
            if !next.isFinished { connect(pool, for: next) }
        }
    }

    private static func classify(connectError error: any Error) -> AppClientError {
        if let error = error as? ChannelError, case .connectTimeout = error { return .connectTimeout }
        if let error = error as? IOError, error.errnoCode == ECONNREFUSED { return .refused }
        if let error = error as? NIOConnectionError {
            if error.connectionErrors.contains(where: { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }) { return .refused }
            return .connectFailed("\(error)")
        }
        return .connectFailed("\(error)")
    }
}

/// The client's state, touched only on its event loop.
private final class Pools {
    var byPort: [Int: Pool] = [:]
    var shutDown = false

    func pool(for port: Int) -> Pool {
        if let pool = byPort[port] { return pool }
        let pool = Pool(port: port)
        byPort[port] = pool
        return pool
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
    private var completion: (@Sendable (Result<AppAnswer, AppClientError>) -> Void)?
    var timer: Scheduled<Void>?
    /// The connection carrying it right now.
    var connection: AppConnection?
    var attempts = 0

    init(_ request: AppRequest, completion: @escaping @Sendable (Result<AppAnswer, AppClientError>) -> Void) {
        self.request = request
        self.completion = completion
    }

    var isFinished: Bool { completion == nil }

    /// The body has been copied to the connection: it is kept only while the request may be sent again.
    func bodyWritten() {
        if !request.mayRetry { request.body = [] }
    }

    func finish(_ result: Result<AppAnswer, AppClientError>) {
        guard let completion else { return }
        self.completion = nil
        connection = nil
        timer?.cancel()
        timer = nil
        completion(result)
    }
}

/// An exchange a connection closed under: why, and whether not a byte of the answer had come.
private typealias Unanswered = (exchange: Exchange, error: AppClientError, nothingReceived: Bool)

/// The last handler of a connection to the app: writes one request at a time and collects its answer.
private final class AppConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let port: Int
    var onIdle: ((AppConnection) -> Void)?
    var onClosed: ((AppConnection, Unanswered?) -> Void)?
    /// Exchanges started on this connection so far.
    private(set) var exchanges = 0
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    private var head: HTTPResponseHead?
    private var body: [ByteBuffer] = []
    private var byteCount = 0
    private var failure: AppClientError?
    /// Where the request body's next slice starts, and whether some of it is still to be written.
    private var bodyCursor = (frame: 0, offset: 0)
    private var writingBody = false
    private static let bodySliceBytes = 256 << 10

    init(port: Int) { self.port = port }

    var isActive: Bool { context?.channel.isActive ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func start(_ exchange: Exchange) {
        guard let context else { return exchange.finish(.failure(.closedEarly)) }
        self.exchange = exchange
        exchange.connection = self
        exchange.attempts += 1
        exchanges += 1
        head = nil
        body = []
        byteCount = 0
        failure = nil
        bodyCursor = (0, 0)
        writingBody = true
        context.write(wrapOutboundOut(.head(exchange.request.head)), promise: nil)
        writeBody(context: context)
    }

    /// Copies the request body into the connection a slice at a time while the channel is writable, so that a big
    /// body is held once (in its frames) and not twice; `channelWritabilityChanged` carries on.
    private func writeBody(context: ChannelHandlerContext) {
        guard writingBody, let exchange else { return }
        let frames = exchange.request.body
        while bodyCursor.frame < frames.count && context.channel.isWritable {
            let frame = frames[bodyCursor.frame]
            let start = bodyCursor.offset
            let end = min(frame.count, start + Self.bodySliceBytes)
            if end > start {
                var slice = context.channel.allocator.buffer(capacity: end - start)
                frame.withUnsafeBytes { bytes in _ = slice.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) }
                context.write(wrapOutboundOut(.body(.byteBuffer(slice))), promise: nil)
            }
            bodyCursor = end < frame.count ? (bodyCursor.frame, end) : (bodyCursor.frame + 1, 0)
        }
        guard bodyCursor.frame == frames.count else { return context.flush() }
        writingBody = false
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        exchange.bodyWritten()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { writeBody(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// The exchange gave up (its deadline): this connection's state is unknown, so it is closed, not reused.
    func abandon() {
        exchange = nil
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body(let chunk):
            byteCount += chunk.readableBytes
            guard byteCount <= exchange.request.maxResponseBytes else {
                failure = .tooLarge(limit: exchange.request.maxResponseBytes)
                return context.close(promise: nil)
            }
            body.append(chunk)
        case .end:
            guard let head else { return }
            let answer = AppAnswer(head: head, body: body, byteCount: byteCount)
            // An answer that came before the whole request body went out (a 413, say) leaves the rest of the body
            // unsent: the connection cannot carry another request.
            let keepAlive = head.isKeepAlive && exchange.request.head.isKeepAlive && !writingBody
            writingBody = false
            self.exchange = nil
            self.head = nil
            body = []
            exchange.finish(.success(answer))
            if keepAlive {
                onIdle?(self)
            } else {
                context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil { failure = .failed("\(error)") }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let unanswered = exchange.map { Unanswered($0, failure ?? .closedEarly, head == nil && failure == nil) }
        exchange = nil
        self.context = nil
        onClosed?(self, unanswered)
        onIdle = nil
        onClosed = nil
        context.fireChannelInactive()
    }
}
