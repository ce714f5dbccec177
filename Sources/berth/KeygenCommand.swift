import ArgumentParser
import BerthBus
import Foundation

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a CURVE key pair for a mesh's bus.",
        discussion: """
            Writes DIR/NAME.key (the public key, to share) and DIR/NAME.key_secret (both keys, mode 0600), in the \
            ZeroMQ certificate format czmq and pyzmq read too. A process given --curve-key DIR/NAME.key_secret \
            and --curve-authorized DIR admits the peers whose NAME.key is in DIR. berth up makes the keys a compose \
            file's `security: { keys: DIR }` needs by itself; use keygen for a client of your own, such as a tap \
            on another machine, then copy its NAME.key into the mesh's keys folder.
            """
    )

    @Argument(help: "The keys folder (made when missing).") var folder: String
    @Argument(help: "The key's name: letters, digits, '-' and '_'.") var name: String
    @Flag(help: "Replace a key pair of that name.") var force = false

    func validate() throws {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw ValidationError("'\(name)' is not a usable key name; use letters, digits, '-' and '_'")
        }
    }

    func run() throws {
        let secret = CurveCertificate.secretFile(in: folder, name: name)
        if !force, FileManager.default.fileExists(atPath: secret) {
            throw ValidationError("\(secret) exists; give --force to replace it (peers that admit the old key will refuse the new one)")
        }
        guard CurveKeyPair.isAvailable else { throw ValidationError("this libzmq was built without CURVE") }
        let pair = CurveKeyPair.generate()
        do {
            try CurveCertificate.write(pair, folder: folder, name: name)
        } catch {
            throw ValidationError(error.description)
        }
        print("public key \(pair.publicKey)")
        print("wrote \(CurveCertificate.publicFile(in: folder, name: name)) and \(secret) (mode 0600)")
    }
}
