import ArgumentParser
import BerthCommandLine
import BerthEdge
import Synchronization

/// A Worker that takes bodies as streams (`streamsBodies`), to show what one can do with them:
/// - any path of the edge's `--route`s goes to its container as it came, and the answer back as it comes: a body of
///   any size passes through the Worker in both directions with no more than a window held, and a WebSocket passes
///   through both ways until either side closes;
/// - `POST /length` reads the body piece by piece and says how long it was, and `POST /collect` reads it whole, up to
///   1 MiB;
/// - `GET /ticks/N` answers with server-sent events it makes itself, one per `GET /tick` from another client;
/// - `GET /broken` answers with a stream that fails after its first piece: its client sees the body cut.
struct StreamingWorker: Worker {
    let routes: RoutesWorker
    let ticks = Ticks()

    var streamsBodies: Bool { true }

    func fetch(_ request: EdgeRequest, env: Environment) async throws -> EdgeResponse {
        switch (request.method, request.path) {
        case ("POST", "/length"):
            var length = 0
            for try await piece in request.body { length += piece.readableBytes }
            return .json("{\"length\": \(length)}")
        case ("POST", "/collect"):
            do {
                let body = try await request.body.collect(upTo: 1 << 20)
                return .json("{\"length\": \(body.readableBytes)}")
            } catch let error as BodyError where error.kind == .tooLarge {
                return .text("\(error)\n", status: 413)
            }
        case ("GET", "/tick"):
            ticks.next()
            return .text("ok\n")
        case ("GET", _) where request.path.hasPrefix("/ticks/"):
            let count = Int(request.path.dropFirst("/ticks/".count)) ?? 3
            let events = AsyncStream<ByteBuffer> { continuation in
                let task = Task {
                    for index in 0..<count {
                        if index > 0 { await ticks.wait() }
                        continuation.yield(ByteBuffer(string: "id: \(index)\ndata: tick \(index)\n\n"))
                    }
                    continuation.finish()
                }
                continuation.onTermination = { _ in task.cancel() }
            }
            return EdgeResponse(status: 200, headers: [Header("content-type", "text/event-stream")], body: Body(stream: events))
        case ("GET", "/broken"):
            let pieces = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
                continuation.yield(ByteBuffer(string: "the first piece\n"))
                continuation.finish(throwing: BrokenSource())
            }
            return EdgeResponse(status: 200, body: Body(stream: pieces))
        default:
            return try await routes.fetch(request, env: env)
        }
    }
}

struct BrokenSource: Error, CustomStringConvertible {
    var description: String { "the source broke after its first piece" }
}

/// Lets the ticks of `/ticks/N` go one at a time, each when `/tick` is asked.
final class Ticks: Sendable {
    private struct State {
        var granted = 0
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func next() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.granted += 1
                return nil
            }
            state.waiter = nil
            return waiter
        }?.resume()
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                guard state.granted == 0 else {
                    state.granted -= 1
                    return true
                }
                state.waiter = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

@main
struct StreamingEdge: BerthExecutable {
    static let configuration = CommandConfiguration(
        commandName: "streaming-edge",
        abstract: "An edge whose Worker streams bodies: passes them through, reads them, and makes its own."
    )

    @OptionGroup var edge: EdgeOptions

    func run() async throws {
        try await edge.run(label: "streaming-edge") { routes in StreamingWorker(routes: RoutesWorker(routes: routes)) }
    }
}
