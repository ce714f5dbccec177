import BerthWire
import Testing

@testable import BerthSidecar

/// The request line and headers the app receives.
struct RequestHeadTests {
    static func encode(_ request: Request, bodyBytes: Int = 0) throws(RequestHead.Invalid) -> String {
        String(decoding: try RequestHead.encode(request, host: "127.0.0.1", port: 8080, bodyBytes: bodyBytes), as: UTF8.self)
    }

    @Test func hopByHopHeadersGoAndHostAndLengthAreSet() throws {
        let request = Request(id: 1, target: Target(className: "A"), method: "POST", path: "/p", query: "a=1&b", headers: [
            Header("Connection", "keep-alive"), Header("X-One", "1"), Header("Transfer-Encoding", "chunked"),
            Header("Content-Length", "999"), Header("X-Two", "two words"),
        ])
        #expect(try Self.encode(request, bodyBytes: 5) == "POST /p?a=1&b HTTP/1.1\r\nX-One: 1\r\nX-Two: two words\r\nhost: 127.0.0.1:8080\r\ncontent-length: 5\r\n\r\n")
        let withHost = Request(id: 1, target: Target(className: "A"), method: "GET", path: "", headers: [Header("Host", "example.com")])
        #expect(try Self.encode(withHost) == "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
    }

    @Test func everyHopByHopNameInAnyCaseAndNoOtherIsLeftOut() throws {
        let hopByHop = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "transfer-encoding", "upgrade"]
        for name in hopByHop {
            #expect(HopByHop.contains(name) && HopByHop.contains(name.uppercased()), "\(name)")
        }
        // The same lengths, one byte off; and names that are a hop-by-hop one's prefix or extension.
        for name in ["tf", "trailed", "upgrada", "connectiom", "keep_alive", "proxy-connectiom", "transfer-encodinh",
                     "proxy-authenticatf", "proxy-authorizatioN2", "t", "tes", "x-connection", "content-length", "host", ""] {
            #expect(!HopByHop.contains(name), "\(name)")
        }
        let request = Request(id: 1, target: Target(className: "A"), method: "GET", path: "/",
                              headers: hopByHop.map { Header($0.uppercased(), "x") } + [Header("Trailers", "kept")])
        #expect(try Self.encode(request) == "GET / HTTP/1.1\r\nTrailers: kept\r\nhost: 127.0.0.1:8080\r\n\r\n")
    }

    @Test(arguments: [
        Request(id: 1, target: Target(className: "A"), method: "GET", path: "/", headers: [Header("X-A", "1\r\nX-Injected: 1")]),
        Request(id: 1, target: Target(className: "A"), method: "GET", path: "/", headers: [Header("X-A", "nul\u{0}")]),
        Request(id: 1, target: Target(className: "A"), method: "GET", path: "/", headers: [Header("X A", "1")]),
        Request(id: 1, target: Target(className: "A"), method: "GET", path: "/", headers: [Header("", "1")]),
        Request(id: 1, target: Target(className: "A"), method: "GET", path: "/a b"),
        Request(id: 1, target: Target(className: "A"), method: "GET", path: "/a\r\nHost: x"),
        Request(id: 1, target: Target(className: "A"), method: "GET", path: "/", query: "a=1 HTTP/1.1"),
        Request(id: 1, target: Target(className: "A"), method: "GET /x", path: "/"),
        Request(id: 1, target: Target(className: "A"), method: "", path: "/"),
    ])
    func whatWouldReadAsTwoRequestsIsRefused(request: Request) {
        #expect(throws: RequestHead.Invalid.self) { try Self.encode(request) }
    }
}
