import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// Instances that die or hang under load: the edge's retries, outlier detection and stall rule keep the rest serving.
@Suite(.serialized)
struct FaultTests {
    @Test func anAppKilledUnderLoadWithItsSidecarAliveFailsNoRequest() async throws {
        try await withMesh { mesh in
            try await mesh.startInstances(3)
            let (during, failures) = try await mesh.load("/a/echo", method: .POST, connections: 16, for: .seconds(3)) {
                mesh.instance("a-1")?.app?.stop()
            }
            let total = during.values.reduce(0, +)
            let failed = total - (during[200] ?? 0)
            #expect(failed * 100 <= total, "\(failed) of \(total) failed: \(during) \(failures)")
            #expect(mesh.edge?.output.contains("instance set aside") == true, "the edge should set a-1 aside:\n\(mesh.edge?.output.suffix(2_000) ?? "")")

            let (after, _) = try await mesh.load("/a/echo", method: .POST, connections: 16, for: .seconds(2)) {}
            #expect(after.keys.sorted() == [200], "once a-1 is set aside: \(after)")
        }
    }

    /// One app of three is stopped (SIGSTOP) for 5 s: it holds the requests it has, and the others serve the rest.
    @Test func aHungAppHoldsOnlyItsOwnRequests() async throws {
        try await withMesh { mesh in
            try await mesh.startInstances(3)
            let (before, _) = try await mesh.load("/a/instance", connections: 16, for: .seconds(2)) {}
            let app = try #require(mesh.instance("a-2")?.app)
            let (during, failures) = try await mesh.load("/a/instance", connections: 16, for: .seconds(7)) {
                app.signal(SIGSTOP)
                try await Task.sleep(for: .seconds(5))
                app.signal(SIGCONT)
            }
            let served = { (statuses: [UInt: Int], seconds: Double) in Double(statuses[200] ?? 0) / seconds }
            #expect(during.keys.sorted() == [200], "\(during) \(failures)")
            #expect(served(during, 7) >= served(before, 2) / 2, "before \(before), during \(during)")
        }
    }
}
