import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing

/// Clients that send too slowly or hold too much: the edge bounds what each costs, and keeps serving the others.
@Suite(.serialized)
struct SlowClientTests {
    /// Opens `count` connections that each start a head and then send one more byte of it every `every`, for ever.
    static func trickling(_ count: Int, port: Int) throws -> [RawConnection] {
        try (0..<count).map { _ in
            let connection = try RawConnection(port: port)
            connection.send("GET /a/echo HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            return connection
        }
    }

    /// Sends the next byte on every connection still open, and notes which the edge closed.
    static func trickle(_ connections: [RawConnection]) {
        for connection in connections where connection.readAvailable() {
            connection.send("s")
        }
    }

    /// Slowloris: 500 connections trickle their heads a byte at a time. Other clients are served all along, and each
    /// trickling connection gets 408 and is closed once its header timeout passes, however steadily it sends.
    @Test func slowHeadsAreClosedAtTheHeaderTimeoutAndOthersAreServed() async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance(edgeArguments: ["--header-timeout", "2s"])
            let slow = try Self.trickling(500, port: mesh.edgePort)
            let started = ContinuousClock.now
            var served = 0
            while slow.contains(where: { !$0.closed }) && started.duration(to: .now) < .seconds(30) {
                Self.trickle(slow)
                let (response, body) = try await mesh.get("/a/echo?other=\(served)")
                #expect(response.status == .ok, "\(body)")
                if response.status == .ok { served += 1 }
                try await Task.sleep(for: .milliseconds(200)) // the trickle's pace: a client's behaviour, not a wait
            }
            let open = slow.filter { !$0.closed }.count
            #expect(open == 0, "\(open) trickling connections still open after \(started.duration(to: .now))")
            let timedOut = slow.filter { $0.rest.hasPrefix("HTTP/1.1 408 Request Timeout\r\n") }.count
            #expect(timedOut == slow.count, "each trickling connection is told why: \(slow.first { !$0.rest.hasPrefix("HTTP/1.1 408") }?.rest.prefix(200) ?? "")")
            #expect(served > 5, "other clients were served while the 500 trickled: \(served)")
            let (after, _) = try await mesh.get("/a/instance")
            #expect(after.status == .ok)
        }
    }

    /// A kept-alive connection between requests is under the idle timeout, not the header timeout: only a head that
    /// has begun is on the clock.
    @Test func aKeptConnectionIsNotClosedForTheHeaderTimeoutBetweenRequests() async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance(edgeArguments: ["--header-timeout", "300ms", "--idle-timeout", "60s"])
            let kept = try RawConnection(port: mesh.edgePort)
            kept.send("GET /a/echo?first HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try kept.answer().status == 200)
            // Longer than the header timeout, between two requests: a slow app's answer is the wait.
            let (slow, _) = try await mesh.get("/a/slow/900")
            #expect(slow.status == .ok)
            kept.send("GET /a/echo?second HTTP/1.1\r\nHost: x\r\n\r\n")
            let second = try kept.answer()
            #expect(second.status == 200 && second.text.contains("second"), "\(second.head)")
        }
    }

    /// With the edge's descriptors nearly all used by trickling clients, it stops accepting (and says so once), keeps
    /// serving the connections it has, and takes new clients again once the header timeout has closed the tricklers.
    @Test func nearTheDescriptorLimitAcceptingPausesAndServingGoesOn() async throws {
        try await withMesh { mesh in
            try mesh.startRouter()
            try mesh.addInstance(className: "ContainerA", id: "a-0")
            try mesh.startEdge(routes: ["/a/=ContainerA"], arguments: ["--header-timeout", "3s"], descriptorLimit: 256)
            #expect(try await mesh.waitUntil("/a/instance") { response, _ in response.status == .ok }, "\(mesh.logs)")

            let kept = try RawConnection(port: mesh.edgePort)
            kept.send("GET /a/echo?before HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try kept.answer().status == 200)

            let slow = try Self.trickling(300, port: mesh.edgePort)
            kept.send("GET /a/echo?during HTTP/1.1\r\nHost: x\r\n\r\n")
            let during = try kept.answer()
            #expect(during.status == 200 && during.text.contains("during"), "a connection it has is served: \(during.head)")

            // A new client waits in the listen backlog, and is answered once the tricklers are gone.
            let newcomer = try RawConnection(port: mesh.edgePort)
            newcomer.send("GET /a/echo?newcomer HTTP/1.1\r\nHost: x\r\n\r\n")
            let started = ContinuousClock.now
            var answer: RawConnection.Answer?
            while answer == nil && started.duration(to: .now) < .seconds(30) {
                Self.trickle(slow)
                answer = try? newcomer.answer(timeout: .milliseconds(200))
            }
            #expect(answer?.status == 200, "the newcomer is served once the trickling connections are closed:\n\(mesh.edge?.output.suffix(2_000) ?? "")")
            while slow.contains(where: { !$0.closed }) && started.duration(to: .now) < .seconds(30) {
                Self.trickle(slow)
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(slow.allSatisfy { $0.closed })
            #expect(mesh.edge?.isRunning == true)
            let log = mesh.edge?.output ?? ""
            #expect(log.components(separatedBy: "not accepting client connections for now").count - 1 == 1,
                    "the pause is logged once:\n\(log.suffix(3_000))")
            #expect(log.contains("accepting client connections again"), "\(log.suffix(3_000))")
        }
    }

    /// Bodies held at once are bounded across connections: a body that would pass `--max-buffered` gets 503 with
    /// Retry-After, the bodies already held are served, and once they are gone a new one is taken again.
    @Test func bodiesOverTheSharedLimitGet503UntilMemoryIsFree() async throws {
        try await withMesh { mesh in
            try await mesh.startOneInstance(edgeArguments: ["--max-body", "1000000", "--max-buffered", "2000000"])
            let length = 900_000
            let head = "POST /a/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: \(length)\r\n\r\n"
            // The 100 says the edge has read the head and counted the body it announces.
            let first = try RawConnection(port: mesh.edgePort)
            first.send(head)
            #expect(try first.answer(status: 100))
            let second = try RawConnection(port: mesh.edgePort)
            second.send(head)
            #expect(try second.answer(status: 100))

            let third = try RawConnection(port: mesh.edgePort)
            third.send(head)
            let refused = try third.answer()
            #expect(refused.status == 503, "\(refused.head)")
            #expect(refused.head.lowercased().contains("retry-after: 1"), "\(refused.head)")
            #expect(refused.text.contains("--max-buffered") || refused.text.contains("2000000-byte limit"), "\(refused.text)")
            #expect(third.readsToEnd())

            let body = [UInt8](repeating: 0x61, count: length)
            for connection in [first, second] {
                connection.send(body)
                let answer = try connection.answer()
                #expect(answer.status == 200 && answer.text.contains("\"bodyLength\": \(length)"), "\(answer.head)")
            }
            let fourth = try RawConnection(port: mesh.edgePort)
            fourth.send(head)
            #expect(try fourth.answer(status: 100), "memory is free again once the two are answered")
            fourth.send(body)
            #expect(try fourth.answer().status == 200)
        }
    }
}

extension RawConnection {
    /// Whether the next answer, interim ones included, has `status`.
    func answer(status: Int, timeout: Duration = .seconds(10)) throws -> Bool {
        try answer(timeout: timeout, interim: true).status == status
    }
}
