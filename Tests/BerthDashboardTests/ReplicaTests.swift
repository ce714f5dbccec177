import BerthDashboard
import BerthTap
import BerthTestSupport
import Testing

/// Two publishers stand for two router replicas' events-out: both send the same bytes, as routers forward them.
@Suite(.timeLimit(.minutes(1)))
struct ReplicaTests {
    @Test func theLivePageShowsEachEventOnceAndGoesOnAfterReplicaZeroDies() async throws {
        let before = (0..<10).flatMap { demoTraffic($0) }
        let after = (10..<20).flatMap { demoTraffic($0) }
        let formatter = JSONEventFormatter()
        try await Publisher.with { replica1 in
            let (zeroEndpoint, zeroEndpointSink) = AsyncStream.makeStream(of: (String, Publisher).self)
            let (kill, killSink) = AsyncStream.makeStream(of: Void.self)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await Publisher.with { replica0 in
                        zeroEndpointSink.yield((await replica0.endpoint(), replica0))
                        for await _ in kill { break }
                    }
                }
                defer { group.cancelAll() }
                var zeros = zeroEndpoint.makeAsyncIterator()
                let (endpoint0, replica0) = try #require(await zeros.next())
                try await withDashboard(eventsOut: "\(endpoint0),\(await replica1.endpoint())") { port in
                    await replica0.waitForSubscriptions()
                    await replica1.waitForSubscriptions()
                    var stream = try await EventStreamReader.open(port: port)
                    replica0.publish(before)
                    replica1.publish(before)
                    var received: [String] = []
                    while received.count < before.count, let data = try await stream.nextEvent() { received.append(data) }
                    #expect(received == before.map(formatter.line))

                    killSink.finish()
                    try await group.next()
                    replica1.publish(after)
                    received = []
                    while received.count < after.count, let data = try await stream.nextEvent() { received.append(data) }
                    // No copy of `before` from replica 1 slipped in between: every event was shown once.
                    #expect(received == after.map(formatter.line))
                }
            }
        }
    }
}
