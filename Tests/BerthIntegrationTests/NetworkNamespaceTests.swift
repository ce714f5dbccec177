import Foundation
import Testing

import Glibc

/// `berth-sidecar --network-namespace`: the app lives in a network namespace of its own, the sidecar in the
/// host's, where routers and edges on this machine or another reach it. Namespaces need root.
@Suite(.enabled(if: geteuid() == 0, "network namespaces need root"))
struct NetworkNamespaceTests {
    @Test func twoInstancesServeOnOnePortEachInItsOwnNamespaceWithTheSidecarsInTheHosts() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            let port = freePort()
            for id in ["a-0", "a-1"] {
                try mesh.addInstance(className: "ContainerA", id: id, owned: true, port: port, sidecarArguments: ["--network-namespace"])
            }
            try mesh.startEdge(routes: ["/a/=ContainerA"])
            for id in ["a-0", "a-1"] {
                let answered = try await mesh.waitUntil("/a/instance", timeout: .seconds(30)) { _, body in body == id }
                #expect(answered, "\(id) never answered through the edge:\n\(mesh.logs)")
            }

            // Both apps listen on `port`, but not in the host's namespace: nothing there answers on it.
            #expect(Self.connectError(port: port) == ECONNREFUSED, "an app is reachable from the host's namespace on \(port)")

            let own = try Self.namespace(of: getpid())
            var appNamespaces: [String] = []
            for id in ["a-0", "a-1"] {
                let sidecar = try #require(mesh.instance(id)?.sidecar)
                #expect(try Self.namespace(of: sidecar.pid) == own, "the sidecar \(id) is in the host's namespace")
                let apps = Self.children(of: sidecar.pid)
                #expect(apps.count == 1, "the sidecar \(id) has one app: \(apps)")
                for app in apps { appNamespaces.append(try Self.namespace(of: app)) }
            }
            #expect(appNamespaces.count == 2 && !appNamespaces.contains(own), "the apps are not in the host's namespace: \(appNamespaces), \(own)")
            #expect(Set(appNamespaces).count == appNamespaces.count, "each app has a namespace of its own: \(appNamespaces)")
        }
    }

    @Test func theOptionNeedsAnAppToStart() async throws {
        let sidecar = try ChildProcess(name: "sidecar-no-app", executable: Paths.executable("berth-sidecar"), arguments: ["--network-namespace"])
        let status = await sidecar.waitForExit(timeout: .seconds(30))
        #expect(status != nil && status != 0)
        #expect(sidecar.output.contains("--network-namespace is for an app the sidecar starts"), "\(sidecar.output)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "setpriv(1) is not installed"))
    func withoutPrivilegeTheSidecarSaysWhichCallFailedAndWhatItNeeds() async throws {
        // As nobody, with no capabilities: unshare(CLONE_NEWNET) is refused.
        let sidecar = try ChildProcess(name: "sidecar-unprivileged", executable: URL(fileURLWithPath: "/usr/bin/setpriv"), arguments: [
            "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
            Paths.executable("berth-sidecar").path, "--network-namespace", "--router", "tcp://127.0.0.1:\(freePort())", "--", "/bin/true",
        ])
        let status = await sidecar.waitForExit(timeout: .seconds(30))
        #expect(status != nil && status != 0)
        #expect(sidecar.output.contains(
            "unshare(CLONE_NEWNET) failed: Operation not permitted (the sidecar needs root or CAP_SYS_ADMIN for --network-namespace)"
        ), "\(sidecar.output)")
    }

    /// connect(2) to 127.0.0.1:port from this process's namespace: 0 or the errno.
    static func connectError(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: UInt32(INADDR_LOOPBACK).bigEndian)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0 ? 0 : errno
    }

    /// `net:[4026531840]`: which network namespace a process is in.
    static func namespace(of pid: pid_t) throws -> String {
        try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")
    }

    /// The children of `pid`, from each of its threads' `children` file (the sidecar forks from one thread).
    static func children(of pid: pid_t) -> [pid_t] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { task -> [pid_t] in
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }
}
