import BerthProcess
import Testing

@testable import BerthSidecar

import Glibc

/// The app's own network namespace: its messages, and a listener made in it, reached from the app's side and not
/// from the host's. Namespaces need root.
struct AppNetworkTests {
    @Test func aRefusedNamespaceSaysWhichCallFailedAndWhatTheSidecarNeeds() {
        let refused = AppNetworkError(call: "unshare(CLONE_NEWNET)", errorNumber: EPERM)
        #expect(refused.description == "unshare(CLONE_NEWNET) failed: Operation not permitted (the sidecar needs root or CAP_SYS_ADMIN for --network-namespace)")
        let joining = AppNetworkError(call: "setns(CLONE_NEWNET)", errorNumber: EPERM)
        #expect(joining.description.hasSuffix("(the sidecar needs root or CAP_SYS_ADMIN for --network-namespace)"))
        // Other failures say what failed and nothing about privileges.
        let taken = AppNetworkError(call: "bind(127.0.0.1:15001)", errorNumber: EADDRINUSE)
        #expect(taken.description == "bind(127.0.0.1:15001) failed: Address already in use")
    }

    @Test func anAppStartedInTheNamespaceFailsWithTheCallNamedWhenItCannotJoin() {
        var spec = ProcessSpec(command: ["/bin/true"])
        // A descriptor that is not a namespace: setns refuses it in the child, before exec.
        let notANamespace = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(notANamespace) }
        spec.networkNamespace = notANamespace
        #expect {
            _ = try ChildProcess(spec)
        } throws: { error in
            guard let error = error as? SpawnError else { return false }
            return error.joiningNetworkNamespace && error.description == "cannot start /bin/true: setns(CLONE_NEWNET) into its network namespace failed: Invalid argument"
        }
    }

    @Test(.enabled(if: geteuid() == 0, "network namespaces need root"))
    func aListenerInTheAppsNamespaceIsReachedFromThereAndNotFromTheHost() async throws {
        let network = try AppNetwork.isolated()
        let listener = try network.listenTCP(port: 0)
        defer { close(listener) }
        let port = try AppNetwork.localPort(of: listener)

        // From the host's namespace, where the sidecar is: nothing listens on that port.
        let fromHost = try AppNetwork.host.socket(family: AF_INET, type: Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        defer { close(fromHost) }
        #expect(Self.connect(fromHost, port: port) == ECONNREFUSED)

        // From the app's namespace, as the sidecar's sockets towards the app are made: the listener takes it.
        let fromApp = try network.socket(family: AF_INET, type: Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        defer { close(fromApp) }
        #expect(Self.connect(fromApp, port: port) == 0)
        #expect(Self.acceptOne(listener))

        // From the app itself: a process started in the namespace connects to it on 127.0.0.1, and says where it is.
        var spec = ProcessSpec(command: ["python3", "-c", """
            import os, socket
            print(os.readlink("/proc/self/ns/net"), flush=True)
            socket.create_connection(("127.0.0.1", \(port)), timeout=5)
            """])
        spec.networkNamespace = network.processNamespace
        let app = try ChildProcess(spec)
        var lines: [String] = []
        for await line in app.output { lines.append(line.text) }
        let status = await app.wait()
        #expect(status == .exited(0), "the app could not connect to 127.0.0.1:\(port) in its namespace: \(lines)")
        #expect(Self.acceptOne(listener))
        #expect(lines.first.map { $0.hasPrefix("net:[") } == true, "\(lines)")
        #expect(try lines.first != Self.namespace("/proc/self/ns/net"), "the app is in a namespace of its own")
    }

    @Test(.enabled(if: geteuid() == 0, "network namespaces need root"))
    func theCallingThreadIsBackInItsOwnNamespaceAfterASocket() throws {
        let network = try AppNetwork.isolated()
        let before = try Self.namespace("/proc/thread-self/ns/net")
        let fd = try network.socket(family: AF_INET, type: Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        close(fd)
        #expect(try Self.namespace("/proc/thread-self/ns/net") == before)
    }

    @Test(.enabled(if: geteuid() == 0, "network namespaces need root"))
    func twoNamespacesEachHaveTheSamePortFree() throws {
        let first = try AppNetwork.isolated()
        let second = try AppNetwork.isolated()
        let one = try first.listenTCP(port: 0)
        defer { close(one) }
        let two = try second.listenTCP(port: AppNetwork.localPort(of: one))
        close(two)
        #expect(throws: AppNetworkError.self) {
            let again = try first.listenTCP(port: AppNetwork.localPort(of: one))
            close(again)
        }
    }

    /// connect(2) to 127.0.0.1:port on a blocking socket: 0 or the errno.
    static func connect(_ fd: Int32, port: Int) -> Int32 {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: UInt32(INADDR_LOOPBACK).bigEndian)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0 ? 0 : errno
    }

    /// Whether a connection is waiting on the (non-blocking) listener; it is accepted and closed.
    static func acceptOne(_ listener: Int32) -> Bool {
        var poll = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, 5_000) == 1 else { return false }
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { return false }
        close(connection)
        return true
    }

    /// What a /proc ns link names: `net:[4026531840]`.
    static func namespace(_ path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { throw AppNetworkError(call: "readlink(\(path))", errorNumber: errno) }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
