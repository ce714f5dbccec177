import BerthBus
import Foundation
import Testing

@testable import BerthEdge

/// A body that came off the bus goes back on it without a copy, and is still whole afterwards.
struct BodyTests {
    @Test func aBodySentOnTheBusCanBeReadAndSentAgain() throws {
        let endpoint = "ipc:///tmp/berth-edge-test-\(UUID().uuidString).ipc"
        let receiver = try Socket(.pair)
        try receiver.bind(endpoint)
        let sender = try Socket(.pair)
        try sender.connect(endpoint)
        let text = String(repeating: "a 1 KiB body, ", count: 80)
        let body = Body(frames: [Frame(text), Frame("and a second frame")])

        for _ in 0..<2 {
            #expect(try sender.send(body.framesForBus))
            var received: [Frame]?
            for _ in 0..<200 where received == nil {
                received = try receiver.receive()
                if received == nil { usleep(5_000) }
            }
            #expect(received?.map(\.string).joined() == text + "and a second frame")
        }
        #expect(body.string == text + "and a second frame", "sending must not empty the body")
        #expect(body.count == text.utf8.count + 18)
    }
}
