import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing

/// Malformed and ambiguous requests against the real edge, in front of an app that logs every request line it reads.
///
/// Each case says what the client gets (the statuses, in order), whether the edge then closes the connection, and
/// which requests the app may see. A case the edge keeps open is followed on the same connection by a plain request,
/// whose answer shows that the edge and the client still agree where requests begin. Most cases carry a request to
/// `/a/smuggled` where a reader that took the framing another way would find one: the app must never see it.
@Suite(.serialized)
struct RequestCorpusTests {
    struct Case: CustomStringConvertible {
        var name: String
        var wire: [UInt8]
        var statuses: [Int]
        var closes: Bool
        /// Paths (with query) the app may be asked for; the app sees none but these.
        var appMay: [String] = []
        var description: String { name }
    }

    static let smuggled = "GET /a/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

    static func refused(_ name: String, _ wire: String, _ status: Int = 400) -> Case {
        Case(name: name, wire: Array(wire.utf8), statuses: [status], closes: true)
    }

    static func refused(_ name: String, bytes: [UInt8], _ status: Int = 400) -> Case {
        Case(name: name, wire: bytes, statuses: [status], closes: true)
    }

    /// A request the edge reads and forwards: 200 from the app for `appSees`, and the connection stays.
    static func served(_ name: String, _ wire: String, appSees: String, closes: Bool = false) -> Case {
        Case(name: name, wire: Array(wire.utf8), statuses: [200], closes: closes, appMay: [appSees])
    }

    static let cases: [Case] = {
        let s = smuggled
        let h = "Host: x\r\n"
        var cases: [Case] = [
            // Line ends (RFC 9112 §2.2): every line ends in CR LF; a bare LF or CR anywhere is refused.
            refused("a blank line of a bare LF before Content-Length", "POST /a/echo HTTP/1.1\r\n\(h)\nContent-Length: \(s.utf8.count)\r\n\r\n\(s)"),
            refused("a head of bare LFs", "GET /a/echo HTTP/1.1\nHost: x\n\n\(s)"),
            refused("a bare LF inside the head", "GET /a/echo HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n"),
            refused("a bare CR in a value, hiding a request", "GET /a/echo HTTP/1.1\r\n\(h)X-A: 1\r\(s)"),
            refused("a bare CR in the request line", "GET /a/echo\r HTTP/1.1\r\n\(h)\r\n"),
            refused("a bare CR before the blank line", "GET /a/echo HTTP/1.1\r\n\(h)\r\r\n\(s)"),
            refused("CR CR LF", "GET /a/echo HTTP/1.1\r\r\n\(h)\r\n"),
            refused("LF CR", "GET /a/echo HTTP/1.1\n\r\(h)\r\n"),
            // Control bytes and bytes that are not UTF-8 (values travel the bus as text).
            refused("NUL in a value", "GET /a/echo HTTP/1.1\r\n\(h)X-A: a\u{0}b\r\n\r\n"),
            refused("NUL before a hidden header", "GET /a/echo HTTP/1.1\r\n\(h)X-A: a\u{0}\r\nContent-Length: 0\r\n\r\n"),
            refused("SOH in a value", "GET /a/echo HTTP/1.1\r\n\(h)X-A: a\u{1}b\r\n\r\n"),
            refused("DEL in a value", "GET /a/echo HTTP/1.1\r\n\(h)X-A: a\u{7F}b\r\n\r\n"),
            refused("VT in a value", "GET /a/echo HTTP/1.1\r\n\(h)X-A: a\u{B}b\r\n\r\n"),
            refused("FF in a value", "GET /a/echo HTTP/1.1\r\n\(h)X-A: a\u{C}b\r\n\r\n"),
            refused("NUL in a name", "GET /a/echo HTTP/1.1\r\n\(h)X-\u{0}A: b\r\n\r\n"),
            refused("NUL in the target", "GET /a/echo\u{0} HTTP/1.1\r\n\(h)\r\n"),
            refused("a value that is not UTF-8", bytes: Array("GET /a/echo HTTP/1.1\r\n\(h)X-A: caf".utf8) + [0xE9] + Array("\r\n\r\n".utf8)),
            // Header lines.
            refused("a folded header", "GET /a/echo HTTP/1.1\r\n\(h)X-A: 1\r\n folded\r\n\r\n"),
            refused("a header folded with a tab", "GET /a/echo HTTP/1.1\r\n\(h)X-A: 1\r\n\tfolded\r\n\r\n"),
            refused("a space before the colon", "POST /a/echo HTTP/1.1\r\n\(h)Content-Length : 5\r\n\r\nhello"),
            refused("a space in a name", "GET /a/echo HTTP/1.1\r\n\(h)Bad Name: 1\r\n\r\n"),
            refused("a line without a colon", "GET /a/echo HTTP/1.1\r\n\(h)no colon\r\n\r\n"),
            refused("a header without a name", "GET /a/echo HTTP/1.1\r\n\(h): x\r\n\r\n"),
            // Host (RFC 9112 §3.2).
            refused("HTTP/1.1 without Host", "GET /a/echo HTTP/1.1\r\nX-A: 1\r\n\r\n"),
            refused("two Host headers", "GET /a/echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            refused("a Host with a slash", "GET /a/echo HTTP/1.1\r\nHost: a/b\r\n\r\n"),
            refused("a Host with a space", "GET /a/echo HTTP/1.1\r\nHost: a b\r\n\r\n"),
            refused("a Host with user info", "GET /a/echo HTTP/1.1\r\nHost: user@a\r\n\r\n"),
            // Content-Length (RFC 9112 §6.3).
            refused("Content-Length and chunked (CL.TE)", "POST /a/echo HTTP/1.1\r\n\(h)Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\(s)"),
            refused("chunked and Content-Length (TE.CL)", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\n\(s.prefix(8))\r\n0\r\n\r\n"),
            refused("two Content-Lengths that differ", "POST /a/echo HTTP/1.1\r\n\(h)Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
            refused("a Content-Length list that differs", "POST /a/echo HTTP/1.1\r\n\(h)Content-Length: 3, 4\r\n\r\nabcd"),
            refused("a negative Content-Length", "POST /a/echo HTTP/1.1\r\n\(h)Content-Length: -1\r\n\r\n"),
            refused("a Content-Length with a sign", "POST /a/echo HTTP/1.1\r\n\(h)Content-Length: +5\r\n\r\nhello"),
            refused("a hexadecimal Content-Length", "POST /a/echo HTTP/1.1\r\n\(h)Content-Length: 0x5\r\n\r\nhello"),
            refused("an empty Content-Length", "POST /a/echo HTTP/1.1\r\n\(h)Content-Length:\r\n\r\n\(s)"),
            refused("a Content-Length past any integer", "POST /a/echo HTTP/1.1\r\n\(h)Content-Length: 99999999999999999999\r\n\r\n"),
            refused("a space inside a Content-Length", "POST /a/echo HTTP/1.1\r\n\(h)Content-Length: 1 0\r\n\r\n0123456789"),
            refused("a body over the limit", "POST /a/echo HTTP/1.1\r\n\(h)Content-Length: 5000\r\n\r\n", 413),
            // Transfer-Encoding (RFC 9112 §6.1).
            refused("gzip", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: gzip\r\n\r\n\(s)", 501),
            refused("gzip then chunked", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
            refused("chunked then gzip", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 501),
            refused("identity", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: identity\r\n\r\n", 501),
            refused("a coding that only contains chunked", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501),
            refused("chunked twice in one header", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
            refused("chunked in two headers", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            refused("a space before the colon of Transfer-Encoding", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
            refused("a vertical tab before chunked", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: \u{B}chunked\r\n\r\n0\r\n\r\n"),
            refused("HTTP/1.0 with Transfer-Encoding", "POST /a/echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"),
            refused("HTTP/1.0 with chunked alone", "POST /a/echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            // Chunked bodies.
            refused("a bare CR in a chunk size", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n1\r0\r\n0123456789abcdef\r\n0\r\n\r\n"),
            refused("a chunk size ended by a bare LF", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
            refused("a space inside a chunk size", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n1 0\r\n0123456789abcdef\r\n0\r\n\r\n"),
            refused("a chunk size past 60 bits", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n10000000000000001\r\na\r\n0\r\n\r\n"),
            refused("a chunk longer than its size", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"),
            refused("a negative chunk size", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n-1\r\na\r\n0\r\n\r\n"),
            refused("a hexadecimal prefix in a chunk size", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
            refused("NUL in a chunk extension", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n5;a\u{0}\r\nhello\r\n0\r\n\r\n"),
            refused("a trailer ended by a bare LF", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\n\r\n\(s)"),
            refused("a chunk over the body limit", "POST /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n7d1\r\n", 413),
            // The request line (RFC 9112 §3).
            refused("HTTP/2.0", "GET /a/echo HTTP/2.0\r\n\(h)\r\n", 505),
            refused("a lowercase version", "GET /a/echo http/1.1\r\n\(h)\r\n"),
            refused("HTTP/1.2", "GET /a/echo HTTP/1.2\r\n\(h)\r\n", 505),
            refused("a version of two digits", "GET /a/echo HTTP/1.10\r\n\(h)\r\n"),
            refused("two spaces after the method", "GET  /a/echo HTTP/1.1\r\n\(h)\r\n"),
            refused("a tab in the target", "GET /a/echo\tx HTTP/1.1\r\n\(h)\r\n"),
            refused("a method that is no token", "G(T /a/echo HTTP/1.1\r\n\(h)\r\n"),
            refused("a method over 32 bytes", "\(String(repeating: "M", count: 40)) /a/echo HTTP/1.1\r\n\(h)\r\n", 501),
            refused("a request line over 8 KiB", "GET /a/echo?\(String(repeating: "q", count: 9_000)) HTTP/1.1\r\n\(h)\r\n", 414),
            refused("CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 501),
            refused("a target that is no path", "GET a/echo HTTP/1.1\r\n\(h)\r\n"),
            refused("an asterisk for GET", "GET * HTTP/1.1\r\n\(h)\r\n"),
            refused("a fragment in the target, which the app would drop", "GET /a/e#cho?case=fragment HTTP/1.1\r\n\(h)\r\n"),
            refused("a head over 64 KiB", "GET /a/echo HTTP/1.1\r\n\(h)X-Big: \(String(repeating: "b", count: 70_000))\r\n\r\n", 431),
            refused("no request line at all", "\r\n\r\n\u{0}\r\n\r\n"),
            // Headers that steer the edge may come once.
            refused("two x-berth-instance headers", "GET /a/echo HTTP/1.1\r\n\(h)x-berth-instance: a\r\nx-berth-instance: b\r\n\r\n"),
            refused("two x-berth-timeout-ms headers", "GET /a/echo HTTP/1.1\r\n\(h)x-berth-timeout-ms: 100\r\nX-Berth-Timeout-Ms: 90000\r\n\r\n"),
        ]
        // What is not ambiguous is served, and the connection stays in step.
        cases += [
            served("a body that looks like a request", "POST /a/echo?case=body HTTP/1.1\r\n\(h)Content-Length: \(s.utf8.count)\r\n\r\n\(s)", appSees: "/echo?case=body"),
            served("a GET with a body", "GET /a/echo?case=get-body HTTP/1.1\r\n\(h)Content-Length: \(s.utf8.count)\r\n\r\n\(s)", appSees: "/echo?case=get-body"),
            served("a chunk that looks like a request", "POST /a/echo?case=chunk HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n\(String(s.utf8.count, radix: 16))\r\n\(s)\r\n0\r\n\r\n", appSees: "/echo?case=chunk"),
            served("chunk extensions and trailers", "POST /a/echo?case=ext HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n5 ;a=\"b\"\r\nhello\r\n0;last\r\nX-T: 1\r\n\r\n", appSees: "/echo?case=ext"),
            served("Chunked in capitals, with spaces", "POST /a/echo?case=caps HTTP/1.1\r\n\(h)Transfer-Encoding:  Chunked \r\n\r\n0\r\n\r\n", appSees: "/echo?case=caps"),
            served("two equal Content-Lengths", "POST /a/echo?case=equal HTTP/1.1\r\n\(h)Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", appSees: "/echo?case=equal"),
            served("empty lines before the request line", "\r\n\r\nGET /a/echo?case=leading HTTP/1.1\r\n\(h)\r\n", appSees: "/echo?case=leading"),
            served("an absolute target", "GET http://x/a/echo?case=absolute HTTP/1.1\r\n\(h)\r\n", appSees: "/echo?case=absolute"),
            served("a tab and obs-text in a value", "GET /a/echo?case=tab HTTP/1.1\r\n\(h)X-A: caf\u{E9}\tau lait\r\n\r\n", appSees: "/echo?case=tab"),
            served("HTTP/1.0 without Host", "GET /a/echo?case=http10 HTTP/1.0\r\n\r\n", appSees: "/echo?case=http10", closes: true),
            Case(name: "a good request pipelined before a bad one",
                 wire: Array("GET /a/echo?case=pipelined HTTP/1.1\r\n\(h)\r\nGET /a/echo HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n\(s)".utf8),
                 statuses: [200, 400], closes: true, appMay: ["/echo?case=pipelined"]),
            Case(name: "a bad request pipelined after a body",
                 wire: Array("POST /a/echo?case=then-bad HTTP/1.1\r\n\(h)Content-Length: 2\r\n\r\nokGET /a/echo HTTP/1.1\r\n\(h)Transfer-Encoding: gzip\r\n\r\n".utf8),
                 statuses: [200, 501], closes: true, appMay: ["/echo?case=then-bad"]),
        ]
        return cases
    }()

    @Test func everyCaseGetsItsAnswerAndNoRequestIsSmuggled() async throws {
        #expect(Self.cases.count >= 60, "the corpus has \(Self.cases.count) cases")
        try await withMesh { mesh in
            mesh.appEnvironment = ["ECHO_LOG_REQUESTS": "1"]
            try await mesh.startOneInstance(edgeArguments: ["--max-body", "1000"])
            var allowed: Set<String> = ["/instance"] // the mesh's own check that it is up
            for (number, corpusCase) in Self.cases.enumerated() {
                allowed.formUnion(corpusCase.appMay)
                let connection = try RawConnection(port: mesh.edgePort)
                connection.send(corpusCase.wire)
                var statuses: [Int] = []
                do {
                    for _ in corpusCase.statuses {
                        let answer = try connection.answer()
                        statuses.append(answer.status)
                        if answer.status >= 400 {
                            #expect(answer.head.contains("x-berth-error: "), "\(corpusCase): the edge says it answered:\n\(answer.head)")
                        }
                    }
                } catch {
                    Issue.record("\(corpusCase): \(error)")
                    continue
                }
                #expect(statuses == corpusCase.statuses, "\(corpusCase)")
                if corpusCase.closes {
                    #expect(connection.readsToEnd(), "\(corpusCase): the edge should close the connection")
                    #expect(connection.rest.isEmpty, "\(corpusCase): nothing after the answer: \(connection.rest.prefix(200).debugDescription)")
                } else {
                    let after = "/echo?after=\(number)"
                    allowed.insert(after)
                    connection.send("GET /a\(after) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    let answer = try? connection.answer()
                    #expect(answer?.status == 200 && answer?.text.contains("after=\(number)") == true,
                            "\(corpusCase): the connection should stay in step: \(String(describing: answer?.head))")
                }
            }
            let (response, _) = try await mesh.get("/a/instance")
            #expect(response.status == .ok, "the edge still serves")

            let seen = Self.requestsSeen(by: mesh)
            #expect(!seen.isEmpty, "the app logs the requests it reads")
            #expect(seen.allSatisfy { !$0.contains("smuggled") }, "a request reached the app that the edge never read: \(seen)")
            let unexpected = seen.filter { line in !allowed.contains(Self.path(of: line)) }
            #expect(unexpected.isEmpty, "the app saw requests no case allows: \(unexpected)")
        }
    }

    /// The request lines the first app logged (`ECHO_LOG_REQUESTS`).
    static func requestsSeen(by mesh: TestMesh) -> [String] {
        (mesh.instances.first?.app?.output ?? "").split(separator: "\n").compactMap { line in
            guard line.hasPrefix("request ") else { return nil }
            return (try? JSONDecoder().decode(String.self, from: Data(line.dropFirst("request ".count).utf8))) ?? String(line)
        }
    }

    /// `/x?y` of `GET /x?y HTTP/1.1`.
    static func path(of requestLine: String) -> String {
        let words = requestLine.split(separator: " ")
        return words.count > 1 ? String(words[1]) : requestLine
    }
}
