// Container A of the original demo: a small HTTP app that hands out JSON events.
//
//   GET /get-payload  → {"from":"ContainerA","instance":…,"message":…,"sequence":N,"time":…}
//   GET /send-to-b    → posts a payload to ContainerB itself, through its own sidecar ($BERTH_URL/ContainerB/receive),
//                       passing on the traceparent it received, and answers with B's answer (Compose/egress.yaml)
//   GET /health       → 200 "ok"
//
// Configured by environment, as a sidecar starts it: PORT (8080), BERTH_INSTANCE ("a"), GREETING ("hello from A"),
// BERTH_URL (its sidecar's egress listener).
// Exits 0 on SIGTERM or SIGINT.

import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOHTTP1

let environment = Environment()
let port = environment.get("PORT").flatMap(Int.init) ?? 8080
let instance = environment.get("BERTH_INSTANCE") ?? "a"
let greeting = environment.get("GREETING") ?? "hello from A"
let berthURL = environment.get("BERTH_URL")

/// One line to stdout, written straight through so it is never stuck in a buffer when stdout is a pipe.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// The event `/get-payload` answers with.
struct Payload: Encodable {
    var from = "ContainerA"
    var instance: String
    var message: String
    var sequence: Int
    var time: String
}

/// Numbers the payloads this process has handed out, from 1.
actor Sequencer {
    private var last = 0
    func next() -> Int {
        last += 1
        return last
    }
}

/// Prints `METHOD PATH -> STATUS` for every request, including the ones that end in an error.
struct RequestLineMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            say("\(request.method) \(request.uri.path) -> \(response.status.code)")
            return response
        } catch let error as any HTTPResponseError {
            say("\(request.method) \(request.uri.path) -> \(error.status.code)")
            throw error
        } catch {
            say("\(request.method) \(request.uri.path) -> 500")
            throw error
        }
    }
}

let sequencer = Sequencer()
let encoder = JSONEncoder()
encoder.outputFormatting = .sortedKeys

let router = Router()
router.add(middleware: RequestLineMiddleware())
func payload() async throws -> ByteBuffer {
    let payload = Payload(
        instance: instance,
        message: greeting,
        sequence: await sequencer.next(),
        time: Date().formatted(.iso8601)
    )
    return ByteBuffer(bytes: try encoder.encode(payload))
}

router.get("/get-payload") { _, _ -> Response in
    Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try await payload()))
}
router.get("/send-to-b") { request, _ -> Response in
    guard let berthURL else {
        return Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "BERTH_URL is not set: no sidecar to send through\n")))
    }
    var outgoing = HTTPClientRequest(url: berthURL + "/ContainerB/receive")
    outgoing.method = .POST
    outgoing.headers.add(name: "content-type", value: "application/json")
    // Passing the trace on is all it takes for B's side to join it.
    for name in ["traceparent", "tracestate", "x-request-id"] {
        if let value = request.headers[HTTPField.Name(name)!] { outgoing.headers.add(name: name, value: value) }
    }
    outgoing.body = .bytes(try await payload())
    let answer = try await HTTPClient.shared.execute(outgoing, timeout: .seconds(30))
    var headers = HTTPFields()
    if let type = answer.headers.first(name: "content-type") { headers[.contentType] = type }
    return Response(
        status: .init(code: Int(answer.status.code)), headers: headers,
        body: .init(byteBuffer: try await answer.body.collect(upTo: 1 << 20))
    )
}
router.get("/health") { _, _ in "ok" }

// Hummingbird logs "server started" at info level on stdout; our own start line says the same, so keep the
// framework quiet unless LOG_LEVEL asks otherwise.
setenv("LOG_LEVEL", "warning", 0)

let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "demo-container-a"),
    onServerRunning: { _ in say("container A listening on \(port)") }
)
try await app.runService()
