import Foundation

import Glibc
import Testing

/// `--io-scheduling`, read back from the kernel: the policy of each libzmq I/O thread of a real `berth-router`.
struct IOSchedulingTests {
    static let schedOther = 0
    static let schedBatch = 3
    static let schedFIFO = 1

    /// The scheduling policy of each of the process's libzmq I/O threads, waiting up to 5 s for the first to start.
    static func ioThreadPolicies(of pid: Int32) async throws -> [Int] {
        for _ in 0..<250 {
            var policies: [Int] = []
            for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
                guard let name = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8),
                      name.hasPrefix("ZMQbg/IO/"),
                      let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
                      let afterName = stat.lastIndex(of: ")")
                else { continue }
                // Fields after the command name: state is field 3, the policy field 41.
                let fields = stat[stat.index(after: afterName)...].split(separator: " ")
                if fields.count > 38, let policy = Int(fields[38]) { policies.append(policy) }
            }
            if !policies.isEmpty { return policies }
            try await Task.sleep(for: .milliseconds(20))
        }
        return []
    }

    /// `berth-router` with `arguments`, run through `wrapper` (`chrt -f 10`, say) when one is given.
    static func router(_ arguments: [String], under wrapper: [String] = []) throws -> ChildProcess {
        func endpoint() -> String { "tcp://127.0.0.1:\(freePort())" }
        let router = [Paths.executable("berth-router").path,
                      "--frontend", endpoint(), "--backend", endpoint(), "--events-in", endpoint(), "--events-out", endpoint()] + arguments
        let command = wrapper + router
        return try ChildProcess(name: "router", executable: URL(fileURLWithPath: command[0]), arguments: Array(command.dropFirst()))
    }

    /// Batch by default; `normal` leaves the threads as the system schedules them.
    @Test(arguments: [([], schedBatch), (["--io-scheduling", "batch"], schedBatch), (["--io-scheduling", "normal"], schedOther)])
    func theIOThreadsRunWithThePolicyAskedFor(arguments: [String], policy: Int) async throws {
        let router = try Self.router(arguments)
        defer { router.stop() }
        let policies = try await Self.ioThreadPolicies(of: router.pid)
        #expect(!policies.isEmpty, "no ZMQbg/IO thread in berth-router: \(router.output)")
        #expect(policies.allSatisfy { $0 == policy }, "policies \(policies)")
    }

    /// libzmq aborts a process whose I/O thread cannot take the policy; under a real-time policy (root only) Berth
    /// leaves the threads as they are, says so, and runs.
    @Test(.enabled(if: getuid() == 0, "chrt -f needs root"))
    func underARealTimePolicyTheIOThreadsKeepItAndTheRouterRuns() async throws {
        let router = try Self.router([], under: ["/usr/bin/chrt", "-f", "10"])
        defer { router.stop() }
        // A named I/O thread is past the point where libzmq would have aborted: it takes its policy before its name.
        let policies = try await Self.ioThreadPolicies(of: router.pid)
        #expect(!policies.isEmpty, "no ZMQbg/IO thread in berth-router: \(router.output)")
        #expect(policies.allSatisfy { $0 == Self.schedFIFO }, "policies \(policies)")
        #expect(router.isRunning, "\(router.output)")
        #expect(router.output.contains("scheduling policy 1"), "\(router.output)")
    }

    @Test func anUnknownPolicyIsRefusedWithTheChoices() async throws {
        let router = try Self.router(["--io-scheduling", "fast"])
        defer { router.stop() }
        let status = await router.waitForExit(timeout: .seconds(10))
        #expect(status != nil && status != 0)
        #expect(router.output.contains("batch") && router.output.contains("normal"), "\(router.output)")
    }
}
