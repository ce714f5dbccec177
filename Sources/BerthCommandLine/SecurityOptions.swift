import ArgumentParser
import BerthBus
import Logging

/// `--curve-key` and `--curve-authorized`: CURVE on every bus socket of the process, taken by every executable.
/// Environment variables `BERTH_CURVE_KEY` and `BERTH_CURVE_AUTHORIZED` stand in for them, so that a Worker
/// executable started by someone else's script can be given keys too.
public struct SecurityOptions: ParsableArguments {
    @Option(help: ArgumentHelp("This process's CURVE secret key (NAME.key_secret, from `berth keygen DIR NAME`): CURVE on every bus socket.", valueName: "FILE"))
    public var curveKey: String?

    @Option(help: ArgumentHelp("The mesh's folder of public keys (*.key): peers with these keys are admitted, and its router.key is the routers' key.", valueName: "DIR"))
    public var curveAuthorized: String?

    public init() {}

    public static let keyVariable = "BERTH_CURVE_KEY"
    public static let authorizedVariable = "BERTH_CURVE_AUTHORIZED"

    /// The security these options ask for, with the process's ZAP handler started (before any socket binds);
    /// nil when CURVE is off.
    public func start(logger: Logger) throws -> BusSecurity? {
        let key = curveKey ?? ProcessEnvironment.value(Self.keyVariable)
        let authorized = curveAuthorized ?? ProcessEnvironment.value(Self.authorizedVariable)
        switch (key, authorized) {
        case (nil, nil):
            return nil
        case (nil, _):
            throw ValidationError("--curve-authorized needs --curve-key: this process's own secret key")
        case (_, nil):
            throw ValidationError("--curve-key needs --curve-authorized: the folder of keys to admit, with the routers' router.key")
        case (let key?, let authorized?):
            let security: BusSecurity
            do {
                security = try BusSecurity.load(keyFile: key, authorizedFolder: authorized)
            } catch {
                throw ValidationError("\(error)")
            }
            try Authenticator.start(security, logger: logger)
            logger.info("CURVE on every bus socket", metadata: ["berth.key": "\(security.keys.publicKey)", "berth.keys": "\(authorized)"])
            return security
        }
    }
}
