import BerthBus
import BerthWire
import Testing

@testable import BerthHTTP

/// What RFC 9112 lets a server read two ways, the edge refuses: a proxy and the app behind it must never disagree on
/// where a request ends. Each case is fed whole and a byte at a time.
struct StrictRequestTests {
    static func error(_ wire: [UInt8], piece: Int) -> HTTPMessageError? {
        do {
            _ = try HTTPRequestReaderTests.read(wire, cuts: Array(stride(from: piece, to: wire.count, by: piece)), maxBodyBytes: 1 << 20)
            return nil
        } catch {
            return error as? HTTPMessageError
        }
    }

    @Test(arguments: [
        // Line ends: a bare LF or a bare CR anywhere in the head.
        ("GET / HTTP/1.1\nHost: h\n\n", "bare CR or LF", HTTPMessageError.Kind.malformed),
        ("POST / HTTP/1.1\r\nHost: h\r\n\nContent-Length: 5\r\n\r\nhello", "bare CR or LF", .malformed),
        ("GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", "bare CR or LF", .malformed),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r2\r\n\r\n", "bare CR or LF", .malformed),
        ("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", "bare CR or LF", .malformed),
        ("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", "bare CR or LF", .malformed),
        // Control bytes in values.
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{0}b\r\n\r\n", "control byte (0x0) in the value of its header X-A", .malformed),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{1}b\r\n\r\n", "control byte (0x1)", .malformed),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{7F}\r\n\r\n", "control byte (0x7f)", .malformed),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{B}b\r\n\r\n", "control byte (0xb)", .malformed),
        // Host.
        ("GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", "no Host header", .malformed),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "2 Host headers", .malformed),
        ("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", "2 Host headers", .malformed),
        ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "not a host name", .malformed),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "not a host name", .malformed),
        ("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", "not a host name", .malformed),
        // Transfer codings.
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.0 with a Transfer-Encoding", .malformed),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc", #"transfer coding "gzip" is not implemented"#, .notImplemented),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", #"transfer coding "gzip""#, .notImplemented),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", #"transfer coding "gzip""#, .notImplemented),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", #""identity""#, .notImplemented),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", "chunked more than once", .malformed),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "chunked more than once", .malformed),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\n\r\n0\r\n\r\n", "an empty Transfer-Encoding", .malformed),
        // Chunk-size lines and trailers.
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r0\r\n", "a chunk-size line of the request has a bare CR", .malformed),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n", "ends in a bare LF", .malformed),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1 0\r\n", "invalid chunk size", .malformed),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a\u{0}\r\n", "a chunk extension of the request has a control byte", .malformed),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\n\r\n", "a trailer line of the request ends in a bare LF", .malformed),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n", "a trailer line of the request ends in a bare LF", .malformed),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\rX\r\n\r\n", "a trailer line of the request has a bare CR", .malformed),
        // Methods and targets.
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / HTTP/1.1\r\nHost: h\r\n\r\n", "has a method over 32 bytes", .notImplemented),
        ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "asks for a tunnel (CONNECT)", .notImplemented),
        ("GET example.com/a HTTP/1.1\r\nHost: h\r\n\r\n", "neither a path nor an absolute URI", .malformed),
        ("GET * HTTP/1.1\r\nHost: h\r\n\r\n", "neither a path nor an absolute URI", .malformed),
        ("GET /e#ho?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", "has a target with a fragment (#)", .malformed),
        ("GET /" + String(repeating: "a", count: 8 << 10) + " HTTP/1.1\r\nHost: h\r\n\r\n", "is over 8192 bytes", .targetTooLong),
        ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", "does not end with HTTP/1.0 or HTTP/1.1", .versionNotSupported),
        ("GET / HTTP/1.x\r\nHost: h\r\n\r\n", "does not end with HTTP/1.0 or HTTP/1.1", .malformed),
    ])
    func ambiguousRequestsAreRefused(wire: String, expected: String, kind: HTTPMessageError.Kind) {
        for piece in [Int.max, 1] {
            let error = Self.error(Array(wire.utf8), piece: piece)
            #expect(error?.description.contains(expected) == true, "\(wire.prefix(90).debugDescription) in pieces of \(piece): \(String(describing: error))")
            #expect(error?.kind == kind, "\(wire.prefix(90).debugDescription)")
        }
    }

    /// Header values travel the bus as text: bytes that are not UTF-8 would arrive changed, so they are refused.
    @Test func aValueThatIsNotUTF8IsRefusedAndOneThatIsIsKept() throws {
        let bad = Array("GET / HTTP/1.1\r\nHost: h\r\nX-A: caf".utf8) + [0xE9] + Array("\r\n\r\n".utf8)
        #expect(Self.error(bad, piece: .max)?.description.contains("not UTF-8 in the value of its header X-A") == true)
        let good = try #require(try HTTPRequestReaderTests.read("GET / HTTP/1.1\r\nHost: h\r\nX-A: café\tau lait\r\n\r\n"))
        #expect(good.head.headers.last == Header("X-A", "café\tau lait"))
    }

    @Test(arguments: [
        "GET / HTTP/1.0\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET HTTP://example.com/a HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        "GET / HTTP/1.1\r\nHost:\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n1 ;a=b\r\nx\r\n0\r\nX-T: 1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n",
    ])
    func whatIsUnambiguousIsRead(wire: String) throws {
        for piece in [Int.max, 1] {
            #expect(try HTTPRequestReaderTests.read(wire, piece: piece) != nil, "\(wire.debugDescription)")
        }
    }

    /// A proxy that makes tunnels (a sidecar's egress listener) reads CONNECT host:port, with no body: the bytes after
    /// its head are the tunnel's. Any other target, or a body, is refused.
    @Test func aProxyThatMakesTunnelsReadsConnect() throws {
        func read(_ wire: String) throws -> (HTTPRequestHead, Int) {
            var reader = HTTPRequestReader(maxBodyBytes: 1 << 20, tunnels: true)
            let taken = try Array(wire.utf8).withUnsafeBytes { try reader.consume($0) }
            let head = try #require(reader.head)
            #expect(reader.isComplete)
            return (head, taken)
        }
        let wire = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        let (head, taken) = try read(wire + "tunnel bytes")
        #expect(head.isConnect && head.target == "example.com:443")
        #expect(taken == wire.utf8.count, "the tunnel's bytes are not the request's")
        #expect(try read("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n").0.target == "[::1]:8443")
        for (target, why) in [("/path", "to something other than host:port"), ("example.com", "to something other than host:port"),
                              ("example.com:0", "to something other than host:port"), ("a:b@example.com:443", "to something other than host:port")] {
            #expect(throws: HTTPMessageError.self, "\(target) (\(why))") { try read("CONNECT \(target) HTTP/1.1\r\nHost: h\r\n\r\n") }
        }
        let body = #expect(throws: HTTPMessageError.self) {
            try read("CONNECT example.com:443 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
        }
        #expect(body?.description.contains("which CONNECT has not got") == true)
    }

    /// What a limit on the memory of all bodies counts: a body of known length from its head on, a chunked one as
    /// its chunks are announced.
    @Test func theBytesABodyHoldsAreCountedFromItsHead() throws {
        var fixed = HTTPRequestReader(maxBodyBytes: 1 << 20)
        _ = try Array("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\nab".utf8).withUnsafeBytes { try fixed.consume($0) }
        #expect(fixed.bodyBytesHeld == 1000)

        var chunked = HTTPRequestReader(maxBodyBytes: 1 << 20)
        _ = try Array("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".utf8).withUnsafeBytes { try chunked.consume($0) }
        #expect(chunked.bodyBytesHeld == 0)
        _ = try Array("a\r\n0123".utf8).withUnsafeBytes { try chunked.consume($0) }
        #expect(chunked.bodyBytesHeld == 10)
        _ = try Array("456789\r\n5\r\n".utf8).withUnsafeBytes { try chunked.consume($0) }
        #expect(chunked.bodyBytesHeld == 15)

        var none = HTTPRequestReader(maxBodyBytes: 1 << 20)
        _ = try Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8).withUnsafeBytes { try none.consume($0) }
        #expect(none.bodyBytesHeld == 0)
    }
}
