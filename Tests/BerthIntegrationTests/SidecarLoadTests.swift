import BerthBus
import BerthWire
import Testing

/// A sidecar under more requests than it has connections: every shape of answer, connections the app closes,
/// slow answers, all at once.
@Suite(.serialized)
struct SidecarLoadTests {
    /// 300 requests at once to a sidecar with capacity 4: it takes 4 at a time and refuses the rest as saturated, as
    /// it should (the test sends those again, as an edge would); some find their connection closed under them and
    /// are sent again by the sidecar; each gets its own answer, whole.
    @Test func manyRequestsOfEveryShapeOverFewConnectionsAreAllAnsweredRightly() async throws {
        // A long heartbeat: the fake router never sends one, and the sidecar must not give it up mid-test.
        try await withLoneSidecar(heartbeat: "5s", arguments: ["--capacity", "4"]) { edge, sidecar, identity in
            let pattern = { (count: Int) in (0..<count).map { UInt8(truncatingIfNeeded: $0) } }
            var expected: [UInt64: (path: String, check: ([UInt8]) -> Bool)] = [:]
            var requests: [UInt64: (Request, [UInt8], [UInt8])] = [:]
            var refused = 0
            for id in UInt64(1)...300 {
                let path: String
                var body: [Frame] = []
                var method = "GET"
                let check: ([UInt8]) -> Bool
                switch id % 5 {
                case 0:
                    // PUT, not POST: a request sent on a connection the app closes at that moment (as /close does)
                    // is sent again only when its method is idempotent; a POST there fails, as with any proxy.
                    method = "PUT"
                    path = "/echo"
                    let size = Int(id) * 1_000
                    body = [Frame([UInt8](repeating: 0x61, count: size / 2)), Frame([UInt8](repeating: 0x62, count: size - size / 2))]
                    check = { String(decoding: $0, as: UTF8.self).contains("\"bodyLength\": \(size)") }
                case 1:
                    path = "/close"
                    check = { $0 == Array("closing\n".utf8) }
                case 2:
                    path = "/bytes/100000"
                    check = { $0 == pattern(100_000) }
                case 3:
                    path = "/chunked/5000"
                    check = { $0 == pattern(5_000) }
                default:
                    path = "/slow/20"
                    check = { $0 == Array("slow\n".utf8) }
                }
                expected[id] = (path, check)
                let request = Request(id: id, target: Target(className: "ContainerA"), method: method, path: path, timeoutMilliseconds: 30_000)
                requests[id] = (request, body.first?.bytes ?? [], body.last?.bytes ?? [])
                try edge.send(.request(request), body: body, to: identity)
            }
            while !expected.isEmpty {
                let answer = try await edge.receive(timeout: .seconds(30)) { envelope in
                    if case .response = envelope { true } else { false }
                }
                guard case .response(let response)? = answer?.0, let frames = answer?.1 else {
                    Issue.record("\(expected.count) requests unanswered:\n\(sidecar.output.suffix(3_000))")
                    return
                }
                if response.error?.code == .saturated, let (request, first, second) = requests[response.id] {
                    refused += 1
                    #expect(response.inFlight == 4, "a refusal says the sidecar is full: \(response)")
                    try await Task.sleep(for: .milliseconds(1))
                    try edge.send(.request(request), body: first.isEmpty ? [] : [Frame(first), Frame(second)], to: identity)
                    continue
                }
                guard let (path, check) = expected.removeValue(forKey: response.id) else {
                    Issue.record("an answer to request \(response.id), unknown or answered twice")
                    continue
                }
                let body = frames.dropFirst(2).flatMap(\.bytes)
                #expect(response.status == 200 && response.error == nil, "\(path): \(response)")
                #expect(check(body), "\(path): \(body.count) bytes")
            }
            #expect(refused > 0, "a sidecar with capacity 4 should refuse some of 300 requests sent at once")
            #expect(sidecar.isRunning)
        }
    }
}
