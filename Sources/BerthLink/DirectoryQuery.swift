import BerthBus
import BerthWire

/// A one-off look at a router's directory, as `berth ps` takes it from any host: a DEALER that asks, waits for the
/// snapshot, and goes.
public enum DirectoryQuery {
    /// The directory of the first of `routers` that answers within `timeout` (all are asked at once), or nil.
    public static func fetch(routers: [String], security: BusSecurity?, timeout: Duration) -> (router: String, directory: Directory)? {
        var sockets: [(String, Socket)] = []
        for router in routers {
            var options = SocketOptions()
            options.curve = security?.toRouter
            guard let socket = try? Socket(.dealer, options: options) else { continue }
            guard (try? socket.connect(router)) != nil, (try? socket.send([Frame(Envelope.directoryRequest.encoded())])) == true else { continue }
            sockets.append((router, socket))
        }
        let deadline = ContinuousClock.now + timeout
        while let index = Socket.waitForInput(sockets.map(\.1), timeout: ContinuousClock.now.duration(to: deadline)) {
            let (router, socket) = sockets[index]
            while let frames = try? socket.receive() {
                guard let first = frames.first, let envelope = try? Envelope(decoding: first.bytes) else { continue }
                if case .directory(let directory) = envelope { return (router, directory) }
            }
        }
        return nil
    }
}
