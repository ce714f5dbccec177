import AsyncHTTPClient
import NIOHTTP1
import Testing

/// The sidecar's connections to its app, as the app sees them.
@Suite(.serialized)
struct AppConnectionTests {
    /// An app that writes its answer's head and body in two writes (Python's http.server, and many others) has
    /// Nagle's algorithm hold the body until the head is acknowledged. On a kept-alive connection Linux delays that
    /// ACK by at least 40 ms (TCP_ATO_MIN), so the sidecar must acknowledge at once. The app measures the wait itself;
    /// 40 ms is the kernel's constant for a delayed ACK, not a speed target (bench/two_writes.sh has the timings).
    @Test func theSidecarAcknowledgesAnAnswersHeadAtOnceOnAKeptAliveConnection() async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance()
            var waits: [Int] = []
            for _ in 0..<21 {
                let (response, body) = try await mesh.get("/a/acked")
                #expect(response.status == .ok)
                waits.append(try #require(Int(body), "the app's answer: \(body)"))
            }
            waits = Array(waits.dropFirst()).sorted()  // the first exchange opened the connection: quick ACKs anyway
            let kernelDelayedACK = 40_000
            #expect(waits[waits.count / 2] < kernelDelayedACK, "µs the app waited for the ACK of its head: \(waits)")
        }
    }
}
