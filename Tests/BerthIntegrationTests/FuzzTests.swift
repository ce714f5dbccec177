import AsyncHTTPClient
import BerthTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Random mutations of valid requests, from a fixed seed, against the real edge, while a second client sends valid
/// requests and checks each answer. The edge must answer or close every connection, with well-formed answers; the
/// valid client must always be served rightly; and the app must see no request that some client did not get the
/// answer to (a request hidden in another would reach the app, but its answer would reach no client).
/// `scripts/fuzz-edge.sh` runs the same mutations for longer, with any seed.
@Suite(.serialized)
struct FuzzTests {
    static let templates: [String] = [
        "GET /a/echo?fuzz=N HTTP/1.1\r\nHost: x\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n",
        "POST /a/echo?fuzz=N HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 38\r\n\r\nGET /a/smuggled?fuzz=N HTTP/1.1\r\nH: x\r\n",
        "POST /a/echo?fuzz=N HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n1a\r\nGET /a/smuggled HTTP/1.1\r\n\r\n0\r\nT: 1\r\n\r\n",
        "GET /a/echo?fuzz=N HTTP/1.1\r\nHost: x\r\n\r\nGET /a/echo?fuzz=N&second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /a/echo?fuzz=N HTTP/1.0\r\nConnection: keep-alive\r\nX-Long: \(String(repeating: "v", count: 100))\r\n\r\n",
        "PUT /a/echo?fuzz=N HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
    ]

    static let interestingBytes: [UInt8] = Array("\r\n\0 \t:,;0123456789aF-/".utf8) + [0x7F, 0xFF, 0x0B]
    static let insertedLines = [
        "Content-Length: 3\r\n", "Content-Length: 0\r\n", "Transfer-Encoding: chunked\r\n", "Transfer-Encoding: gzip, chunked\r\n",
        "Host: y\r\n", "x-berth-instance: a\r\n", "Connection: close\r\n", " folded\r\n", "\r\n", "\n", "\r",
    ]

    /// One request, mutated one to four times: a byte changed, dropped or added, a header line added, a piece doubled,
    /// a line end made bare, a bit flipped.
    static func mutated(_ number: Int, using random: inout SeededGenerator) -> [UInt8] {
        let template = templates[Int.random(in: 0..<templates.count, using: &random)].replacingOccurrences(of: "fuzz=N", with: "fuzz=\(number)")
        var bytes = Array(template.utf8)
        for _ in 0..<Int.random(in: 1...4, using: &random) where !bytes.isEmpty {
            let at = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<7, using: &random) {
            case 0: bytes[at] = interestingBytes.randomElement(using: &random)!
            case 1: bytes.remove(at: at)
            case 2: bytes.insert(interestingBytes.randomElement(using: &random)!, at: at)
            case 3:
                // A header line, at the start of some line of the head.
                let lineStarts = bytes.indices.filter { $0 > 0 && bytes[$0 - 1] == UInt8(ascii: "\n") }
                let where_ = lineStarts.randomElement(using: &random) ?? at
                bytes.insert(contentsOf: Array(insertedLines.randomElement(using: &random)!.utf8), at: where_)
            case 4:
                let end = min(bytes.count, at + Int.random(in: 1...12, using: &random))
                bytes.insert(contentsOf: Array(bytes[at..<end]), at: end)
            case 5:
                // A line end made bare: the CR or the LF of some CR LF dropped.
                let lineEnds = bytes.indices.dropLast().filter { bytes[$0] == UInt8(ascii: "\r") && bytes[$0 + 1] == UInt8(ascii: "\n") }
                if let end = lineEnds.randomElement(using: &random) { bytes.remove(at: Bool.random(using: &random) ? end : end + 1) }
            default: bytes[at] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &random)
            }
        }
        return bytes
    }

    /// Waits until one of `connections` has something to read, or `timeout` passes.
    static func awaitReadable(_ connections: [RawConnection], timeout: Duration) {
        var fds = connections.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        _ = poll(&fds, nfds_t(fds.count), Int32(timeout.components.seconds * 1_000 + timeout.components.attoseconds / 1_000_000_000_000_000))
    }

    /// `path?query` of an echo answer's body.
    static func echoedTarget(_ body: [UInt8]) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let path = object["path"] as? String, let query = object["query"] as? String else { return nil }
        return query.isEmpty ? path : "\(path)?\(query)"
    }

    /// 240 requests from seed 19, unless `scripts/fuzz-edge.sh` asks for others (BERTH_FUZZ_SEED, BERTH_FUZZ_COUNT).
    static let seed = ProcessInfo.processInfo.environment["BERTH_FUZZ_SEED"].flatMap { UInt64($0) } ?? 19
    static let count = ProcessInfo.processInfo.environment["BERTH_FUZZ_COUNT"].flatMap { Int($0) }.map { max(40, $0 / 40 * 40) } ?? 240

    /// The methods the echo app answers; any other it answers 501 with Python's page, which names the method.
    static let echoMethods: Set<String> = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

    static func unsupportedMethod(_ page: String) -> String? {
        guard let start = page.range(of: "Unsupported method ('")?.upperBound, let end = page[start...].range(of: "')")?.lowerBound else { return nil }
        return String(page[start..<end])
    }

    static func methodKey(_ method: String) -> String { "method \(method)" }

    /// What ties a request line the app read to the answer a client got: the echoed target, or for a method the app
    /// does not answer, the method its 501 page names.
    static func key(ofRequestLine line: String) -> String {
        let method = String(line.prefix { $0 != " " })
        return echoMethods.contains(method) ? RequestCorpusTests.path(of: line) : methodKey(method)
    }

    static let allowedStatuses: Set<Int> = [200, 400, 404, 405, 408, 411, 413, 414, 431, 501, 502, 503, 505]

    @Test func mutatedRequestsNeverHangCrashOrSmuggleWhileValidOnesAreServed() async throws {
        try await withMesh { mesh in
            mesh.appEnvironment = ["ECHO_LOG_REQUESTS": "1"]
            try await mesh.startOneInstance(edgeArguments: ["--header-timeout", "1s", "--idle-timeout", "1s", "--max-body", "4096"])
            let edgePort = mesh.edgePort

            // The second client: valid requests, each answer checked, until the fuzzing ends.
            let stop = StopFlag()
            let checker = Task { () -> (served: Int, wrong: [String], echoed: [String]) in
                var served = 0
                var wrong: [String] = []
                var echoed: [String] = []
                while !stop.isSet {
                    let body = String(repeating: "v", count: served % 300)
                    do {
                        let (response, bytes) = try await mesh.send("/a/echo?valid=\(served)", method: .POST, body: ByteBuffer(string: body), port: edgePort)
                        let text = String(buffer: bytes)
                        if response.status == .ok && text.contains("\"bodyLength\": \(body.utf8.count)") && text.contains("valid=\(served)") {
                            echoed.append("/echo?valid=\(served)")
                        } else {
                            wrong.append("\(response.status): \(text.prefix(200))")
                        }
                    } catch {
                        wrong.append("\(error)")
                    }
                    served += 1
                }
                return (served, wrong, echoed)
            }

            var random = SeededGenerator(seed: Self.seed)
            var statuses: [Int: Int] = [:]
            var problems: [String] = []
            var echoed: [String] = []
            var exchanges: [Int: String] = [:]
            let total = Self.count
            for batch in stride(from: 0, to: total, by: 40) {
                let wires = (batch..<batch + 40).map { Self.mutated($0, using: &random) }
                let connections = try wires.map { wire in
                    let connection = try RawConnection(port: edgePort)
                    connection.send(wire)
                    return connection
                }
                let deadline = ContinuousClock.now + .seconds(20)
                while connections.contains(where: { !$0.closed }) && ContinuousClock.now < deadline {
                    Self.awaitReadable(connections.filter { !$0.closed }, timeout: .milliseconds(500))
                    for connection in connections { connection.readAvailable() }
                }
                for (index, connection) in connections.enumerated() {
                    let wire = String(decoding: wires[index], as: UTF8.self).debugDescription.prefix(300)
                    var received: [String] = []
                    defer { exchanges[batch + index] = "\(wire) -> \(received)" }
                    guard connection.closed else {
                        problems.append("hung: \(wire)")
                        continue
                    }
                    while let answer = try? connection.answer(timeout: .zero) {
                        statuses[answer.status, default: 0] += 1
                        received.append("\(answer.status) \(answer.text.prefix(120))")
                        if !Self.allowedStatuses.contains(answer.status) { problems.append("status \(answer.status) for \(wire): \(answer.text.prefix(200))") }
                        if answer.status == 200, let target = Self.echoedTarget(answer.body) { echoed.append(target) }
                        if answer.status == 501, let method = Self.unsupportedMethod(answer.text) { echoed.append(Self.methodKey(method)) }
                    }
                    if !connection.rest.isEmpty { problems.append("not an answer: \(connection.rest.prefix(200).debugDescription) for \(wire)") }
                }
            }
            stop.set()
            let valid = await checker.value
            #expect(mesh.edge?.isRunning == true, "the edge is still up")
            #expect(problems.isEmpty, "seed \(Self.seed): \(problems.count) problems: \(problems.prefix(5))")
            #expect(valid.wrong.isEmpty, "valid requests served wrongly: \(valid.wrong.prefix(5))")
            #expect(valid.served > 10, "the valid client was served all along: \(valid.served)")

            // Every request the app read was answered to some client: none hid inside another.
            var unanswered = RequestCorpusTests.requestsSeen(by: mesh).filter { !$0.hasPrefix("HEAD ") }.map(Self.key(ofRequestLine:))
            for target in echoed + valid.echoed + ["/instance"] {
                if let index = unanswered.firstIndex(of: target) { unanswered.remove(at: index) }
            }
            unanswered.removeAll { $0 == "/instance" }
            let suspects = unanswered.prefix(5).map { target in
                let number = target.split(separator: "fuzz=").last.flatMap { Int($0.prefix { $0.isNumber }) }
                return "\(target) from \(number.flatMap { exchanges[$0] } ?? "?")"
            }
            #expect(unanswered.isEmpty, "seed \(Self.seed): the app read requests whose answers reached no client: \(suspects)")
            #expect(statuses.values.reduce(0, +) >= total / 2, "answers by status: \(statuses.sorted { $0.key < $1.key })")
        }
    }
}

/// A flag one task sets and another reads.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
