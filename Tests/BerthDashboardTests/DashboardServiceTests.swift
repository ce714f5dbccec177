import AsyncHTTPClient
import BerthDashboard
import BerthTap
import BerthWire
import Foundation
import BerthTestSupport
import Testing

@Suite(.timeLimit(.minutes(1)))
struct DashboardServiceTests {
    @Test func eventsStreamEveryEventAndStatsReflectThem() async throws {
        let events = demoLifecycle() + (0..<30).flatMap { demoTraffic($0) }
        try await Publisher.with { publisher in
            try await withDashboard(eventsOut: await publisher.endpoint()) { port in
                await publisher.waitForSubscriptions()
                var stream = try await EventStreamReader.open(port: port)
                #expect(stream.contentType == "text/event-stream")
                // The first message is the counters, sent as soon as the browser connects: it is registered by then.
                let initial = try #require(try await stream.nextStats())
                #expect(initial.containers.isEmpty)

                publisher.publish(events)
                var received: [String] = []
                while received.count < events.count, let data = try await stream.nextEvent() {
                    received.append(data)
                }
                let formatter = JSONEventFormatter()
                #expect(received == events.map(formatter.line))

                // A stats message sent after the last event counts all of them.
                var expected = TrafficStats()
                for case .traffic(let traffic) in events.map(\.event) { expected.record(traffic) }
                var latest = try #require(try await stream.nextStats())
                while latest.events < UInt64(events.count) {
                    latest = try #require(try await stream.nextStats())
                }
                let fromEndpoint = try await stats(port)
                for snapshot in [latest, fromEndpoint] {
                    #expect(snapshot.events == UInt64(events.count))
                    #expect(snapshot.trafficEvents == 120)
                    #expect(snapshot.containers.map { "\($0.className)/\($0.instanceID)" } == [
                        "ContainerA/a-0", "ContainerA/a-1", "ContainerA/a-2",
                        "ContainerB/b-0", "ContainerB/b-1", "ContainerB/b-2", "edge/edge",
                    ])
                    for container in snapshot.containers {
                        let row = try #require(expected.containers[ContainerName(className: container.className, instanceID: container.instanceID)])
                        #expect(container.sent == row.sent)
                        #expect(container.received == row.received)
                        #expect(container.bytesOut == row.bytesOut)
                        #expect(container.bytesIn == row.bytesIn)
                        #expect(container.errors == row.errors)
                        #expect(container.p50Microseconds == row.latency.percentile(0.5))
                        #expect(container.p99Microseconds == row.latency.percentile(0.99))
                    }
                    let a0 = try #require(snapshot.containers.first)
                    #expect(a0.state == "healthy")
                    #expect(a0.port == 8080)
                    #expect(a0.received == 10)
                    let edge = try #require(snapshot.containers.last)
                    #expect(edge.sent == 60)
                    #expect(edge.state == nil)
                }
            }
        }
    }

    @Test func lifecycleChangesShowInTheStats() async throws {
        try await Publisher.with { publisher in
            try await withDashboard(eventsOut: await publisher.endpoint()) { port in
                await publisher.waitForSubscriptions()
                var stream = try await EventStreamReader.open(port: port)
                _ = try await stream.nextStats()
                for state in [LifecycleState.starting, .healthy, .sleeping, .exited] {
                    publisher.publish(lifecycle("ContainerA", "a-1", port: 8080, state))
                    _ = try await stream.nextEvent()
                    let snapshot = try await stats(port)
                    #expect(snapshot.containers.map(\.state) == [Names.lifecycleState(state)])
                }
            }
        }
    }

    @Test func aClientThatDisconnectsDoesNotBreakTheOthers() async throws {
        try await Publisher.with { publisher in
            try await withDashboard(eventsOut: await publisher.endpoint()) { port in
                await publisher.waitForSubscriptions()
                var staying = try await EventStreamReader.open(port: port)
                _ = try await staying.nextStats()

                // A second browser reads the first batch, then goes away.
                let first = (0..<5).flatMap { demoTraffic($0) }
                let leaving = Task {
                    var stream = try await EventStreamReader.open(port: port)
                    _ = try await stream.nextStats()
                    publisher.publish(first)
                    var seen = 0
                    while seen < first.count, try await stream.nextEvent() != nil { seen += 1 }
                    return seen
                }
                #expect(try await leaving.value == first.count)
                for _ in first { _ = try await staying.nextEvent() }

                // Its connection is closed once the task that read it has ended; the dashboard notices and forgets it.
                try await eventually { try await health(port).clients == 1 }

                let second = (5..<10).flatMap { demoTraffic($0) }
                publisher.publish(second)
                var received: [String] = []
                while received.count < second.count, let data = try await staying.nextEvent() { received.append(data) }
                #expect(received == second.map(JSONEventFormatter().line))

                // A browser that connects now is sent the recent traffic first; one that reconnects, only what it missed.
                var late = try await EventStreamReader.open(port: port)
                var replayed: [String] = []
                while replayed.count < first.count + second.count, let data = try await late.nextEvent() { replayed.append(data) }
                #expect(replayed == (first + second).map(JSONEventFormatter().line))
                var resumed = try await EventStreamReader.open(port: port, path: "/events?after=\(first.count)")
                var missed: [String] = []
                while missed.count < second.count, let data = try await resumed.nextEvent() { missed.append(data) }
                #expect(missed == second.map(JSONEventFormatter().line))
                // The page comes with the recent traffic and the id of the last event in it.
                let page = try await request(port, "/").body
                #expect(page.contains(#""last_id":\#(first.count + second.count),"#))
                #expect(page.contains(JSONEventFormatter().line(second.last!).replacingOccurrences(of: "</", with: "<\\/")))
            }
        }
    }

    @Test func aSlowClientLosesEventsWhileOthersGetEveryOne() async throws {
        try await Publisher.with { publisher in
            try await withDashboard(eventsOut: await publisher.endpoint(), configure: { $0.clientBufferLimit = 32 }) { port in
                await publisher.waitForSubscriptions()
                var fast = try await EventStreamReader.open(port: port)
                _ = try await fast.nextStats()
                // Connects, asks for /events, and never reads a byte.
                let stalled = try StalledClient(port: port, path: "/events")
                defer { stalled.close() }
                try await eventually { try await health(port).clients == 2 }

                // Big events fill the stalled client's socket buffers quickly; then its own buffer fills and the
                // dashboard drops for it alone. The fast client reads each batch before the next is published.
                let bulk = String(repeating: "x", count: 8_192)
                var index = 0
                var batches = 0
                repeat {
                    let batch = (0..<8).map { _ in
                        defer { index += 1 }
                        return TappedEvent(topic: "log.ContainerA.a-0", event: .log(LogLine(
                            timeMicroseconds: UInt64(index), container: .init(className: "ContainerA", instanceID: "a-0", port: 8080),
                            stream: .stdout, line: "\(index) \(bulk)"
                        )))
                    }
                    publisher.publish(batch)
                    for event in batch {
                        let data = try #require(try await fast.nextEvent())
                        #expect(data == JSONEventFormatter().line(event))
                    }
                    batches += 1
                } while try await health(port).dropped == 0 && batches < 2_000
                #expect(try await health(port).dropped > 0)
            }
        }
    }

    @Test func gracefulShutdownEndsTheEventStreams() async throws {
        try await Publisher.with { publisher in
            var stream: EventStreamReader?
            try await withDashboard(eventsOut: await publisher.endpoint()) { port in
                var opened = try await EventStreamReader.open(port: port)
                _ = try await opened.nextStats()
                stream = opened
            }
            // withDashboard returned: the service stopped although a browser was still connected, and its stream ended.
            var ended = try #require(stream)
            while try await ended.next() != nil {}
        }
    }

    @Test func healthAndThePage() async throws {
        try await Publisher.with { publisher in
            try await withDashboard(eventsOut: await publisher.endpoint(), configure: { $0.edge = "http://127.0.0.1:9/</script>" }) { port in
                let health = try await health(port)
                #expect(health.status == "ok")
                #expect(health.clients == 0)

                let (status, headers, page) = try await request(port, "/")
                #expect(status == 200)
                #expect(headers["content-type"] == "text/html; charset=utf-8")
                for part in ["Network Log", "Sent", "Bytes Out", "Received", "Bytes In", "new EventSource(\"events?after=\""] {
                    #expect(page.contains(part))
                }
                // The edge URL is in the page as a JavaScript string that cannot end the script early.
                #expect(page.contains(#"const CONFIG = {"edge":"http://127.0.0.1:9/<\/script>","last_id":0,"stats":{"containers":[],"#))
                // Nothing is loaded from elsewhere: the machine may be offline.
                for reference in ["src=\"http", "href=\"http", "@import", "url("] {
                    #expect(!page.contains(reference))
                }
                #expect(try await request(port, "/nothing-here").status == 404)
            }
        }
    }
}
