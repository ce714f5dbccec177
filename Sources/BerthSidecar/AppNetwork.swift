import CBerthNetns

import Glibc

/// A system call that failed while the sidecar set up or used its app's network, with the call's name.
public struct AppNetworkError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The call that failed, as the message names it: `unshare(CLONE_NEWNET)`, `setns(CLONE_NEWNET)`, `bind`.
    public var call: String
    public var errorNumber: Int32

    public init(call: String, errorNumber: Int32) {
        self.call = call
        self.errorNumber = errorNumber
    }

    public var description: String {
        let text = "\(call) failed: \(String(cString: strerror(errorNumber)))"
        let needsPrivilege = (errorNumber == EPERM || errorNumber == EACCES)
            && (call.hasPrefix("unshare") || call.hasPrefix("setns") || call.contains("SIOCSIFFLAGS"))
        return needsPrivilege ? text + " (the sidecar needs root or CAP_SYS_ADMIN for --network-namespace)" : text
    }
}

/// The network the app lives in: the sidecar's own, or a network namespace of its own (Linux).
///
/// With a namespace, the sidecar itself stays in the host's namespace (where routers and edges, on this machine or
/// another, reach it) and only the app and the sockets the sidecar opens towards the app live in the app's: every
/// instance of a class listens on the configured port, as containers do. A socket belongs to the namespace of the
/// thread that created it, so every socket towards the app is made by `socket(family:type:)` here, and the app is
/// started with `processNamespace` (`ProcessSpec.networkNamespace`). The namespace lives as long as this value.
public final class AppNetwork: Sendable {
    private let descriptors: (app: Int32, host: Int32)?

    /// The sidecar's own network: sockets and the app are plain.
    public static let host = AppNetwork(descriptors: nil)

    private init(descriptors: (app: Int32, host: Int32)?) {
        self.descriptors = descriptors
    }

    /// A fresh network namespace with its loopback up. Needs root or CAP_SYS_ADMIN.
    public static func isolated() throws(AppNetworkError) -> AppNetwork {
        var app: Int32 = -1
        var host: Int32 = -1
        var call: UnsafePointer<CChar>?
        guard berth_netns_create(&app, &host, &call) == 0 else { throw Self.error(call) }
        return AppNetwork(descriptors: (app, host))
    }

    deinit {
        if let descriptors {
            close(descriptors.app)
            close(descriptors.host)
        }
    }

    /// Whether the app has a namespace of its own.
    public var isIsolated: Bool { descriptors != nil }

    /// The descriptor of the app's namespace for `ProcessSpec.networkNamespace`; nil for the host's network.
    public var processNamespace: Int32? { descriptors?.app }

    /// `socket(family, type, 0)` in the app's network. The type takes SOCK_NONBLOCK and SOCK_CLOEXEC as usual.
    public func socket(family: Int32, type: Int32) throws(AppNetworkError) -> Int32 {
        guard let descriptors else {
            let fd = Glibc.socket(family, type, 0)
            guard fd >= 0 else { throw AppNetworkError(call: "socket", errorNumber: errno) }
            return fd
        }
        var call: UnsafePointer<CChar>?
        let fd = berth_netns_socket(descriptors.app, descriptors.host, family, type, 0, &call)
        guard fd >= 0 else { throw Self.error(call) }
        return fd
    }

    /// A non-blocking, close-on-exec TCP socket listening on `127.0.0.1:port` in the app's network, with
    /// SO_REUSEADDR: what the app connects to there reaches it, and nothing in the host's network does. Port 0 lets
    /// the OS choose (see `localPort(of:)`). The caller owns the descriptor.
    public func listenTCP(port: Int, backlog: Int32 = 128) throws(AppNetworkError) -> Int32 {
        let fd = try socket(family: AF_INET, type: Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        address.sin_addr = in_addr(s_addr: UInt32(INADDR_LOOPBACK).bigEndian)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw Self.closing(fd, call: "bind(127.0.0.1:\(port))") }
        guard listen(fd, backlog) == 0 else { throw Self.closing(fd, call: "listen") }
        return fd
    }

    /// The port a listening socket got.
    public static func localPort(of fd: Int32) throws(AppNetworkError) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { throw AppNetworkError(call: "getsockname", errorNumber: errno) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func error(_ call: UnsafePointer<CChar>?) -> AppNetworkError {
        AppNetworkError(call: call.map { String(cString: $0) } ?? "(unknown call)", errorNumber: errno)
    }

    private static func closing(_ fd: Int32, call: String) -> AppNetworkError {
        let error = AppNetworkError(call: call, errorNumber: errno)
        close(fd)
        return error
    }
}
