import BerthDashboard
import NIOCore
import Testing

@Suite(.timeLimit(.minutes(1)))
struct BroadcasterTests {
    private func broadcaster(bufferLimit: Int, replayLimit: Int = 0) -> Broadcaster {
        Broadcaster(bufferLimit: bufferLimit, replayLimit: replayLimit) { ByteBuffer(string: "dropped \($0)") }
    }

    @Test func aSlowClientLosesMessagesAndIsToldHowMany() async throws {
        let hub = broadcaster(bufferLimit: 10)
        let slow = await hub.connect()
        let fast = await hub.connect()
        var slowMessages = slow.messages.makeAsyncIterator()
        var fastMessages = fast.messages.makeAsyncIterator()

        for index in 0..<100 {
            await hub.broadcast(ByteBuffer(string: "\(index)"))
            #expect(await fastMessages.next() == ByteBuffer(string: "\(index)"))
        }
        // The slow client holds the first ten; the other ninety were dropped for it alone.
        for index in 0..<10 {
            #expect(await slowMessages.next() == ByteBuffer(string: "\(index)"))
        }
        #expect(await hub.droppedTotal == 90)
        await hub.broadcast(ByteBuffer(string: "100"))
        #expect(await slowMessages.next() == ByteBuffer(string: "dropped 90"))
        #expect(await slowMessages.next() == ByteBuffer(string: "100"))
        #expect(await fastMessages.next() == ByteBuffer(string: "100"))
    }

    @Test func newClientsGetTheRecentMessagesWithAnIDFirst() async throws {
        let hub = broadcaster(bufferLimit: 10, replayLimit: 3)
        for index in 1...5 { await hub.broadcast(ByteBuffer(string: "\(index)"), id: UInt64(index)) }
        await hub.broadcast(ByteBuffer(string: "not remembered"))
        let client = await hub.connect()
        let resuming = await hub.connect(after: 4)
        await hub.broadcast(ByteBuffer(string: "live"))
        await hub.close()
        var received: [String] = []
        for await message in client.messages { received.append(String(buffer: message)) }
        #expect(received == ["3", "4", "5", "live"])
        received = []
        for await message in resuming.messages { received.append(String(buffer: message)) }
        #expect(received == ["5", "live"])
    }

    @Test func disconnectingAndClosingFinishTheStreams() async throws {
        let hub = broadcaster(bufferLimit: 4)
        let leaving = await hub.connect()
        let staying = await hub.connect()
        #expect(await hub.clientCount == 2)
        await hub.disconnect(leaving.id)
        #expect(await hub.clientCount == 1)
        for await _ in leaving.messages { Issue.record("a disconnected client got a message") }

        await hub.close()
        #expect(await hub.clientCount == 0)
        for await _ in staying.messages { Issue.record("a message after close") }
        // After close, new clients get a stream that has already ended.
        let late = await hub.connect()
        for await _ in late.messages { Issue.record("a message after close") }
        #expect(await hub.clientCount == 0)
    }
}
