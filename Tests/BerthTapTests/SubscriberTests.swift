import BerthBus
import BerthTap
import BerthWire
import Logging
import BerthTestSupport
import Testing

@Suite(.timeLimit(.minutes(1)))
struct SubscriberTests {
    let logger = Logger(label: "berth.tap.test")

    @Test func receivesEveryEventInOrder() async throws {
        let sent = (0..<200).map { sampleEvent($0) }
        let received = try await Publisher.with { publisher in
            let tap = TapSubscriber(configuration: TapConfiguration(endpoint: await publisher.endpoint()), logger: logger)
            return try await tap.withEvents { items in
                await publisher.waitForSubscriptions([""])
                for event in sent { publisher.publish(event) }
                return try await collect(items, count: sent.count)
            }
        }
        #expect(received == sent.map(TapItem.event))
    }

    @Test func subscribesOnlyToTheGivenPrefixes() async throws {
        let all = [
            TappedEvent(topic: "traffic.ContainerB.b-0", event: sampleEvent(0).event),
            TappedEvent(topic: "traffic.ContainerA.a-0", event: sampleEvent(1).event),
            TappedEvent(topic: "log.ContainerA.a-0", event: sampleEvent(2).event),
            TappedEvent(topic: "lifecycle.ContainerA.a-1", event: sampleEvent(3).event),
            TappedEvent(topic: "traffic.edge.main", event: sampleEvent(4).event),
            TappedEvent(topic: "traffic.ContainerA.a-2", event: sampleEvent(5).event),
            TappedEvent(topic: "traffic.ContainerAB.x", event: sampleEvent(6).event),
        ]
        let last = TappedEvent(topic: "lifecycle.end", event: sampleEvent(7).event)
        let topics = ["traffic.ContainerA.", "lifecycle."]
        let expected = all.filter { event in topics.contains { event.topic.hasPrefix($0) } } + [last]
        #expect(expected.count == 4)

        let received = try await Publisher.with { publisher in
            let configuration = TapConfiguration(endpoint: await publisher.endpoint(), topics: topics)
            let tap = TapSubscriber(configuration: configuration, logger: logger)
            return try await tap.withEvents { items in
                await publisher.waitForSubscriptions(Set(topics))
                for event in all + [last] { publisher.publish(event) }
                // Everything published before `last` has arrived, or been filtered out, once `last` is here.
                var received: [TapItem] = []
                for try await item in items {
                    received.append(item)
                    if item == .event(last) { break }
                }
                return received
            }
        }
        #expect(received == expected.map(TapItem.event))
    }

    @Test func malformedMessagesAreCountedAndTheStreamGoesOn() async throws {
        let good = sampleEvent(1)
        let encoded = good.event.encoded()
        // Event.log (field 3) holding LogLine.line (field 4) with the bytes C3 28, which are not UTF-8.
        let invalidUTF8Event: [UInt8] = [0x1A, 0x04, 0x22, 0x02, 0xC3, 0x28]
        let messages: [[Frame]] = [
            [Frame("traffic.A.a-0")],
            [Frame("traffic.A.a-0"), Frame([0xFF, 0xFF, 0xFF])],
            [Frame("traffic.A.a-0"), Frame(encoded), Frame("extra")],
            [Frame([0x74, 0xC3, 0x28]), Frame(encoded)],
            [Frame("log.A.a-0"), Frame(invalidUTF8Event)],
            [Frame("traffic.A.a-0"), Frame([])],
            [Frame(good.topic), Frame(encoded)],
        ]
        let received = try await Publisher.with { publisher in
            let tap = TapSubscriber(configuration: TapConfiguration(endpoint: await publisher.endpoint()), logger: logger)
            return try await tap.withEvents { items in
                await publisher.waitForSubscriptions([""])
                for message in messages { publisher.send(message) }
                return try await collect(items, count: messages.count)
            }
        }
        try #require(received.count == 7)
        #expect(received[6] == .event(good))

        let warnings = received.prefix(6).compactMap { item -> MalformedEvent? in
            if case .malformed(let warning) = item { warning } else { nil }
        }
        try #require(warnings.count == 6)
        #expect(warnings.map(\.count) == [1, 2, 3, 4, 5, 6])
        #expect(warnings[0].code == .wrongFrameCount(1))
        #expect(warnings[0].topic == "traffic.A.a-0")
        #expect(warnings[2].code == .wrongFrameCount(3))
        #expect(warnings[3].code == .invalidTopic)
        #expect(warnings[3].topic == nil)
        for (index, code) in [(1, WireError.Code.malformed), (4, .invalidValue), (5, .empty)] {
            guard case .undecodable(let error) = warnings[index].code else {
                Issue.record("warning \(index) is \(warnings[index].code), not undecodable")
                continue
            }
            #expect(error.code == code)
        }
        #expect("\(warnings[1])".contains("on topic \"traffic.A.a-0\""))
    }

    @Test func aBadEndpointIsThrownByTheSequence() async throws {
        let tap = TapSubscriber(configuration: TapConfiguration(endpoint: "nonsense://here"), logger: logger)
        await #expect(throws: BusError.self) {
            try await tap.withEvents { items in
                for try await _ in items {}
            }
        }
    }

    @Test func cancellingTheTaskEndsTheSequence() async throws {
        try await Publisher.with { publisher in
            let endpoint = await publisher.endpoint()
            let logger = logger
            let reader = Task {
                let tap = TapSubscriber(configuration: TapConfiguration(endpoint: endpoint), logger: logger)
                return try await tap.withEvents { items in
                    var count = 0
                    for try await _ in items { count += 1 }
                    return count
                }
            }
            await publisher.waitForSubscriptions([""])
            reader.cancel()
            // Returns only if the subscription's thread stopped and the sequence ended.
            let seen = try await reader.value
            #expect(seen == 0)
        }
    }

    /// The first `count` items, in order.
    private func collect(_ items: AsyncThrowingStream<TapItem, any Error>, count: Int) async throws -> [TapItem] {
        var received: [TapItem] = []
        for try await item in items {
            received.append(item)
            if received.count == count { break }
        }
        return received
    }
}

/// A different event for every `index`: traffic, lifecycle and log in turn.
func sampleEvent(_ index: Int) -> TappedEvent {
    let container = Endpoint(className: "ContainerA", instanceID: "a-\(index % 3)", port: 8080)
    let time = 1_735_787_045_678_901 + UInt64(index) * 1_000
    switch index % 3 {
    case 0:
        return TappedEvent(
            topic: "traffic.ContainerA.\(container.instanceID)",
            event: .traffic(TrafficEvent(
                timeMicroseconds: time, requestID: UInt64(index), traceID: "trace-\(index)",
                source: Endpoint(className: "edge", instanceID: "main"), destination: container,
                method: "GET", path: "/a/\(index)", status: 200, bytesIn: UInt64(index), bytesOut: UInt64(index * 10),
                latencyMicroseconds: UInt64(100 + index), kind: .sidecar
            ))
        )
    case 1:
        return TappedEvent(
            topic: "lifecycle.ContainerA.\(container.instanceID)",
            event: .lifecycle(LifecycleEvent(timeMicroseconds: time, container: container, state: .healthy, pid: UInt32(1_000 + index)))
        )
    default:
        return TappedEvent(
            topic: "log.ContainerA.\(container.instanceID)",
            event: .log(LogLine(timeMicroseconds: time, container: container, stream: .stderr, line: "line \(index)"))
        )
    }
}
