import BerthBus
import BerthWire
import Testing

@testable import BerthHTTP

/// The reading of a client's request, fed as a socket would: whole, a byte at a time, and at every split.
struct HTTPRequestReaderTests {
    struct Read: Equatable {
        var head: HTTPRequestHead
        var body: [UInt8]
        /// Bytes of the wire the reader did not take: those of the next request.
        var left: Int
    }

    /// Feeds `wire` in pieces of `piece` bytes until the request ends; nil when it did not.
    static func read(_ wire: String, piece: Int = .max, maxBodyBytes: Int = 1 << 20) throws -> Read? {
        let bytes = Array(wire.utf8)
        return try read(bytes, cuts: Array(stride(from: piece, to: bytes.count, by: piece)), maxBodyBytes: maxBodyBytes)
    }

    /// Feeds `bytes` in pieces that end at `cuts`, then the rest, until the request ends; nil when it did not.
    static func read(_ bytes: [UInt8], cuts: [Int], maxBodyBytes: Int = 1 << 20) throws -> Read? {
        var reader = HTTPRequestReader(maxBodyBytes: maxBodyBytes)
        var offset = 0
        for end in cuts + [bytes.count] where offset < end && !reader.isComplete {
            let taken = try bytes[offset..<end].withUnsafeBytes { try reader.consume($0) }
            offset += taken
            if offset < end { break }
        }
        guard reader.isComplete, let head = reader.head else { return nil }
        return Read(head: head, body: reader.takeBody().flatMap(\.bytes), left: bytes.count - offset)
    }

    static func error(_ wire: String, piece: Int = .max, maxBodyBytes: Int = 100) -> HTTPMessageError? {
        do {
            _ = try read(wire, piece: piece, maxBodyBytes: maxBodyBytes)
            return nil
        } catch {
            return error as? HTTPMessageError
        }
    }

    static func head(
        _ method: String = "GET", _ target: String = "/", minorVersion: Int = 1, _ headers: [Header],
        keepAlive: Bool = true, expectsContinue: Bool = false
    ) -> HTTPRequestHead {
        HTTPRequestHead(method: method, target: target, minorVersion: minorVersion, headers: headers, keepAlive: keepAlive, expectsContinue: expectsContinue)
    }

    static let get = "GET /search?q=berth&page=2 HTTP/1.1\r\nHost: example.com\r\nuser-agent: test/1.0\r\nAccept: */*\r\nAccept: text/plain\r\nX-Empty:\r\nX-Padded: \t padded value \t\r\n\r\n"
    static let lengthDelimited = "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world"
    static let chunked = "POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "5;name=value\r\nhello\r\n1 ; a=\"b\"\r\n \r\n005\r\nworld\r\nB\r\n, in chunks\r\n0;last\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n"

    @Test(arguments: [1, 2, 3, 7, 64, Int.max])
    func aRequestWithHeadersIsReadWhateverThePieces(piece: Int) throws {
        let read = try #require(try Self.read(Self.get, piece: piece))
        #expect(read == Read(
            head: Self.head("GET", "/search?q=berth&page=2", [
                Header("Host", "example.com"), Header("user-agent", "test/1.0"), Header("Accept", "*/*"), Header("Accept", "text/plain"),
                Header("X-Empty", ""), Header("X-Padded", "padded value"),
            ]),
            body: [], left: 0
        ))
        #expect(!read.head.isHead)
    }

    @Test(arguments: [1, 2, 3, 7, 64, Int.max])
    func aBodyOfKnownLengthIsReadWhateverThePieces(piece: Int) throws {
        let read = try #require(try Self.read(Self.lengthDelimited, piece: piece))
        #expect(read == Read(
            head: Self.head("POST", "/upload", [Header("Host", "example.com"), Header("Content-Type", "text/plain"), Header("Content-Length", "11")]),
            body: Array("hello world".utf8), left: 0
        ))
    }

    @Test(arguments: [1, 2, 5, 13, Int.max])
    func aChunkedBodyIsReadWithItsExtensionsAndTrailersLeftOut(piece: Int) throws {
        let read = try #require(try Self.read(Self.chunked, piece: piece))
        #expect(read.head == Self.head("POST", "/upload", [Header("Host", "example.com"), Header("Transfer-Encoding", "chunked")]))
        #expect(read.body == Array("hello world, in chunks".utf8))
        #expect(read.left == 0)
    }

    /// Wherever a socket's read happens to end: in the request line, a header, a chunk-size line, a CR LF.
    @Test(arguments: [get, lengthDelimited, chunked])
    func aRequestIsReadWhereverItIsSplit(wire: String) throws {
        let bytes = Array(wire.utf8)
        let whole = try #require(try Self.read(bytes, cuts: []))
        for split in 0...bytes.count {
            #expect(try Self.read(bytes, cuts: [split]) == whole, "split at \(split)")
        }
    }

    @Test func aBodyOfKnownLengthCanBeReadStraightIntoItsFrame() throws {
        var reader = HTTPRequestReader(maxBodyBytes: 100)
        #expect(reader.directBodyRoom() == nil, "no head yet")
        let wire = Array("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nab".utf8)
        let taken = try wire.withUnsafeBytes { try reader.consume($0) }
        #expect(taken == wire.count)
        let room = try #require(reader.directBodyRoom())
        #expect(room.count == 4)
        room.copyBytes(from: Array("cd".utf8))
        reader.filledDirectly(2)
        #expect(!reader.isComplete)
        let rest = try #require(reader.directBodyRoom())
        #expect(rest.count == 2)
        rest.copyBytes(from: Array("ef".utf8))
        reader.filledDirectly(2)
        #expect(reader.isComplete)
        #expect(reader.directBodyRoom() == nil)
        let body = reader.takeBody()
        #expect(body.count == 1, "one frame, no copies")
        #expect(body.flatMap(\.bytes) == Array("abcdef".utf8))
    }

    @Test func aBodyOfKnownLengthCanBeReadStraightIntoItsFrameFromItsFirstByte() throws {
        var reader = HTTPRequestReader(maxBodyBytes: 100)
        _ = try Array("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n".utf8).withUnsafeBytes { try reader.consume($0) }
        let room = try #require(reader.directBodyRoom())
        #expect(room.count == 5)
        room.copyBytes(from: Array("12345".utf8))
        reader.filledDirectly(5)
        #expect(reader.isComplete)
        let body = reader.takeBody()
        #expect(body.count == 1)
        #expect(body.flatMap(\.bytes) == Array("12345".utf8))
    }

    @Test func onlyABodyOfKnownLengthHasRoomToReadInto() throws {
        var chunked = HTTPRequestReader(maxBodyBytes: 100)
        _ = try Array("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".utf8).withUnsafeBytes { try chunked.consume($0) }
        #expect(chunked.head != nil)
        #expect(chunked.directBodyRoom() == nil)
        var empty = HTTPRequestReader(maxBodyBytes: 100)
        _ = try Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8).withUnsafeBytes { try empty.consume($0) }
        #expect(empty.isComplete)
        #expect(empty.directBodyRoom() == nil)
    }

    /// Whatever the first request and however it arrives, the reader stops at its end and a fresh one reads the next.
    @Test(arguments: [get, lengthDelimited, chunked], [1, 3, Int.max])
    func pipelinedRequestsAreReadOneByOne(first: String, piece: Int) throws {
        let second = "GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n"
        let bytes = Array((first + second).utf8)
        let alone = try #require(try Self.read(first))
        let firstRead = try #require(try Self.read(first + second, piece: piece))
        #expect(firstRead == Read(head: alone.head, body: alone.body, left: second.utf8.count))
        let secondRead = try #require(try Self.read(Array(bytes.suffix(firstRead.left)), cuts: []))
        #expect(secondRead == Read(head: Self.head("GET", "/next", [Header("Host", "example.com")]), body: [], left: 0))
    }

    @Test func oneConsumeTakesOnlyTheFirstOfTwoRequests() throws {
        let first = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"
        let second = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
        let wire = Array((first + second).utf8)
        var reader = HTTPRequestReader(maxBodyBytes: 100)
        let taken = try wire.withUnsafeBytes { try reader.consume($0) }
        #expect(taken == first.utf8.count)
        #expect(reader.isComplete)
        #expect(reader.head?.target == "/a")
        #expect(reader.takeBody().flatMap(\.bytes) == Array("ok".utf8))
        let again = try wire[taken...].withUnsafeBytes { try reader.consume($0) }
        #expect(again == 0, "a complete reader takes nothing more")

        var next = HTTPRequestReader(maxBodyBytes: 100)
        let nextTaken = try wire[taken...].withUnsafeBytes { try next.consume($0) }
        #expect(nextTaken == second.utf8.count)
        #expect(next.isComplete)
        #expect(next.head == Self.head("GET", "/b", [Header("Host", "h")]))
    }

    @Test func oneConsumeTakesOnlyTheFirstOfTwoRequestsWithoutBodies() throws {
        let wire = Array("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        var reader = HTTPRequestReader(maxBodyBytes: 100)
        let taken = try wire.withUnsafeBytes { try reader.consume($0) }
        #expect(taken == "GET /a HTTP/1.1\r\nHost: h\r\n\r\n".utf8.count)
        #expect(reader.isComplete)
        #expect(reader.head?.target == "/a")
    }

    /// RFC 9112 §2.2: a server should ignore empty lines before the request line (a client may send a CR LF after a
    /// body).
    @Test(arguments: ["\r\n", "\n"], [1, Int.max])
    func anEmptyLineBeforeTheRequestLineIsIgnored(leading: String, piece: Int) throws {
        let read = try #require(try Self.read(leading + "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", piece: piece))
        #expect(read.head == Self.head("GET", "/a", [Header("Host", "h")]))
    }

    @Test(arguments: ["\r\n\r\n", "\r\n\r\n\r\n", "\n\n", "\r\n\n"], [1, Int.max])
    func severalEmptyLinesBeforeTheRequestLineAreIgnored(leading: String, piece: Int) throws {
        let read = try #require(try Self.read(leading + "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", piece: piece))
        #expect(read.head == Self.head("GET", "/a", [Header("Host", "h")]))
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, Close\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", false),
        ("GET / HTTP/1.0\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
        ("GET / HTTP/1.0\r\nConnection: Upgrade, Keep-Alive\r\n\r\n", true),
        ("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false),
    ])
    func whetherTheConnectionCanBeKept(wire: String, keepAlive: Bool) throws {
        let read = try #require(try Self.read(wire))
        #expect(read.head.keepAlive == keepAlive, "\(wire.debugDescription)")
        #expect(read.head.minorVersion == (wire.contains("HTTP/1.0") ? 0 : 1))
    }

    /// A client that waits for a 100 before sending nothing would wait for ever: only a body is worth one.
    @Test(arguments: [
        ("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", true),
        ("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc", true),
        ("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", true),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", false),
        ("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", false),
    ])
    func expectContinueOnlyWhenABodyFollows(wire: String, expectsContinue: Bool) throws {
        let read = try #require(try Self.read(wire))
        #expect(read.head.expectsContinue == expectsContinue, "\(wire.debugDescription)")
    }

    @Test(arguments: [
        ("GET", "http://example.com:8080/a/../b?c=d%20e HTTP/1.1"),
        ("GET", "/a%20b?x=%2F HTTP/1.1"),
        ("OPTIONS", "* HTTP/1.1"),
    ])
    func theTargetIsKeptAsSent(method: String, rest: String) throws {
        let read = try #require(try Self.read("\(method) \(rest)\r\nHost: example.com\r\n\r\n"))
        #expect(read.head.method == method)
        #expect(read.head.target == String(rest.dropLast(" HTTP/1.1".count)))
    }

    @Test func headIsTheOnlyMethodWithoutABodyToItsAnswer() throws {
        #expect(try Self.read("HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n")?.head.isHead == true)
        #expect(try Self.read("GET /a HTTP/1.1\r\nHost: h\r\n\r\n")?.head.isHead == false)
        // Methods are case-sensitive (RFC 9110 §9.1).
        let lower = try #require(try Self.read("head /a HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(lower.head.method == "head")
        #expect(!lower.head.isHead)
    }

    @Test(arguments: [
        (" / HTTP/1.1\r\nHost: h\r\n\r\n", #"the request line has no valid method: " / HTTP/1.1""#),
        ("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", #"has no valid method: "G(T / HTTP/1.1""#),
        ("GET\r\n\r\n", "has no valid method"),
        ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", "has a target with a space or a control byte"),
        ("GET /\r\n\r\n", #"is not METHOD TARGET HTTP/1.x: "GET /""#),
        ("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", "has a target with a space or a control byte"),
        ("GET /a\u{01}b HTTP/1.1\r\nHost: h\r\n\r\n", "has a target with a space or a control byte"),
        ("GET /a\u{7F} HTTP/1.1\r\nHost: h\r\n\r\n", "has a target with a space or a control byte"),
        ("GET / HTTP/2.0\r\n\r\n", #"does not end with HTTP/1.0 or HTTP/1.1: "GET / HTTP/2.0""#),
        ("GET / HTTP/1.2\r\n\r\n", "does not end with HTTP/1.0 or HTTP/1.1"),
        ("GET / http/1.1\r\n\r\n", "does not end with HTTP/1.0 or HTTP/1.1"),
        ("GET / \r\n\r\n", "does not end with HTTP/1.0 or HTTP/1.1"),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n", "the request folds a header over two lines"),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\tfolded\r\n\r\n", "the request folds a header over two lines"),
        ("GET / HTTP/1.1\r\nHost: h\r\nBad Name: 1\r\n\r\n", "the request has a malformed header line"),
        ("GET / HTTP/1.1\r\nHost : h\r\n\r\n", "the request has a malformed header line"),
        ("GET / HTTP/1.1\r\nHost: h\r\nno colon here\r\n\r\n", "the request has a malformed header line"),
        ("GET / HTTP/1.1\r\nHost: h\r\n: no name\r\n\r\n", "the request has a malformed header line"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "the request has conflicting Content-Length values"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd", "the request has conflicting Content-Length values"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", "the request has an invalid Content-Length: -1"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\na", "the request has an invalid Content-Length: +1"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", "the request has an invalid Content-Length: 0x10"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", "the request has an invalid Content-Length: 99999999999999999999"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
         "the request has both Content-Length and Transfer-Encoding"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", "the request has both Content-Length and Transfer-Encoding"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", "the request has an invalid chunk size"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", "the request has an invalid chunk size"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", "the request has an invalid chunk size"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "the request has a chunk without a size"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n;ext\r\n", "the request has a chunk without a size"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", "a chunk of the request is longer than its size says"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;" + String(repeating: "e", count: 4096) + "\r\n",
         "a chunk-size line of the request is over 4096 bytes"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", "the body of the request is over the 100-byte limit"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999\r\n\r\n", "the body of the request is over the 100-byte limit"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", "the body of the request is over the 100-byte limit"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + String(repeating: "a", count: 64) + "\r\n40\r\n",
         "the body of the request is over the 100-byte limit"),
    ])
    func badRequestsAreRefusedWithWhatWasWrong(wire: String, expected: String) {
        for piece in [Int.max, 1] {
            let error = Self.error(wire, piece: piece)
            #expect(error?.description.contains(expected) == true, "\(wire.prefix(80).debugDescription) in pieces of \(piece): \(String(describing: error))")
            #expect(error?.tooLarge == expected.contains("limit"), "\(wire.prefix(80).debugDescription)")
        }
    }

    /// A Content-Length with no number in it says nothing of where the body ends: refused like any other bad one, not
    /// read as no length (the body would then be read as the next request).
    @Test(arguments: ["", ",", " , "])
    func aContentLengthWithoutANumberIsRefused(value: String) {
        let error = Self.error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \(value)\r\n\r\nabc")
        #expect(error?.description.contains("the request has an invalid Content-Length") == true, "\(value.debugDescription): \(String(describing: error))")
        #expect(error?.tooLarge == false)
    }

    /// The version is the line's last word, so a space inside the target is named for what it is; the line is quoted.
    @Test func aTargetWithASpaceIsRefused() {
        let error = Self.error("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(error?.description.contains(#"the request line has a target with a space or a control byte"#) == true, "\(String(describing: error))")
        #expect(error?.description.contains(#""GET /a b HTTP/1.1""#) == true, "\(String(describing: error))")
        #expect(error?.tooLarge == false)
    }

    @Test func aHeadOverTheLimitIsRefused() {
        let wire = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + String(repeating: "a", count: HTTPRequestReader.maxHeadBytes) + "\r\n\r\n"
        for piece in [Int.max, 1000, 1] {
            let error = Self.error(wire, piece: piece)
            #expect(error?.description == "the head of the request is over \(HTTPRequestReader.maxHeadBytes) bytes", "in pieces of \(piece)")
            // Not the body's limit (413 at the edge) but the head's (431).
            #expect(error?.tooLarge == false)
            #expect(error?.headTooLarge == true)
        }
    }

    @Test func aHeadOfExactlyTheLimitIsRead() throws {
        let start = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: "
        let filler = HTTPRequestReader.maxHeadBytes - start.utf8.count - "\r\n\r\n".utf8.count
        let wire = start + String(repeating: "a", count: filler) + "\r\n\r\n"
        #expect(wire.utf8.count == HTTPRequestReader.maxHeadBytes)
        let read = try #require(try Self.read(wire, piece: 4096))
        #expect(read.head.headers == [Header("Host", "h"), Header("X-Big", String(repeating: "a", count: filler))])
        #expect(Self.error("GET / HTTP/1.1\r\nHost: h\r\nX-Big: a" + String(repeating: "a", count: filler) + "\r\n\r\n")?.description.contains("head of the request is over") == true)
    }

    @Test func trailersOverTheLimitAreRefused() {
        let wire = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Big: " + String(repeating: "a", count: HTTPRequestReader.maxHeadBytes) + "\r\n\r\n"
        let error = Self.error(wire)
        #expect(error?.description == "the trailers of the request are over \(HTTPRequestReader.maxHeadBytes) bytes")
        #expect(error?.tooLarge == false)
    }

    /// The edge answers a request refused for its size, so it needs the head: its version, whether it keeps the
    /// connection.
    @Test func theHeadIsKeptWhenTheBodyIsTooLargeByItsLength() {
        var reader = HTTPRequestReader(maxBodyBytes: 100)
        let wire = Array("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n".utf8)
        #expect(throws: HTTPMessageError("the body of the request is over the 100-byte limit", tooLarge: true)) {
            _ = try wire.withUnsafeBytes { try reader.consume($0) }
        }
        #expect(reader.head == Self.head("POST", "/big", [Header("Host", "h"), Header("Content-Length", "101")]))
        #expect(!reader.isComplete)
    }

    @Test func theHeadIsKeptWhenTheBodyIsTooLargeByItsChunks() {
        var reader = HTTPRequestReader(maxBodyBytes: 100)
        let wire = Array(("PUT /big HTTP/1.1\r\nHost: h\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + String(repeating: "a", count: 64) + "\r\n40\r\n").utf8)
        #expect(throws: HTTPMessageError("the body of the request is over the 100-byte limit", tooLarge: true)) {
            _ = try wire.withUnsafeBytes { try reader.consume($0) }
        }
        #expect(reader.head?.target == "/big")
        #expect(reader.head?.keepAlive == false)
    }

    @Test func aBodyOfExactlyTheLimitIsRead() throws {
        let body = String(repeating: "b", count: 100)
        #expect(try Self.read("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n" + body, maxBodyBytes: 100)?.body == Array(body.utf8))
        let chunked = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n" + String(body.prefix(50)) + "\r\n32\r\n" + String(body.prefix(50)) + "\r\n0\r\n\r\n"
        #expect(try Self.read(chunked, maxBodyBytes: 100)?.body == Array(body.utf8))
    }

    @Test func aRequestStartsWithItsFirstByte() throws {
        var reader = HTTPRequestReader(maxBodyBytes: 100)
        #expect(!reader.hasStarted)
        #expect(try [UInt8]().withUnsafeBytes { try reader.consume($0) } == 0)
        #expect(!reader.hasStarted)
        #expect(try Array("G".utf8).withUnsafeBytes { try reader.consume($0) } == 1)
        #expect(reader.hasStarted)
        #expect(reader.head == nil)
        #expect(!reader.isComplete)
    }

    @Test func aRequestCutShortIsNotComplete() throws {
        #expect(try Self.read("GET / HTTP/1.1\r\nHost: h\r\n") == nil)
        #expect(try Self.read("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc") == nil)
        #expect(try Self.read("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n") == nil)

        var reader = HTTPRequestReader(maxBodyBytes: 100)
        _ = try Array("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc".utf8).withUnsafeBytes { try reader.consume($0) }
        let cutShort = reader.endOfInput()
        #expect(!cutShort, "a request's body never ends with the connection")
        var whole = HTTPRequestReader(maxBodyBytes: 100)
        _ = try Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8).withUnsafeBytes { try whole.consume($0) }
        let complete = whole.endOfInput()
        #expect(complete)
    }
}
