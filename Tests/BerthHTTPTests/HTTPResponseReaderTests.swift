import BerthBus
import BerthWire
import Testing

@testable import BerthHTTP

/// The reading of an app's answer, fed as a socket would: whole, a byte at a time, and at every split.
struct HTTPResponseReaderTests {
    struct Read: Equatable {
        var status: Int
        var headers: [Header]
        var keepAlive: Bool
        var body: [UInt8]
    }

    /// Feeds `wire` in pieces of `piece` bytes; the connection closes after it when `close`.
    static func read(_ wire: String, piece: Int = .max, requestWasHead: Bool = false, maxBodyBytes: Int = 1 << 20, close: Bool = false) throws -> Read? {
        let bytes = Array(wire.utf8)
        var reader = HTTPResponseReader(requestWasHead: requestWasHead, maxBodyBytes: maxBodyBytes)
        var offset = 0
        while offset < bytes.count && !reader.isComplete {
            let end = min(bytes.count, offset + piece)
            let taken = try bytes[offset..<end].withUnsafeBytes { try reader.consume($0) }
            offset += taken
            if taken < end - (offset - taken) { break }
        }
        if close && !reader.endOfInput() { return nil }
        guard reader.isComplete, let head = reader.head else { return nil }
        return Read(status: head.status, headers: head.headers, keepAlive: head.keepAlive, body: reader.takeBody().flatMap(\.bytes))
    }

    static func error(_ wire: String, requestWasHead: Bool = false, maxBodyBytes: Int = 1 << 20) -> HTTPMessageError? {
        do {
            _ = try read(wire, requestWasHead: requestWasHead, maxBodyBytes: maxBodyBytes, close: true)
            return nil
        } catch {
            return error as? HTTPMessageError
        }
    }

    static let lengthDelimited = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nX-Empty:\r\n\r\nhello world"
    static let chunked = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n1\r\n \r\n005\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"

    @Test(arguments: [1, 2, 3, 7, 64, Int.max])
    func aBodyOfKnownLengthIsReadWhateverThePieces(piece: Int) throws {
        let read = try #require(try Self.read(Self.lengthDelimited, piece: piece))
        #expect(read == Read(status: 200, headers: [Header("Content-Type", "text/plain"), Header("Content-Length", "11"), Header("X-Empty", "")],
                             keepAlive: true, body: Array("hello world".utf8)))
    }

    @Test(arguments: [1, 2, 5, 13, Int.max])
    func aChunkedBodyIsReadWithItsExtensionsAndTrailersLeftOut(piece: Int) throws {
        let read = try #require(try Self.read(Self.chunked, piece: piece))
        #expect(read.status == 201)
        #expect(read.keepAlive)
        #expect(read.body == Array("hello world".utf8))
    }

    @Test func aBodyWithoutLengthEndsWithTheConnection() throws {
        let wire = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"
        #expect(try Self.read(wire) == nil, "not complete before the connection closes")
        let read = try #require(try Self.read(wire, close: true))
        #expect(read.body == Array("until the end".utf8))
        #expect(!read.keepAlive)
    }

    @Test func answersWithoutABodyIgnoreTheirLength() throws {
        #expect(try Self.read("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", requestWasHead: true)?.body == [])
        #expect(try Self.read("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n")?.status == 204)
        #expect(try Self.read("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n")?.status == 304)
    }

    @Test func interimAnswersAreSkipped() throws {
        let read = try #require(try Self.read("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + Self.lengthDelimited, piece: 3))
        #expect(read.status == 200)
        #expect(read.body == Array("hello world".utf8))
    }

    @Test func whetherTheConnectionCanBeKept() throws {
        #expect(try Self.read("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")?.keepAlive == false)
        #expect(try Self.read("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n")?.keepAlive == false)
        #expect(try Self.read("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")?.keepAlive == false)
        #expect(try Self.read("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")?.keepAlive == true)
        // A length beside a transfer coding: the coding wins and the connection is not trusted again.
        let both = try #require(try Self.read("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"))
        #expect(both.body == Array("ok".utf8))
        #expect(!both.keepAlive)
    }

    @Test func bytesAfterTheAnswerAreNotTaken() throws {
        var reader = HTTPResponseReader(requestWasHead: false, maxBodyBytes: 100)
        let wire = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n".utf8)
        let taken = try wire.withUnsafeBytes { try reader.consume($0) }
        #expect(reader.isComplete)
        #expect(taken == wire.count - "HTTP/1.1 200 OK\r\n".utf8.count)
    }

    @Test func aBodyOfKnownLengthCanBeReadStraightIntoItsFrame() throws {
        var reader = HTTPResponseReader(requestWasHead: false, maxBodyBytes: 100)
        _ = try Array("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab".utf8).withUnsafeBytes { try reader.consume($0) }
        let room = try #require(reader.directBodyRoom())
        #expect(room.count == 4)
        room.copyBytes(from: Array("cdef".utf8))
        reader.filledDirectly(4)
        #expect(reader.isComplete)
        let body = reader.takeBody()
        #expect(body.count == 1, "one frame, no copies")
        #expect(body.flatMap(\.bytes) == Array("abcdef".utf8))
    }

    @Test(arguments: [
        ("", "closed the connection"),
        ("NOT HTTP AT ALL\r\n\r\n", "does not start with an HTTP/1.x status line: NOT HTTP AT ALL"),
        ("HTTP/2 200 OK\r\n\r\n", "status line"),
        ("HTTP/1.1 20 OK\r\n\r\n", "status line"),
        ("HTTP/1.1 099 Odd\r\n\r\n", "not an HTTP status"),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "switched protocols"),
        ("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", "folds a header"),
        ("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
        ("HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", "malformed header line"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "conflicting Content-Length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length: -1"),
        ("HTTP/1.1 200 OK\r\nContent-Length: ,\r\n\r\nabc", "invalid Content-Length: ,"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "invalid Content-Length"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", "invalid chunk size"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "chunk without a size"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", "longer than its size"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n", "over the 100-byte limit"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + String(repeating: "a", count: 64) + "\r\n40\r\n", "over the 100-byte limit"),
        ("HTTP/1.1 200 OK\r\n\r\n" + String(repeating: "a", count: 101), "over the 100-byte limit"),
    ])
    func badAnswersAreRefusedWithWhatWasWrong(wire: String, expected: String) {
        let refused: Bool
        do {
            refused = try Self.read(wire, maxBodyBytes: 100, close: true) == nil
        } catch {
            let error = error as? HTTPMessageError
            #expect(error?.description.contains(expected) == true, "\(wire.debugDescription): \(String(describing: error))")
            #expect(error?.tooLarge == expected.contains("limit"))
            return
        }
        #expect(refused && expected == "closed the connection", "\(wire.debugDescription) was taken")
    }

    @Test func aHeadOverTheLimitIsRefused() {
        let wire = "HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "a", count: HTTPResponseReader.maxHeadBytes) + "\r\n\r\n"
        #expect(Self.error(wire)?.description.contains("head of the app's answer is over") == true)
    }

    /// An interim answer means the app saw the request: a connection closed after it must not look unanswered.
    @Test func anInterimAnswerCountsAsStarted() throws {
        var reader = HTTPResponseReader(requestWasHead: false, maxBodyBytes: 100)
        #expect(!reader.hasStarted)
        _ = try Array("HTTP/1.1 100 Continue\r\n\r\n".utf8).withUnsafeBytes { try reader.consume($0) }
        #expect(reader.hasStarted)
        let complete = reader.endOfInput()
        #expect(!complete)
    }

    @Test func anAnswerCutShortIsNotComplete() throws {
        #expect(try Self.read("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", close: true) == nil)
        #expect(try Self.read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", close: true) == nil)
        #expect(try Self.read("HTTP/1.1 200 OK\r\nContent-Le", close: true) == nil)
    }
}

/// Bodies read as streams (`streamAbove`): taken piece by piece as they come, never held whole, never capped.
@Suite struct StreamingBodyTests {
    func consume(_ reader: inout HTTPResponseReader, _ text: String) throws -> Int {
        try Array(text.utf8).withUnsafeBytes { try reader.consume($0) }
    }

    @Test func aBodyOfKnownLengthOverTheThresholdStreamsInPieces() throws {
        var reader = HTTPResponseReader(requestWasHead: false, maxBodyBytes: 4, streamAbove: 4)
        _ = try consume(&reader, "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        #expect(reader.bodyStreamsFromStart)
        #expect(reader.directBodyRoom() == nil, "no frame is made for the whole body")
        #expect(reader.takeAvailableBody().map(\.bytes) == [Array("abc".utf8)])
        #expect(reader.takeAvailableBody().isEmpty)
        _ = try consume(&reader, "defghij")
        #expect(reader.isComplete)
        #expect(reader.takeAvailableBody().map(\.bytes) == [Array("defghij".utf8)])
    }

    @Test func aBodyOfKnownLengthUnderTheThresholdIsReadWhole() throws {
        var reader = HTTPResponseReader(requestWasHead: false, maxBodyBytes: 100, streamAbove: 64)
        _ = try consume(&reader, "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n")
        #expect(!reader.bodyStreamsFromStart)
        #expect(reader.directBodyRoom() != nil)
    }

    @Test func aChunkedBodyThatStreamsIsNotHeldToTheLimit() throws {
        var reader = HTTPResponseReader(requestWasHead: false, maxBodyBytes: 4, streamAbove: 4)
        _ = try consume(&reader, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nabcdef\r\n")
        #expect(reader.takeAvailableBody().map(\.bytes) == [Array("abcdef".utf8)])
        _ = try consume(&reader, "6\r\nghijkl\r\n0\r\n\r\n")
        #expect(reader.isComplete)
        #expect(reader.bodyCount == 12)
    }

    @Test func withoutStreamingAChunkedBodyIsHeldToTheLimit() throws {
        var reader = HTTPResponseReader(requestWasHead: false, maxBodyBytes: 4)
        #expect(throws: HTTPMessageError.self) { _ = try consume(&reader, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nabcdef\r\n") }
    }
}
