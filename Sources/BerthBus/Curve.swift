import CZeroMQ
import Glibc

/// A CURVE key pair (CurveZMQ, Curve25519) in Z85 text, 40 characters each, as libzmq takes it.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    /// A new random key pair.
    public static func generate() -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        // Fails only when libzmq was built without CURVE, which `requireCurve` reports first.
        zmq_curve_keypair(&publicKey, &secretKey)
        return CurveKeyPair(publicKey: String(cString: publicKey), secretKey: String(cString: secretKey))
    }

    init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// The pair whose secret key is `secretKey`; the public key is derived from it.
    public init(secretKey: String) throws(SecurityError) {
        guard CurveKey.isZ85Key(secretKey) else {
            throw SecurityError(code: .malformedKey, message: "a secret key must be 40 characters of Z85, not \(secretKey.count) characters")
        }
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else {
            throw SecurityError(code: .curveUnavailable, message: "libzmq cannot derive a CURVE public key: \(String(cString: zmq_strerror(zmq_errno())))")
        }
        self.init(publicKey: String(cString: publicKey), secretKey: secretKey)
    }

    /// libzmq was built with CURVE (Debian's is, with libsodium).
    public static var isAvailable: Bool { zmq_has("curve") != 0 }
}

/// Z85 public keys, and their 32 raw bytes as a ZAP request carries them.
public enum CurveKey {
    static let z85Alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")

    public static func isZ85Key(_ text: String) -> Bool {
        text.count == 40 && text.allSatisfy(z85Alphabet.contains)
    }

    /// The 32 bytes a Z85 key encodes.
    public static func bytes(_ z85: String) -> [UInt8]? {
        guard isZ85Key(z85) else { return nil }
        var bytes = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&bytes, z85) == nil ? nil : bytes
    }

    /// The Z85 text of 32 key bytes.
    public static func text(_ bytes: [UInt8]) -> String {
        precondition(bytes.count == 32)
        var text = [CChar](repeating: 0, count: 41)
        zmq_z85_encode(&text, bytes, 32)
        return String(cString: text)
    }
}

/// What a socket does with CURVE (`SocketOptions.curve`).
public enum CurveRole: Sendable, Equatable {
    /// A bound socket that peers must prove themselves to: it holds its own key pair, and the process's ZAP handler
    /// (`Context.authorize`) admits only the keys it lists.
    case server(CurveKeyPair)
    /// A connecting socket: its own key pair, and the server's public key; nil when the server key is set per
    /// connection (`Socket.connect(_:routingID:serverKey:)`), as an edge's one socket reaches many sidecars.
    case client(CurveKeyPair, serverKey: String?)
}

/// A mesh's security settings for one process: its key pair, the folder of public keys it trusts (clients it
/// admits, and the routers' key it checks), and the routers' public key.
public struct BusSecurity: Sendable, Equatable {
    public var keys: CurveKeyPair
    /// Public key certificates (`*.key`) of every peer this process admits.
    public var authorizedFolder: String
    /// The public key of the routers (every replica shares one key pair).
    public var routerKey: String

    public init(keys: CurveKeyPair, authorizedFolder: String, routerKey: String) {
        self.keys = keys
        self.authorizedFolder = authorizedFolder
        self.routerKey = routerKey
    }

    /// The routers' public key file in a keys folder, unless one is named.
    public static let routerKeyName = "router"

    /// Reads `keyFile` (a secret certificate) and the routers' key from `routerKeyFile`, or from the folder's
    /// `router.key`.
    public static func load(keyFile: String, authorizedFolder: String, routerKeyFile: String? = nil) throws(SecurityError) -> BusSecurity {
        guard CurveKeyPair.isAvailable else {
            throw SecurityError(code: .curveUnavailable, message: "this libzmq was built without CURVE (zmq_has(\"curve\") is false)")
        }
        let keys = try CurveCertificate.read(keyFile).keyPair(file: keyFile)
        let routerFile = routerKeyFile ?? CurveCertificate.publicFile(in: authorizedFolder, name: routerKeyName)
        let routerKey = try CurveCertificate.read(routerFile).publicKey
        return BusSecurity(keys: keys, authorizedFolder: authorizedFolder, routerKey: routerKey)
    }

    /// How a bound socket of this process uses CURVE.
    public var server: CurveRole { .server(keys) }
    /// How a socket that connects to a router uses CURVE.
    public var toRouter: CurveRole { .client(keys, serverKey: routerKey) }
    /// How a socket that connects to peers with keys of their own (sidecars) uses CURVE.
    public var toPeers: CurveRole { .client(keys, serverKey: nil) }
}

/// A failure to read, write or use CURVE keys.
public struct SecurityError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: Sendable, Equatable {
        case curveUnavailable
        case unreadableFile
        case malformedKey
        case unwritableFile
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
