import BerthBus
import BerthWire
import Testing

/// A sidecar under more requests than it has connections: every shape of answer, connections the app closes,
/// slow answers, all at once.
@Suite(.serialized)
struct SidecarLoadTests {
    /// 300 requests at once to a sidecar with capacity 4: most wait for a connection, some find it closed under
    /// them and are sent again; each gets its own answer, whole.
    @Test func manyRequestsOfEveryShapeOverFewConnectionsAreAllAnsweredRightly() async throws {
        // A long heartbeat: the fake router never sends one, and the sidecar must not give it up mid-test.
        try await withLoneSidecar(heartbeat: "5s", arguments: ["--capacity", "4"]) { router, sidecar, identity in
            let pattern = { (count: Int) in (0..<count).map { UInt8(truncatingIfNeeded: $0) } }
            var expected: [UInt64: (path: String, check: ([UInt8]) -> Bool)] = [:]
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
                try router.send(.request(request), body: body, to: identity)
            }
            while !expected.isEmpty {
                let answer = try await router.receive(timeout: .seconds(30)) { envelope in
                    if case .response = envelope { true } else { false }
                }
                guard case .response(let response)? = answer?.0, let frames = answer?.1 else {
                    Issue.record("\(expected.count) requests unanswered:\n\(sidecar.output.suffix(3_000))")
                    return
                }
                guard let (path, check) = expected.removeValue(forKey: response.id) else {
                    Issue.record("an answer to request \(response.id), unknown or answered twice")
                    continue
                }
                let body = frames.dropFirst(2).flatMap(\.bytes)
                #expect(response.status == 200 && response.error == nil, "\(path): \(response)")
                #expect(check(body), "\(path): \(body.count) bytes")
            }
            #expect(sidecar.isRunning)
        }
    }
}
