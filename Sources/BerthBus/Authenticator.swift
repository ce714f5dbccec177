import CZeroMQ
import Logging
import Synchronization

import Glibc

/// The process's ZAP handler (ZeroMQ RFC 27) and the watcher of its sockets' failed handshakes, on one thread.
///
/// libzmq asks the ZAP handler of a socket's context about every peer of a CURVE server socket; without one it
/// admits any key. This one admits the public keys in the security's authorized folder, re-reading the folder (at
/// most once a second) when an unknown key knocks, so that a key added with `berth keygen` works without a restart.
/// A refused peer is logged once per address, with the reason. Failed handshakes that never reach ZAP (a peer
/// without CURVE, a wrong server key) show only on the socket monitor: `watch` logs them once per endpoint and reason.
public final class Authenticator: Sendable {
    /// The ZAP endpoint libzmq asks (RFC 27).
    static let zapEndpoint = "inproc://zeromq.zap.01"
    /// The ZAP domain Berth's server sockets set.
    public static let domain = "berth"

    private struct Shared: ~Copyable {
        var monitorsToAdd: [String] = []
    }

    private let shared = Mutex(Shared())
    private let security: BusSecurity
    private let rereadInterval: Duration
    private let logger: Logger

    /// Starts the handler for `security` once per context, before any server socket is made; later calls return
    /// the running one. An unknown key makes it read the folder again, at most once per `rereadInterval`.
    @discardableResult
    public static func start(
        _ security: BusSecurity, logger: Logger, context: Context = .shared, rereadInterval: Duration = .seconds(1)
    ) throws(BusError) -> Authenticator {
        try context.authenticator.withLock { current throws(BusError) -> Authenticator in
            if let current { return current }
            let authenticator = Authenticator(security: security, rereadInterval: rereadInterval, logger: logger)
            // Bound here, before this returns, so that no server socket accepts a peer before the handler exists.
            let zap = try Socket(.rep, context: context)
            try zap.bind(zapEndpoint)
            let box = SocketBox(socket: zap)
            let thread = ThreadStarter { authenticator.run(zap: box.socket, context: context) }
            thread.start(name: "berth-zap")
            current = authenticator
            return authenticator
        }
    }

    /// The running handler of `context`, if security is on.
    public static func running(in context: Context = .shared) -> Authenticator? { context.authenticator.withLock { $0 } }

    private init(security: BusSecurity, rereadInterval: Duration, logger: Logger) {
        self.security = security
        self.rereadInterval = rereadInterval
        var logger = logger
        logger[metadataKey: "berth.keys"] = "\(security.authorizedFolder)"
        self.logger = logger
    }

    /// Logs the failed handshakes of `socket` (call it on the socket's own thread).
    public func watch(_ socket: Socket) {
        let endpoint = "inproc://berth-handshakes-\(UInt(bitPattern: socket.handle))-\(UInt64.random(in: 1...UInt64.max))"
        guard zmq_socket_monitor(socket.handle, endpoint, SocketEvent.handshakeFailures | Int32(ZMQ_EVENT_MONITOR_STOPPED)) == 0 else {
            logger.debug("cannot watch a socket's handshakes", metadata: ["berth.error": "\(String(cString: zmq_strerror(zmq_errno())))"])
            return
        }
        shared.withLock { $0.monitorsToAdd.append(endpoint) }
    }

    private func run(zap: Socket, context: Context) {
        var authorized = AuthorizedKeys(folder: security.authorizedFolder, rereadInterval: rereadInterval)
        authorized.reload(logger: logger)
        var monitors: [Socket] = []
        var refusals = OnceLog(limit: 4_096)
        while true {
            for endpoint in shared.withLock({ state in defer { state.monitorsToAdd = [] }; return state.monitorsToAdd }) {
                guard let pair = try? Socket(.pair, context: context) else { continue }
                try? pair.connect(endpoint)
                monitors.append(pair)
            }
            var items = ([zap] + monitors).map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
            let ready = zmq_poll(&items, Int32(items.count), 200)
            if ready < 0 {
                if zmq_errno() == EINTR { continue }
                break // ETERM: the context is terminating; closing the sockets lets it finish.
            }
            if items[0].revents & Int16(ZMQ_POLLIN) != 0 {
                do {
                    try answer(zap, authorized: &authorized, refusals: &refusals)
                } catch where error.code == .zmq(ETERM) {
                    break
                } catch {
                    logger.warning("a ZAP request could not be answered", metadata: ["berth.error": "\(error)"])
                }
            }
            var stopped: Set<Int> = []
            for (index, monitor) in monitors.enumerated() where items[index + 1].revents & Int16(ZMQ_POLLIN) != 0 {
                while let frames = try? monitor.receive(), let event = SocketEvent(frames) {
                    if event.event == Int32(ZMQ_EVENT_MONITOR_STOPPED) { stopped.insert(index); break }
                    guard let reason = event.handshakeFailure else { continue }
                    if refusals.first("\(event.endpoint) \(event.event) \(event.value)") {
                        logger.warning("a peer's handshake failed", metadata: ["berth.endpoint": "\(event.endpoint)", "berth.reason": "\(reason)"])
                    }
                }
            }
            monitors = monitors.enumerated().filter { !stopped.contains($0.offset) }.map(\.element)
        }
    }

    /// Reads one ZAP request and answers it.
    private func answer(_ zap: Socket, authorized: inout AuthorizedKeys, refusals: inout OnceLog) throws(BusError) {
        guard let frames = try zap.receive() else { return }
        // version, request id, domain, address, routing id, mechanism, credentials... A REP socket must answer
        // before it can read again, so even a malformed request (libzmq never sends one) gets its refusal.
        guard frames.count >= 6 else {
            try zap.send([Frame("1.0"), frames.count > 1 ? frames[1] : Frame(""), Frame("500"), Frame("malformed ZAP request"), Frame(""), Frame("")])
            return
        }
        let requestID = frames[1]
        let address = frames[3].string
        let mechanism = frames[5].string
        var status = "200", text = "OK", user = ""
        if mechanism != "CURVE" {
            (status, text) = ("400", "this mesh admits CURVE peers only, not \(mechanism)")
        } else if frames.count < 7 || frames[6].count != 32 {
            (status, text) = ("400", "malformed CURVE credentials")
        } else {
            let key = frames[6].bytes
            if let name = authorized.name(of: key, logger: logger) {
                user = name
            } else {
                (status, text) = ("400", "public key \(CurveKey.text(key)) is not in \(security.authorizedFolder)")
            }
        }
        if status != "200", refusals.first(address) {
            logger.warning("refused a peer", metadata: ["berth.peer": "\(address)", "berth.reason": "\(text)"])
        }
        try zap.send([Frame("1.0"), requestID, Frame(status), Frame(text), Frame(user), Frame([UInt8]())])
    }
}

/// The admitted public keys, by the name of the file that holds each.
struct AuthorizedKeys {
    let folder: String
    let rereadInterval: Duration
    private var names: [[UInt8]: String] = [:]
    private var lastReload: ContinuousClock.Instant?

    init(folder: String, rereadInterval: Duration) {
        self.folder = folder
        self.rereadInterval = rereadInterval
    }

    mutating func reload(logger: Logger) {
        lastReload = .now
        do {
            names = [:]
            for (file, key) in try CurveCertificate.publicKeys(in: folder) {
                if let bytes = CurveKey.bytes(key) { names[bytes] = String(file.dropLast(CurveCertificate.publicSuffix.count)) }
            }
        } catch {
            logger.error("cannot read the authorized keys", metadata: ["berth.error": "\(error)"])
        }
    }

    /// The key's name, re-reading the folder (at most once per `rereadInterval`) when it is not known.
    mutating func name(of key: [UInt8], logger: Logger) -> String? {
        if let name = names[key] { return name }
        if let lastReload, lastReload.duration(to: .now) < rereadInterval { return nil }
        reload(logger: logger)
        return names[key]
    }
}

/// Remembers what was logged, so that a peer knocking a thousand times is one line (bounded, then forgets).
public struct OnceLog: Sendable {
    let limit: Int
    private var seen: Set<String> = []

    public init(limit: Int) { self.limit = limit }

    public mutating func first(_ key: String) -> Bool {
        if seen.count >= limit { seen.removeAll() }
        return seen.insert(key).inserted
    }
}

/// A socket handed to the thread that will own it; it is never used by the thread that made it afterwards.
private struct SocketBox: @unchecked Sendable {
    let socket: Socket
}

/// A plain thread, for the one loop that blocks in zmq_poll rather than in a `BusLoop`.
private final class ThreadStarter: @unchecked Sendable {
    private let body: () -> Void
    private var name = ""

    init(_ body: @escaping @Sendable () -> Void) { self.body = body }

    func start(name: String) {
        self.name = name
        var thread = pthread_t()
        let unmanaged = Unmanaged.passRetained(self)
        let result = pthread_create(&thread, nil, { argument in
            let starter = Unmanaged<ThreadStarter>.fromOpaque(argument!).takeRetainedValue()
            berth_name_thread(starter.name)
            starter.body()
            return nil
        }, unmanaged.toOpaque())
        if result == 0 {
            pthread_detach(thread)
        } else {
            unmanaged.release()
        }
    }
}
