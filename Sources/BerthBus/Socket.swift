import CZeroMQ

/// The ZeroMQ socket types Berth uses.
public enum SocketType: Sendable {
    case router, dealer, pub, sub, xpub, xsub, pair, rep

    var rawValue: Int32 {
        switch self {
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .xpub: ZMQ_XPUB
        case .xsub: ZMQ_XSUB
        case .pair: ZMQ_PAIR
        case .rep: ZMQ_REP
        }
    }
}

/// The socket options that matter, with the values the libzmq community learned to set on purpose.
public struct SocketOptions: Sendable {
    /// Milliseconds to keep unsent messages after close; 0 so that exit is never delayed.
    public var linger: Int32 = 0
    /// Largest frame accepted from a peer, in bytes; a peer that sends more is disconnected. -1: no limit.
    public var maxMessageSize: Int64 = 64 << 20
    /// Messages queued per peer before sends would block (and non-blocking sends fail).
    public var sendHighWaterMark: Int32 = 10_000
    public var receiveHighWaterMark: Int32 = 10_000
    /// DEALER: queue messages only to completed connections, so a send fails fast when the peer is gone.
    public var immediate: Bool = false
    /// ROUTER: a send to an unknown peer fails with EHOSTUNREACH instead of vanishing.
    public var routerMandatory: Bool = false
    /// ROUTER: a new connection with a known identity takes over that identity.
    public var routerHandover: Bool = false
    /// Identity a DEALER presents to a ROUTER.
    public var routingID: [UInt8]? = nil
    /// Milliseconds between reconnect attempts (first, and the backoff ceiling).
    public var reconnectInterval: Int32 = 100
    public var reconnectIntervalMax: Int32 = 1_000
    /// SUB: topic prefixes to subscribe to (empty string: everything).
    public var subscriptions: [String] = []
    /// XPUB: block instead of dropping when a subscriber is slow. Berth never wants that on the request path.
    public var xpubNoDrop: Bool = false
    /// CURVE encryption and authentication; nil: none (ZeroMQ's NULL mechanism).
    public var curve: CurveRole? = nil

    public init() {}
}

/// One event of a socket monitor (`Socket.monitor`): what happened, and on which endpoint.
public struct SocketEvent: Sendable, Equatable {
    public static let connected = Int32(ZMQ_EVENT_CONNECTED)
    public static let disconnected = Int32(ZMQ_EVENT_DISCONNECTED)
    public static let handshakeSucceeded = Int32(ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
    /// The peer's ZAP handler refused our key.
    public static let handshakeRefused = Int32(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
    /// Every way a handshake can fail.
    public static let handshakeFailures = Int32(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

    /// A ZMQ_EVENT_* value.
    public var event: Int32
    /// The event's value: a descriptor, an errno, or a retry interval.
    public var value: UInt32
    /// The endpoint as it was connected or bound.
    public var endpoint: String

    /// The two frames a monitor sends: 2 bytes of event and 4 of value, then the endpoint.
    public init?(_ frames: [Frame]) {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        let bytes = frames[0].bytes
        event = Int32(UInt16(bytes[0]) | UInt16(bytes[1]) << 8)
        value = UInt32(bytes[2]) | UInt32(bytes[3]) << 8 | UInt32(bytes[4]) << 16 | UInt32(bytes[5]) << 24
        endpoint = frames[1].string
    }

    /// Why a handshake failed, in words, when this event is such a failure.
    public var handshakeFailure: String? {
        switch event {
        case Int32(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH):
            "the peer refused our key (ZAP status \(value)): it is not in the peer's authorized keys"
        case Int32(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL):
            switch Int32(bitPattern: value) {
            case Int32(bitPattern: UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)):
                "security mismatch: one side uses CURVE and the other does not"
            case Int32(bitPattern: UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)):
                "CURVE could not decrypt the handshake: the client was given the wrong server key"
            default:
                "the peer broke the handshake protocol (error 0x\(String(value, radix: 16)))"
            }
        case Int32(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL):
            "the handshake failed (\(String(cString: zmq_strerror(Int32(bitPattern: value)))))"
        default:
            nil
        }
    }
}

/// A libzmq socket. Not thread-safe: a socket belongs to the one thread that made it (a `BusLoop`'s thread).
public final class Socket {
    let handle: UnsafeMutableRawPointer
    public let type: SocketType
    /// Messages with more frames than this are drained and rejected.
    public static let maxFrames = 1_024
    /// libzmq's ZMQ_FD: readable when the socket has commands to process, which may or may not mean messages.
    /// Edge-triggered: whoever makes libzmq process the commands (a receive, a send, ZMQ_EVENTS) consumes it.
    let signalFD: Int32
    /// A send may have made libzmq process commands, and so consumed `signalFD`'s signal: until ZMQ_EVENTS is asked,
    /// the descriptor cannot be trusted to say that a message waits (see `BusLoop`).
    var needsEventCheck = true
    /// Messages may wait: the descriptor fired, ZMQ_EVENTS said so, or the last drain stopped at its batch limit.
    var inputWaiting = false
    /// Bytes of big frames (at least `bigFrameBytes`) sent or received since the loop last gave memory back.
    var bigFrameBytesMoved = 0
    static let bigFrameBytes = 64 << 10

    public init(_ type: SocketType, options: SocketOptions = SocketOptions(), context: Context = .shared) throws(BusError) {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw BusError.last("create \(type) socket")
        }
        context.socketMade()
        self.handle = handle
        self.type = type
        var fd: Int32 = -1
        var size = MemoryLayout<Int32>.size
        zmq_getsockopt(handle, ZMQ_FD, &fd, &size)
        self.signalFD = fd
        do {
            try apply(options)
        } catch {
            zmq_close(handle)
            throw error
        }
    }

    deinit {
        zmq_close(handle)
    }

    private func apply(_ options: SocketOptions) throws(BusError) {
        try set(ZMQ_LINGER, options.linger)
        try set(ZMQ_MAXMSGSIZE, options.maxMessageSize)
        try set(ZMQ_SNDHWM, options.sendHighWaterMark)
        try set(ZMQ_RCVHWM, options.receiveHighWaterMark)
        try set(ZMQ_RECONNECT_IVL, options.reconnectInterval)
        try set(ZMQ_RECONNECT_IVL_MAX, options.reconnectIntervalMax)
        if options.immediate { try set(ZMQ_IMMEDIATE, Int32(1)) }
        if options.routerMandatory { try set(ZMQ_ROUTER_MANDATORY, Int32(1)) }
        if options.routerHandover { try set(ZMQ_ROUTER_HANDOVER, Int32(1)) }
        if options.xpubNoDrop { try set(ZMQ_XPUB_NODROP, Int32(1)) }
        if let id = options.routingID { try set(ZMQ_ROUTING_ID, id) }
        for topic in options.subscriptions { try set(ZMQ_SUBSCRIBE, Array(topic.utf8)) }
        switch options.curve {
        case nil:
            break
        case .server(let keys):
            try set(ZMQ_CURVE_SERVER, Int32(1))
            try set(ZMQ_CURVE_SECRETKEY, Array(keys.secretKey.utf8))
            try set(ZMQ_ZAP_DOMAIN, Array(Authenticator.domain.utf8))
        case .client(let keys, let serverKey):
            try set(ZMQ_CURVE_PUBLICKEY, Array(keys.publicKey.utf8))
            try set(ZMQ_CURVE_SECRETKEY, Array(keys.secretKey.utf8))
            if let serverKey { try set(ZMQ_CURVE_SERVERKEY, Array(serverKey.utf8)) }
        }
    }

    public func set(_ option: Int32, _ value: Int32) throws(BusError) {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw BusError.last("set socket option \(option) to \(value)")
        }
    }

    public func set(_ option: Int32, _ value: Int64) throws(BusError) {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size) == 0 else {
            throw BusError.last("set socket option \(option) to \(value)")
        }
    }

    public func set(_ option: Int32, _ value: [UInt8]) throws(BusError) {
        let result = value.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard result == 0 else { throw BusError.last("set socket option \(option)") }
    }

    public func bind(_ endpoint: String) throws(BusError) {
        guard zmq_bind(handle, endpoint) == 0 else { throw BusError.last("bind \(endpoint)") }
    }

    public func connect(_ endpoint: String) throws(BusError) {
        guard zmq_connect(handle, endpoint) == 0 else { throw BusError.last("connect \(endpoint)") }
    }

    /// Connects to `endpoint`, under which a ROUTER socket addresses that peer: `routingID` (ZMQ_CONNECT_ROUTING_ID).
    /// `serverKey`: the peer's CURVE public key, for a socket whose peers each have their own.
    public func connect(_ endpoint: String, routingID: [UInt8], serverKey: String? = nil) throws(BusError) {
        try set(ZMQ_CONNECT_ROUTING_ID, routingID)
        if let serverKey { try set(ZMQ_CURVE_SERVERKEY, Array(serverKey.utf8)) }
        try connect(endpoint)
    }

    /// Stops connecting to `endpoint`, and drops what is queued for it.
    public func disconnect(_ endpoint: String) {
        zmq_disconnect(handle, endpoint)
    }

    /// A PAIR socket that receives this socket's `events` (ZMQ_EVENT_* bits) as `SocketEvent`s: libzmq's socket
    /// monitor, the only way to hear at once that a connection broke or a handshake failed.
    public func monitor(events: Int32, context: Context = .shared) throws(BusError) -> Socket {
        let endpoint = "inproc://berth-monitor-\(UInt(bitPattern: handle))-\(UInt64.random(in: 1...UInt64.max))"
        guard zmq_socket_monitor(handle, endpoint, events) == 0 else { throw BusError.last("monitor socket on \(endpoint)") }
        let pair = try Socket(.pair, context: context)
        try pair.connect(endpoint)
        return pair
    }

    /// The endpoint the socket bound last, with the port the OS chose for `tcp://host:*`.
    public var lastEndpoint: String {
        var buffer = [UInt8](repeating: 0, count: 256)
        var size = buffer.count
        zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size)
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Sends `frames` as one message without blocking.
    /// - Returns: false when the message cannot be queued now (high-water mark reached, or no peer with IMMEDIATE).
    /// - Throws: on any other failure, e.g. EHOSTUNREACH for an unknown ROUTER peer.
    @discardableResult
    public func send(_ frames: [Frame]) throws(BusError) -> Bool {
        needsEventCheck = true
        for (index, frame) in frames.enumerated() {
            if frame.count >= Self.bigFrameBytes { bigFrameBytesMoved += frame.count }
            let more = index < frames.count - 1
            if zmq_msg_send(frame.message, handle, ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)) < 0 {
                let errno = zmq_errno()
                // libzmq queues a multipart message atomically once the first frame is accepted,
                // so a failure can only happen on the first frame.
                if errno == EAGAIN && index == 0 { return false }
                throw BusError(code: .zmq(errno), operation: "send on \(type) socket", message: String(cString: zmq_strerror(errno)))
            }
        }
        return true
    }

    /// Whether a whole message waits to be received (ZMQ_EVENTS, which also processes pending commands).
    var hasInput: Bool {
        needsEventCheck = false
        var events: Int32 = 0
        var size = MemoryLayout<Int32>.size
        guard zmq_getsockopt(handle, ZMQ_EVENTS, &events, &size) == 0 else { return true }
        return events & Int32(ZMQ_POLLIN) != 0
    }

    /// Blocks until one of `sockets` has a message to receive, or `timeout` passes: for a short-lived socket outside a
    /// `BusLoop` (a one-off question to a router). Returns the index of the first that has one, or nil.
    public static func waitForInput(_ sockets: [Socket], timeout: Duration) -> Int? {
        var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return nil }
            let (seconds, attoseconds) = left.components
            let ready = zmq_poll(&items, Int32(items.count), max(1, Int(seconds) * 1_000 + Int(attoseconds / 1_000_000_000_000_000)))
            if ready < 0 && zmq_errno() == EINTR { continue }
            guard ready > 0 else { return nil }
            return items.firstIndex { $0.revents & Int16(ZMQ_POLLIN) != 0 }
        }
    }

    /// Receives one whole message without blocking; `nil` when none is waiting.
    /// - Throws: `BusError` with `.tooManyFrames` when the message had more than `maxFrames` frames (the rest is drained).
    public func receive() throws(BusError) -> [Frame]? {
        var frames: [Frame] = []
        while true {
            let frame = Frame()
            if zmq_msg_recv(frame.message, handle, frames.isEmpty ? ZMQ_DONTWAIT : 0) < 0 {
                let errno = zmq_errno()
                if errno == EAGAIN && frames.isEmpty {
                    // A non-blocking receive that finds nothing processes all pending commands first, so the
                    // descriptor will fire again for whatever comes next.
                    needsEventCheck = false
                    return nil
                }
                if errno == EINTR { continue }
                throw BusError(code: .zmq(errno), operation: "receive on \(type) socket", message: String(cString: zmq_strerror(errno)))
            }
            let more = zmq_msg_more(frame.message) != 0
            if frame.count >= Self.bigFrameBytes { bigFrameBytesMoved += frame.count }
            if frames.count < Socket.maxFrames { frames.append(frame) } else if !more {
                throw BusError(code: .tooManyFrames, operation: "receive on \(type) socket", message: "message had more than \(Socket.maxFrames) frames; dropped")
            }
            if !more { return frames }
        }
    }
}
