@testable import BerthBus
import Foundation
import Testing

/// The publishing end of the event stream against a real XSUB standing in for the router's events-in.
struct EventPublisherTests {
    /// Lets the publisher hear its subscriptions and collects what reaches the router, until `count` events came
    /// (or 5 s passed): the payloads, in order. libzmq processes a socket's commands (a peer to attach, and so the
    /// subscriptions to send it) only when the socket is called, so both are called in turn.
    static func exchange(_ publisher: EventPublisher, _ router: Socket, expecting count: Int) throws -> [String] {
        var got: [String] = []
        let deadline = ContinuousClock.now + .seconds(5)
        while got.count < count && ContinuousClock.now < deadline {
            while let frames = try publisher.socket.receive() { publisher.received(frames) }
            while let frames = try router.receive() { got.append(String(decoding: frames[1].bytes, as: UTF8.self)) }
            if got.count < count { usleep(1_000) } // both sockets are polled here, on this one thread
        }
        return got
    }

    static func router() throws -> (Socket, String) {
        let endpoint = BusTests.endpoint()
        let router = try Socket(.xsub)
        try router.bind(endpoint)
        return (router, endpoint)
    }

    static func subscribe(_ router: Socket, _ prefix: String) throws {
        try router.send([Frame([1] + Array(prefix.utf8))])
    }

    /// Today's router: a publisher hears a subscription only once someone subscribes. What it published before is
    /// kept, and sent, in order, when a subscription for it arrives.
    @Test func eventsPublishedBeforeAnySubscriptionReachTheSubscriberThatComesInOrder() throws {
        let (router, endpoint) = try Self.router()
        let publisher = try EventPublisher(connectingTo: endpoint)
        publisher.publish(topic: "lifecycle.A.a-0") { Array("starting".utf8) }
        publisher.publish(topic: "traffic.A.a-0") { Array("request".utf8) }
        publisher.publish(topic: "lifecycle.A.a-0") { Array("healthy".utf8) }
        try Self.subscribe(router, "lifecycle.")
        #expect(try Self.exchange(publisher, router, expecting: 2) == ["starting", "healthy"])
        try Self.subscribe(router, "")
        publisher.publish(topic: "log.A.a-0") { Array("line".utf8) }
        #expect(try Self.exchange(publisher, router, expecting: 2) == ["request", "line"])
    }

    /// A router whose events-in subscribes to everything itself: the publisher sends what it kept as soon as it
    /// is connected.
    @Test func aRouterThatSubscribesToEverythingGetsTheFirstEventsOnceConnected() throws {
        let (router, endpoint) = try Self.router()
        try Self.subscribe(router, "")
        let publisher = try EventPublisher(connectingTo: endpoint)
        for index in 0..<100 { publisher.publish(topic: "lifecycle.A.a-\(index)") { Array("\(index)".utf8) } }
        #expect(try Self.exchange(publisher, router, expecting: 100) == (0..<100).map(String.init))
    }

    /// After the startup window, an event nobody subscribes to is neither kept nor encoded.
    @Test func afterTheStartupWindowUnwantedEventsAreNotKept() throws {
        let (router, endpoint) = try Self.router()
        let publisher = try EventPublisher(connectingTo: endpoint, startupWindow: .zero)
        var encoded = 0
        publisher.publish(topic: "lifecycle.A.a-0") {
            encoded += 1
            return Array("unwanted".utf8)
        }
        try Self.subscribe(router, "")
        let deadline = ContinuousClock.now + .seconds(5)
        while !publisher.wants("lifecycle.A.a-0") && ContinuousClock.now < deadline {
            // The XSUB attaches a new peer, and sends it the subscription, only when called: a receive does it.
            #expect(try router.receive() == nil)
            while let frames = try publisher.socket.receive() { publisher.received(frames) }
            usleep(1_000)
        }
        publisher.publish(topic: "lifecycle.A.a-0") { Array("wanted".utf8) }
        #expect(try Self.exchange(publisher, router, expecting: 1) == ["wanted"])
        #expect(encoded == 0)
    }
}
