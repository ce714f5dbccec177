import BerthWire

/// What an app may call through its sidecar's egress listener (`$BERTH_URL`), from the compose file's `egress:` and
/// `internet:`; and where each call goes. No socket, no clock: every rule is a unit test
/// (Tests/BerthSidecarTests/EgressPolicyTests.swift).
///
/// A call names its destination in one of two ways:
/// - `$BERTH_URL/ContainerB/receive`: the first segment of the path is the class, the rest the path the app sees.
/// - As to a plain HTTP proxy (`HTTP_PROXY=$BERTH_URL`): `GET http://ContainerB/receive`. A host that is a class of
///   the mesh is a call into the mesh, with its port (if any) as the app's port; any other host is the internet.
public struct EgressPolicy: Sendable, Hashable {
    /// The instance whose app calls: named in every refusal.
    public var caller: String
    /// Classes the app may call; nil: every class of the mesh.
    public var allowed: [String]?
    /// Whether calls may leave the mesh.
    public var internet: Bool
    /// Every class of the mesh, when known (a compose file's). Unknown: a proxy request's host is a class when it
    /// could not be a host name on the internet (no dot, not `localhost`, not an address).
    public var meshClasses: Set<String>?

    public init(caller: String, allowed: [String]? = nil, internet: Bool = false, meshClasses: Set<String>? = nil) {
        self.caller = caller
        self.allowed = allowed
        self.internet = internet
        self.meshClasses = meshClasses
    }

    public enum Decision: Sendable, Hashable {
        /// Into the mesh: to `className`, on `port` (nil: its configured port), with `path` as the app sees it.
        case mesh(className: String, port: Int?, path: String)
        /// Out of the mesh, to `host:port`.
        case internet(host: String, port: Int, path: String)
        /// Refused (403, `x-berth-error: egress-denied`): the message names the rule.
        case denied(String)
        /// Not a request the listener understands (400).
        case invalid(String)
    }

    /// Where a call goes, or why it may not. `authority` is the `host[:port]` of an absolute-form target (proxy mode),
    /// nil for an origin-form one; `path` is the target's path either way.
    public func decide(authority: String?, path: String) -> Decision {
        guard let authority else { return meshByPath(path) }
        guard let (host, port) = Self.split(authority) else {
            return .invalid("the request's target names the host \(authority.debugDescription), which is not host[:port]")
        }
        if isMeshClass(host) { return mesh(host, port: port, path: path) }
        guard internet else {
            return .denied("\(caller) has internet: false, so it may not call \(host):\(port ?? 80), which is outside the mesh")
        }
        return .internet(host: host, port: port ?? 80, path: path)
    }

    /// `/ContainerB/receive` → ContainerB, `/receive`.
    private func meshByPath(_ path: String) -> Decision {
        let rest = path.dropFirst()
        let end = rest.firstIndex(of: "/") ?? rest.endIndex
        let className = String(rest[..<end])
        guard !className.isEmpty else {
            return .invalid("name the class to call first: $BERTH_URL/CLASS/PATH, e.g. /ContainerB/receive (the path was \(path))")
        }
        if let meshClasses, !meshClasses.contains(className) {
            return .invalid("\(className) is not a class of this mesh (its classes: \(meshClasses.sorted().joined(separator: ", ")))")
        }
        let onward = rest[end...]
        return mesh(className, port: nil, path: onward.isEmpty ? "/" : String(onward))
    }

    private func mesh(_ className: String, port: Int?, path: String) -> Decision {
        if let allowed, !allowed.contains(className) {
            return .denied("\(caller)'s egress: [\(allowed.joined(separator: ", "))] does not list \(className)")
        }
        return .mesh(className: className, port: port, path: path)
    }

    func isMeshClass(_ host: String) -> Bool {
        if let meshClasses { return meshClasses.contains(host) }
        guard let first = host.unicodeScalars.first, first.properties.isAlphabetic else { return false }
        return !host.contains(".") && !host.contains(":") && host.lowercased() != "localhost"
    }

    /// `host`, `host:port`, `[v6]:port` → host and port; nil when the port is not one.
    static func split(_ authority: String) -> (String, Int?)? {
        var host = Substring(authority)
        var port: Int?
        if let colon = authority.lastIndex(of: ":"), !authority[colon...].contains("]") {
            guard let number = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(number) else { return nil }
            port = number
            host = authority[..<colon]
        }
        guard !host.isEmpty, !host.contains("@") else { return nil }
        return (String(host), port)
    }
}
