import BerthBus
import BerthCompose
import Foundation

/// The CURVE keys of a compose file's `security: { keys: DIR }`: one key pair per role, all admitted by every
/// process of the mesh.
public enum MeshKeys {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Makes the roles' key pairs that are missing from the folder, and returns the roles it made. Only the host that
    /// runs the routers makes keys (`mayCreate`): another host that made its own would have keys nobody admits.
    public static func ensure(_ spec: SecuritySpec, mayCreate: Bool) throws(Failure) -> [String] {
        let missing = SecuritySpec.roles.filter { !FileManager.default.fileExists(atPath: spec.secretKey($0)) }
        guard !missing.isEmpty else { return [] }
        guard mayCreate else {
            throw Failure(description: "the CURVE keys \(missing.joined(separator: ", ")) are missing from \(spec.keys); copy the keys folder from the routers' host, where berth up makes it")
        }
        for role in missing {
            do {
                try CurveCertificate.write(CurveKeyPair.generate(), folder: spec.keys, name: role)
            } catch {
                throw Failure(description: "\(error)")
            }
        }
        return missing
    }

    /// The security of a process in `role`, with the process's ZAP handler and handshake watcher started.
    public static func start(_ spec: SecuritySpec, role: String, logger: Logger) throws(Failure) -> BusSecurity {
        do {
            let security = try BusSecurity.load(keyFile: spec.secretKey(role), authorizedFolder: spec.keys)
            try Authenticator.start(security, logger: logger)
            return security
        } catch {
            throw Failure(description: "\(error)")
        }
    }
}

import Logging
