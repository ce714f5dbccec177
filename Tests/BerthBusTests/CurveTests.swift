@testable import BerthBus
import BerthTestSupport
import Foundation
import Logging
import Testing

/// CURVE and the ZAP handler over real libzmq sockets: who is admitted, who is refused, and what the refused side hears.
struct CurveTests {
    /// A keys folder with the router's pair and one admitted client, and a fresh context with its handler running.
    struct Mesh {
        let folder: String
        let context = Context()
        let router = CurveKeyPair.generate()
        let admitted = CurveKeyPair.generate()

        /// `rereadInterval`: how often the handler may read the keys folder again for an unknown key.
        init(rereadInterval: Duration = .seconds(1)) throws {
            folder = NSTemporaryDirectory() + "berth-curve-\(UUID().uuidString)"
            try CurveCertificate.write(router, folder: folder, name: "router")
            try CurveCertificate.write(admitted, folder: folder, name: "edge")
            let security = try BusSecurity.load(keyFile: CurveCertificate.secretFile(in: folder, name: "router"), authorizedFolder: folder)
            try Authenticator.start(security, logger: Logger(label: "test"), context: context, rereadInterval: rereadInterval)
        }

        func server() throws -> (Socket, String) {
            var options = SocketOptions()
            options.curve = .server(router)
            let socket = try Socket(.router, options: options, context: context)
            try socket.bind("tcp://127.0.0.1:*")
            return (socket, socket.lastEndpoint)
        }

        func client(_ curve: CurveRole?, to endpoint: String) throws -> (Socket, Socket) {
            var options = SocketOptions()
            options.curve = curve
            let socket = try Socket(.dealer, options: options, context: context)
            let monitor = try socket.monitor(events: SocketEvent.handshakeFailures | SocketEvent.handshakeSucceeded, context: context)
            try socket.connect(endpoint)
            return (socket, monitor)
        }

        func remove() { try? FileManager.default.removeItem(atPath: folder) }
    }

    @Test func anAdmittedKeyTalksBothWays() throws {
        let mesh = try Mesh()
        defer { mesh.remove() }
        let (server, endpoint) = try mesh.server()
        let (client, monitor) = try mesh.client(.client(mesh.admitted, serverKey: mesh.router.publicKey), to: endpoint)
        let event = try #require(monitor.receive(within: 5).flatMap(SocketEvent.init))
        #expect(event.event == SocketEvent.handshakeSucceeded)
        try client.send([Frame("hello")])
        let frames = try #require(try server.receive(within: 5))
        #expect(frames.last?.string == "hello")
    }

    @Test func anUnlistedKeyIsRefusedAndTheClientHearsWhy() throws {
        let mesh = try Mesh()
        defer { mesh.remove() }
        let (server, endpoint) = try mesh.server()
        let (client, monitor) = try mesh.client(.client(CurveKeyPair.generate(), serverKey: mesh.router.publicKey), to: endpoint)
        let event = try #require(monitor.receive(within: 5).flatMap(SocketEvent.init))
        #expect(event.event == SocketEvent.handshakeRefused)
        #expect(event.handshakeFailure?.contains("not in the peer's authorized keys") == true)
        _ = try client.send([Frame("let me in")])
        #expect(try server.receive(within: 0.5) == nil)
    }

    @Test func aPeerWithoutCurveIsRefused() throws {
        let mesh = try Mesh()
        defer { mesh.remove() }
        let (server, endpoint) = try mesh.server()
        let (client, monitor) = try mesh.client(nil, to: endpoint)
        let event = try #require(monitor.receive(within: 5).flatMap(SocketEvent.init))
        #expect(event.handshakeFailure?.contains("security mismatch") == true)
        _ = try client.send([Frame("plain text")])
        #expect(try server.receive(within: 0.5) == nil)
    }

    @Test func aKeyAddedLaterIsAdmittedWithoutARestart() throws {
        let mesh = try Mesh(rereadInterval: .zero)
        defer { mesh.remove() }
        let (server, endpoint) = try mesh.server()
        let late = CurveKeyPair.generate()
        try CurveCertificate.write(late, folder: mesh.folder, name: "tap")
        let (client, monitor) = try mesh.client(.client(late, serverKey: mesh.router.publicKey), to: endpoint)
        let event = try #require(monitor.receive(within: 5).flatMap(SocketEvent.init))
        #expect(event.event == SocketEvent.handshakeSucceeded, "\(event)")
        try client.send([Frame("new here")])
        #expect(try server.receive(within: 5)?.last?.string == "new here")
    }

    @Test func certificatesRoundTripAndBadOnesSayWhatIsWrong() throws {
        let pair = CurveKeyPair.generate()
        let certificate = CurveCertificate(publicKey: pair.publicKey, secretKey: pair.secretKey)
        let parsed = try CurveCertificate.parse(certificate.text(secret: true), file: "x.key_secret")
        #expect(try parsed.keyPair(file: "x") == pair)
        let publicOnly = try CurveCertificate.parse(certificate.text(secret: false), file: "x.key")
        #expect(publicOnly.secretKey == nil)
        #expect(throws: SecurityError.self) { try publicOnly.keyPair(file: "x.key") }
        let error = #expect(throws: SecurityError.self) {
            try CurveCertificate.parse("curve\n    public-key = \"short\"\n", file: "bad.key")
        }
        #expect(error?.message == "bad.key line 2: public-key must be 40 characters of Z85 in quotes")
        let folder = NSTemporaryDirectory() + "berth-curve-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try CurveCertificate.write(pair, folder: folder, name: "edge")
        let mode = try FileManager.default.attributesOfItem(atPath: folder + "/edge.key_secret")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try CurveCertificate.publicKeys(in: folder) == ["edge.key": pair.publicKey])
    }
}

extension CurveTests {
    @Test func aMessageSentBeforeTheHandshakeArrives() throws {
        let mesh = try Mesh()
        defer { mesh.remove() }
        let (server, endpoint) = try mesh.server()
        let (client, monitor) = try mesh.client(.client(mesh.admitted, serverKey: mesh.router.publicKey), to: endpoint)
        try client.send([Frame("early")])
        _ = monitor
        #expect(try server.receive(within: 5)?.last?.string == "early")
    }
}
