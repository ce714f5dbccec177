// Container A of the original demo: a small HTTP app that hands out JSON events.
//
//   GET /get-payload  → {"from":"ContainerA","instance":…,"message":…,"sequence":N,"time":…}
//   GET /health       → 200 "ok"
//
// Configured by environment, as a sidecar starts it: PORT (8080), BERTH_INSTANCE ("a"), GREETING ("hello from A").
// Exits 0 on SIGTERM or SIGINT.

import Foundation
import Hummingbird

let environment = Environment()
let port = environment.get("PORT").flatMap(Int.init) ?? 8080
let instance = environment.get("BERTH_INSTANCE") ?? "a"
let greeting = environment.get("GREETING") ?? "hello from A"

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
router.get("/get-payload") { _, _ -> Response in
    let payload = Payload(
        instance: instance,
        message: greeting,
        sequence: await sequencer.next(),
        time: Date().formatted(.iso8601)
    )
    return Response(
        status: .ok,
        headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(payload)))
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
