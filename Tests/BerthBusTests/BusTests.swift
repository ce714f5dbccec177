@testable import BerthBus
import Foundation
import Synchronization
import Testing

/// The bus over real libzmq sockets on loopback.
struct BusTests {
    /// A loop body that binds one socket and hands every message it gets to the test.
    final class Collector: BusLoopBody {
        let sockets: [Socket]
        let received: @Sendable ([[UInt8]]) -> Void
        let failed: @Sendable (BusError) -> Void

        init(_ type: SocketType, bind endpoint: String, options: SocketOptions = SocketOptions(),
             received: @escaping @Sendable ([[UInt8]]) -> Void, failed: @escaping @Sendable (BusError) -> Void = { _ in }) throws {
            let socket = try Socket(type, options: options)
            try socket.bind(endpoint)
            sockets = [socket]
            self.received = received
            self.failed = failed
        }

        func received(_ frames: [Frame], on index: Int) { received(frames.map(\.bytes)) }
        func receiveFailed(_ error: BusError, on index: Int) { failed(error) }
    }

    static func endpoint() -> String { "ipc:///tmp/berth-bus-test-\(UUID().uuidString).ipc" }

    /// Linking the bus sets nothing process-wide: a user's Worker executable links it too. Berth's own executables
    /// set the policy in their main (without it, each 1 MiB body is mapped fresh and faulted in again).
    @Test func linkingTheBusLeavesMallocAloneUntilAnExecutableAsks() {
        #expect(!MemoryPolicy.isApplied, "nothing may set the malloc policy before main")
        #expect(MemoryPolicy.apply())
        #expect(MemoryPolicy.isApplied)
    }

    @Test func multipartMessagesArriveWholeAndInOrder() async throws {
        let endpoint = Self.endpoint()
        let (stream, continuation) = AsyncStream.makeStream(of: [[UInt8]].self)
        let loop = BusLoop(name: "test-router") {
            try Collector(.router, bind: endpoint) { continuation.yield($0) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await loop.run() }
            var options = SocketOptions()
            options.routingID = Array("client".utf8)
            let dealer = try Socket(.dealer, options: options)
            try dealer.connect(endpoint)
            let big = [UInt8](repeating: 7, count: 3 << 20)
            for index in 0..<100 {
                #expect(try dealer.send([Frame("head \(index)"), Frame([]), Frame(big)]))
            }
            var count = 0
            for await frames in stream {
                #expect(frames.count == 4)
                #expect(frames[0] == Array("client".utf8))
                #expect(frames[1] == Array("head \(count)".utf8))
                #expect(frames[2].isEmpty)
                #expect(frames[3] == big)
                count += 1
                if count == 100 { break }
            }
            loop.stop()
            try await group.waitForAll()
        }
    }

    @Test func routerMandatorySendToAnUnknownPeerIsAnError() throws {
        var options = SocketOptions()
        options.routerMandatory = true
        let router = try Socket(.router, options: options)
        try router.bind(Self.endpoint())
        #expect(throws: BusError.self) { try router.send([Frame("nobody"), Frame("hello")]) }
        do {
            try router.send([Frame("nobody"), Frame("hello")])
        } catch {
            #expect(error.isHostUnreachable)
        }
    }

    @Test func immediateDealerWithoutAPeerDoesNotQueue() throws {
        var options = SocketOptions()
        options.immediate = true
        let dealer = try Socket(.dealer, options: options)
        try dealer.connect(Self.endpoint())
        #expect(try dealer.send([Frame("lost")]) == false)
    }

    @Test func aFrameOverMaxMessageSizeDisconnectsThePeerAndTheSocketKeepsServing() async throws {
        let endpoint = Self.endpoint()
        let (stream, continuation) = AsyncStream.makeStream(of: [[UInt8]].self)
        var limited = SocketOptions()
        limited.maxMessageSize = 1_024
        let options = limited
        let loop = BusLoop(name: "test-limit") {
            try Collector(.router, bind: endpoint, options: options) { continuation.yield($0) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await loop.run() }
            let greedy = try Socket(.dealer)
            try greedy.connect(endpoint)
            try greedy.send([Frame([UInt8](repeating: 1, count: 4_096))])
            let polite = try Socket(.dealer)
            try polite.connect(endpoint)
            try polite.send([Frame("small")])
            for await frames in stream {
                #expect(frames.last == Array("small".utf8), "only the small message may arrive")
                break
            }
            loop.stop()
            try await group.waitForAll()
        }
    }

    @Test func workHandedToTheLoopRunsOnItsThreadInOrder() async throws {
        let order = Mutex<[Int]>([])
        let loop = BusLoop(name: "test-work") {
            try Collector(.pair, bind: Self.endpoint()) { _ in }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await loop.run() }
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                for index in 0..<1_000 {
                    loop.execute { _ in
                        order.withLock { $0.append(index) }
                        if index == 999 { done.resume() }
                    }
                }
            }
            loop.stop()
            try await group.waitForAll()
        }
        #expect(order.withLock { $0 } == Array(0..<1_000))
        #expect(loop.execute { _ in } == false, "a stopped loop takes no more work")
    }

    /// Replies on the socket the request came in on, so that sends and receives on one socket interleave.
    final class Echo: BusLoopBody {
        let sockets: [Socket]
        init(bind endpoint: String) throws {
            let socket = try Socket(.router)
            try socket.bind(endpoint)
            sockets = [socket]
        }
        func received(_ frames: [Frame], on index: Int) { _ = try? sockets[0].send(frames) }
    }

    final class Client: BusLoopBody {
        let sockets: [Socket]
        let replied: @Sendable () -> Void
        init(connect endpoint: String, replied: @escaping @Sendable () -> Void) throws {
            let socket = try Socket(.dealer)
            try socket.connect(endpoint)
            sockets = [socket]
            self.replied = replied
        }
        func received(_ frames: [Frame], on index: Int) { replied() }
        func send(_ index: Int) -> Bool { (try? sockets[0].send([Frame("\(index)")])) ?? false }
    }

    /// libzmq's descriptor only says that something changed, and a send can swallow that news: a loop that misses
    /// it sleeps with messages waiting. 400 bursts of 100 requests, each handed over separately, and every reply must
    /// come back; a lost wake-up shows up as a burst that never completes.
    @Test func noMessageWaitsForTheNextWakeUp() async throws {
        let endpoint = "tcp://127.0.0.1:\(Int.random(in: 40_000..<50_000))"
        let replies = Atomic<Int>(0)
        let notSent = Atomic<Int>(0)
        let echo = BusLoop(name: "test-echo") { try Echo(bind: endpoint) }
        let client = BusLoop(name: "test-client") { try Client(connect: endpoint) { replies.add(1, ordering: .relaxed) } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await echo.run() }
            group.addTask { try await client.run() }
            var expected = 0
            burst: for round in 0..<400 {
                for index in 0..<100 {
                    client.execute { if !$0.send(round * 100 + index) { notSent.add(1, ordering: .relaxed) } }
                }
                expected += 100
                let deadline = ContinuousClock.now + .seconds(5)
                while replies.load(ordering: .relaxed) + notSent.load(ordering: .relaxed) < expected {
                    if ContinuousClock.now > deadline {
                        Issue.record("burst \(round): \(replies.load(ordering: .relaxed)) of \(expected) replies after 5 s")
                        break burst
                    }
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
            client.stop()
            echo.stop()
            try await group.waitForAll()
        }
        #expect(notSent.load(ordering: .relaxed) == 0)
        #expect(replies.load(ordering: .relaxed) == 40_000)
    }

    /// The loop is woken to trim once big frames have stopped for a second, and not before, nor for small traffic.
    @Test func freedMemoryIsTrimmedASecondAfterBigFramesStop() async throws {
        var trimmer = FreedMemoryTrimmer()
        let later = ContinuousClock.now + .seconds(60)
        trimmer.moved(1 << 20)
        #expect(trimmer.trimIfQuiet(wakeAt: later) == later, "1 MiB is not worth a trim")
        trimmer.moved(3 << 20)
        let wake = trimmer.trimIfQuiet(wakeAt: nil)
        let due = try #require(wake, "4 MiB: the loop must wake to trim even with no timer")
        #expect(due > .now + .milliseconds(900) && due <= .now + .seconds(1))
        #expect(trimmer.trimIfQuiet(wakeAt: later) == due, "the earlier of the two wins")
        try await Task.sleep(until: due + .milliseconds(10))
        #expect(trimmer.trimIfQuiet(wakeAt: nil) == nil, "trimmed: nothing more to wake for")
        #expect(trimmer.trimIfQuiet(wakeAt: later) == later)
    }

    @Test func aBindThatFailsSaysWhatAndWhere() async throws {
        let loop = BusLoop(name: "test-bad-bind") {
            try Collector(.router, bind: "tcp://256.0.0.1:1") { _ in }
        }
        await #expect {
            try await loop.run()
        } throws: { error in
            "\(error)".contains("bind tcp://256.0.0.1:1")
        }
    }
}
