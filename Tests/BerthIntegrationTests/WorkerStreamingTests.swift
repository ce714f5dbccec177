import AsyncHTTPClient
import BerthTap
import BerthWire
import Foundation
import NIOHTTP1
import Testing

/// A Worker that takes bodies as streams (issue 17): it builds a stream of its own, reads one piece by piece, collects
/// one up to a limit, and a stream of its that fails reaches the client cut. `streaming-edge` is that Worker; the
/// streams it passes through are tested beside the declarative routes' in `StreamingTests`.
@Suite(.serialized)
struct WorkerStreamingTests {
    @Test func aStreamTheWorkerBuildsReachesTheClientWhileOpen() async throws {
        try await withMesh { mesh in
            try await StreamingTests.start(mesh, via: .worker)
            let events = try RawConnection(port: mesh.edgePort)
            events.send("GET /ticks/3 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
            #expect(events.readsUntil("data: tick 0\n\n"), "\(events.rest)")
            #expect(events.rest.lowercased().contains("transfer-encoding: chunked"), "\(events.rest)")
            for index in 1..<3 {
                #expect(!events.rest.contains("data: tick \(index)"), "tick \(index) came before it was asked for")
                let (next, _) = try await mesh.get("/tick")
                #expect(next.status == .ok)
                #expect(events.readsUntil("data: tick \(index)\n\n"), "tick \(index): \(events.rest)")
            }
            #expect(events.readsUntil("\r\n0\r\n\r\n"), "the stream ends cleanly: \(events.rest)")
            // The connection goes on.
            events.send("GET /tick HTTP/1.1\r\nHost: x\r\n\r\n")
            let after = try events.answer()
            #expect(after.status == 200, "\(after.head)")
        }
    }

    /// A body of unknown length reaches the Worker as it comes, with the edge's memory flat; a small one reaches it
    /// whole, and reads the same way.
    @Test func theWorkerReadsABodyPieceByPiece() async throws {
        try await withMesh { mesh in
            try await StreamingTests.start(mesh, via: .worker)
            let size = 256 << 20
            let (status, output, peaks) = try await StreamingTests.runWatchingMemory(
                "python3 \(Paths.streamApp.path) --pattern \(size) | curl -sS --fail -T - -X POST http://127.0.0.1:\(mesh.edgePort)/length",
                of: [("edge", mesh.edge!.pid)]
            )
            #expect(status == 0, "\(output)")
            #expect(output.contains("\"length\": \(size)"), "\(output)")
            #expect((peaks["edge"] ?? 0) <= StreamingTests.residentLimit, "the edge held \((peaks["edge"] ?? 0) >> 20) MiB resident")
            let small = try RawConnection(port: mesh.edgePort)
            small.send("POST /length HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            let answer = try small.answer()
            #expect(answer.status == 200 && answer.text.contains("\"length\": 5"), "\(answer.head)\(answer.text)")
        }
    }

    /// `collect(upTo:)` reads a body that streams whole, and stops at its limit: the Worker answers 413 without the
    /// rest, which the edge reads and drops, so the connection goes on.
    @Test func collectStopsAtItsLimit() async throws {
        try await withMesh { mesh in
            try await StreamingTests.start(mesh, via: .worker)
            let connection = try RawConnection(port: mesh.edgePort)
            let over = 3 << 20
            connection.send("POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: \(over)\r\n\r\n")
            connection.send([UInt8](repeating: 0x61, count: over))
            let refused = try connection.answer()
            #expect(refused.status == 413, "\(refused.head)")
            #expect(refused.text.contains("more than the 1048576 bytes"), "\(refused.text)")
            let under = 900_000
            connection.send("POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: \(under)\r\n\r\n")
            connection.send([UInt8](repeating: 0x62, count: under))
            let collected = try connection.answer()
            #expect(collected.status == 200 && collected.text.contains("\"length\": \(under)"), "\(collected.head)\(collected.text)")
        }
    }

    /// A stream of the Worker's that fails after its first piece: the client gets that piece, then a reset, never a
    /// clean end.
    @Test func aWorkersStreamThatFailsCutsTheClientsBody() async throws {
        try await withMesh { mesh in
            try await StreamingTests.start(mesh, via: .worker)
            let client = try RawConnection(port: mesh.edgePort)
            client.send("GET /broken HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(client.readsUntil("the first piece\n"), "\(client.rest)")
            #expect(client.readsToEnd(), "the connection stays open after the stream failed")
            #expect(!client.rest.contains("\r\n0\r\n\r\n"), "the body looks whole: \(client.rest)")
            #expect(mesh.logs.contains("the source broke after its first piece"), "the edge does not say why")
        }
    }

    /// The client's request to a Worker that passed a stream through gets one event, when the stream is over, with
    /// its bytes, marked as streamed.
    @Test func theClientsRequestEventCountsTheStreamedBytes() async throws {
        try await withMesh { mesh in
            try await StreamingTests.start(mesh, via: .worker)
            let size = 3_000_000
            let event: TrafficEvent = try await EventStreamTests.withSubscription(mesh, topics: ["traffic."]) { items in
                let sending = Task {
                    for index in 0..<50 {
                        _ = try await mesh.get("/s/download/\(size)", headers: [("x-request-id", "download-\(index)")])
                        try await Task.sleep(for: .milliseconds(200))
                    }
                }
                defer { sending.cancel() }
                for try await item in items {
                    guard case .event(let tapped) = item, case .traffic(let event) = tapped.event,
                          event.xRequestID.hasPrefix("download-"), event.source.className == EventNames.clientClass else { continue }
                    return event
                }
                throw MeshNotUp(logs: mesh.logs)
            }
            #expect(event.bytesOut == UInt64(size) && event.streamed && event.status == 200, "\(event)")
        }
    }
}
