import NIOCore

/// Fans messages out from one producer to every connected client, each through its own bounded buffer.
///
/// Messages broadcast with an id are remembered (the last `replayLimit` of them), so that a client that connects
/// late, or reconnects, can be sent those it has not seen.
///
/// A client that reads too slowly loses messages instead of slowing the others down or holding more than
/// `bufferLimit` messages in memory: once its buffer is full, newer messages are counted and dropped, and when it
/// has room again it gets one `dropped` message saying how many it missed. Every message is built once and shared
/// by all clients.
public actor Broadcaster {
    /// A connected client's end: the messages meant for it, in order.
    public struct Client: Sendable {
        public let id: Int
        public let messages: AsyncStream<ByteBuffer>
    }

    private struct Connection {
        var continuation: AsyncStream<ByteBuffer>.Continuation
        /// Messages dropped since the client last had room.
        var dropped = 0
    }

    /// Messages held for one client before newer ones are dropped.
    public let bufferLimit: Int
    /// How many recent messages a new client is sent first, so that it does not start from nothing.
    public let replayLimit: Int
    /// Builds the message that tells a client how many messages it missed.
    private let droppedMessage: @Sendable (Int) -> ByteBuffer

    private var connections: [Int: Connection] = [:]
    private var nextID = 0
    private var recent: [(id: UInt64, message: ByteBuffer)] = []
    private var recentStart = 0
    private var closed = false

    /// Messages dropped for slow clients since the start, over all clients.
    public private(set) var droppedTotal: UInt64 = 0

    /// - Parameters:
    ///   - bufferLimit: messages held for each client; at least 1.
    ///   - replayLimit: messages with an id remembered for clients that connect later; capped at `bufferLimit`.
    ///   - droppedMessage: the message that reports a number of dropped messages to a client.
    public init(bufferLimit: Int, replayLimit: Int = 0, droppedMessage: @escaping @Sendable (Int) -> ByteBuffer) {
        self.bufferLimit = max(1, bufferLimit)
        self.replayLimit = max(0, min(replayLimit, self.bufferLimit))
        self.droppedMessage = droppedMessage
    }

    /// Clients connected now.
    public var clientCount: Int { connections.count }

    /// Adds a client; its stream starts with the remembered messages whose id is greater than `after` (all of them
    /// when `nil`), oldest first. After `close()`, the stream is already finished.
    public func connect(after: UInt64? = nil) -> Client {
        let (messages, continuation) = AsyncStream.makeStream(of: ByteBuffer.self, bufferingPolicy: .bufferingOldest(bufferLimit))
        let id = nextID
        nextID += 1
        guard !closed else {
            continuation.finish()
            return Client(id: id, messages: messages)
        }
        for index in 0..<recent.count {
            let remembered = recent[(recentStart + index) % recent.count]
            if let after, remembered.id <= after { continue }
            continuation.yield(remembered.message)
        }
        connections[id] = Connection(continuation: continuation)
        return Client(id: id, messages: messages)
    }

    /// Removes a client and finishes its stream. Removing one that is gone already does nothing.
    public func disconnect(_ id: Int) {
        connections.removeValue(forKey: id)?.continuation.finish()
    }

    /// Sends `message` to every client. With an `id` (increasing from one message to the next), clients that connect
    /// later get it too, while it is among the last `replayLimit` such.
    public func broadcast(_ message: ByteBuffer, id: UInt64? = nil) {
        guard !closed else { return }
        if let id, replayLimit > 0 {
            if recent.count < replayLimit {
                recent.append((id, message))
            } else {
                recent[recentStart] = (id, message)
                recentStart = (recentStart + 1) % replayLimit
            }
        }
        for id in connections.keys {
            deliver(message, to: id)
        }
    }

    /// Finishes every client's stream and refuses new ones: for graceful shutdown, so that streaming responses end.
    public func close() {
        closed = true
        for connection in connections.values { connection.continuation.finish() }
        connections.removeAll()
    }

    private func deliver(_ message: ByteBuffer, to id: Int) {
        guard var connection = connections[id] else { return }
        if connection.dropped > 0 {
            switch connection.continuation.yield(droppedMessage(connection.dropped)) {
            case .enqueued:
                connection.dropped = 0
            case .dropped:
                connection.dropped += 1
                droppedTotal += 1
                connections[id] = connection
                return
            case .terminated:
                connections[id] = nil
                return
            @unknown default:
                return
            }
        }
        switch connection.continuation.yield(message) {
        case .enqueued:
            break
        case .dropped:
            connection.dropped += 1
            droppedTotal += 1
        case .terminated:
            // The client's reader went away without saying so.
            connections[id] = nil
            return
        @unknown default:
            break
        }
        connections[id] = connection
    }
}
