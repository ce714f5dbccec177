import BerthTap
import BerthWire
import Foundation
import Testing

struct FormatterTests {
    let utc = EventFormatter(colour: false, timeZone: TimeZone(identifier: "UTC")!)
    /// 2025-01-02T03:04:05.678901Z
    let time: UInt64 = 1_735_787_045_678_901

    func traffic(kind: TrafficKind = .edge, status: UInt32 = 200, error: MeshError? = nil, path: String = "/a/hello") -> TrafficEvent {
        TrafficEvent(
            timeMicroseconds: time, requestID: 7, traceID: "t-1",
            source: Endpoint(className: "edge", instanceID: "main"),
            destination: Endpoint(className: "ContainerA", instanceID: "a-0", port: 8080),
            method: "GET", path: path, status: status, bytesIn: 12, bytesOut: 1_234,
            latencyMicroseconds: 840, kind: kind, error: error
        )
    }

    @Test func trafficLine() {
        #expect(
            utc.line(traffic())
                == "03:04:05.678 edge      edge/main → ContainerA/a-0 :8080 GET /a/hello 200 in 12 B out 1.2 KiB 0.84 ms"
        )
    }

    @Test func trafficLineWithAnError() {
        let error = MeshError(code: .appUnreachable, message: "connection refused on :8080", component: "sidecar")
        #expect(
            utc.line(traffic(kind: .sidecar, status: 0, error: error))
                == "03:04:05.678 sidecar   edge/main → ContainerA/a-0 :8080 GET /a/hello --- in 12 B out 1.2 KiB 0.84 ms"
                + " error app_unreachable (sidecar): connection refused on :8080"
        )
    }

    @Test func lifecycleAndLogLines() {
        let container = Endpoint(className: "ContainerB", instanceID: "b-1", port: 3000)
        let healthy = LifecycleEvent(timeMicroseconds: time, container: container, state: .healthy, pid: 4242)
        #expect(utc.line(healthy) == "03:04:05.678 lifecycle ContainerB/b-1 :3000 healthy pid 4242")
        let exited = LifecycleEvent(
            timeMicroseconds: time, container: container, state: .exited, exitCode: 1, restarts: 2, message: "crashed"
        )
        #expect(utc.line(exited) == "03:04:05.678 lifecycle ContainerB/b-1 :3000 exited exit 1 restarts 2 crashed")
        let log = LogLine(timeMicroseconds: time, container: container, stream: .stderr, line: "listening on :3000")
        #expect(utc.line(log) == "03:04:05.678 log       ContainerB/b-1 stderr listening on :3000")
    }

    @Test func timeIsShownInTheGivenZone() throws {
        let tokyo = EventFormatter(timeZone: try #require(TimeZone(identifier: "Asia/Tokyo")))
        #expect(tokyo.line(traffic()).hasPrefix("12:04:05.678 "))
    }

    @Test func colourOnlyWhenAsked() {
        var coloured = utc
        coloured.colour = true
        let line = coloured.line(traffic(status: 503))
        #expect(line.contains("\u{1B}[31m503\u{1B}[0m"))
        #expect(!utc.line(traffic(status: 503)).contains("\u{1B}"))
    }

    @Test func colourNeedsATerminalAndNoNOCOLOR() throws {
        let pipe = Pipe()
        #expect(!Terminal.wantsColour(fileDescriptor: pipe.fileHandleForWriting.fileDescriptor, environment: [:]))
    }

    @Test func endpointNames() {
        #expect(EventFormatter.name(Endpoint(className: "A", instanceID: "a-0")) == "A/a-0")
        #expect(EventFormatter.name(Endpoint(className: "A")) == "A")
        #expect(EventFormatter.name(Endpoint()) == "-")
    }

    @Test(arguments: [
        (0, "0 B"), (1_023, "1023 B"), (1_024, "1.0 KiB"), (1_234, "1.2 KiB"), (153_600, "150 KiB"),
        (5 * 1_048_576, "5.0 MiB"), (3 * 1_073_741_824, "3.0 GiB"),
    ] as [(UInt64, String)])
    func byteUnits(bytes: UInt64, text: String) {
        #expect(Units.bytes(bytes) == text)
    }

    @Test(arguments: [
        (0, "0.00 ms"), (840, "0.84 ms"), (3_100, "3.10 ms"), (12_345, "12.3 ms"), (250_000, "250 ms"),
        (1_250_000, "1.25 s"),
    ] as [(UInt64, String)])
    func latencyUnits(microseconds: UInt64, text: String) {
        #expect(Units.latency(microseconds: microseconds) == text)
    }
}

struct JSONFormatterTests {
    let formatter = JSONEventFormatter()

    func parse(_ line: String) throws -> [String: Any] {
        #expect(!line.contains("\n"))
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(object as? [String: Any])
    }

    @Test func trafficEventAsJSON() throws {
        let awkward = "/q\"uo\\te\nnew\tline\u{01}\u{7F}é🚢\u{2028}"
        let event = TrafficEvent(
            timeMicroseconds: 1_735_787_045_678_901, requestID: 6_600_000_000_000_000_007, traceID: "t-1",
            source: Endpoint(className: "edge", instanceID: "main"),
            destination: Endpoint(className: "ContainerA", instanceID: "a-0", port: 8080),
            method: "GET", path: awkward, status: 502, bytesIn: 12, bytesOut: 1_234, latencyMicroseconds: 840,
            kind: .sidecar, error: MeshError(code: .appUnreachable, message: "refused \"x\"", component: "sidecar")
        )
        let object = try parse(formatter.line(TappedEvent(topic: "traffic.ContainerA.a-0", event: .traffic(event))))
        #expect(Set(object.keys) == [
            "event", "topic", "time", "time_us", "request_id", "trace_id", "source", "destination", "method", "path",
            "status", "bytes_in", "bytes_out", "latency_us", "kind", "error", "span_id", "parent_span_id", "x_request_id",
        ])
        #expect(object["event"] as? String == "traffic")
        #expect(object["topic"] as? String == "traffic.ContainerA.a-0")
        #expect(object["time"] as? String == "2025-01-02T03:04:05.678901Z")
        // The proto3 JSON mapping: 64-bit integers are strings, exact whatever parser reads them; 32-bit are numbers.
        #expect(object["time_us"] as? String == "1735787045678901")
        #expect(object["request_id"] as? String == "6600000000000000007")
        #expect(object["path"] as? String == awkward)
        #expect(object["status"] as? Int == 502)
        #expect(object["bytes_in"] as? String == "12")
        #expect(object["bytes_out"] as? String == "1234")
        #expect(object["latency_us"] as? String == "840")
        #expect(object["kind"] as? String == "sidecar")
        let destination = try #require(object["destination"] as? [String: Any])
        #expect(destination["class_name"] as? String == "ContainerA")
        #expect(destination["instance_id"] as? String == "a-0")
        #expect(destination["port"] as? Int == 8080)
        let error = try #require(object["error"] as? [String: Any])
        #expect(error["code"] as? String == "app_unreachable")
        #expect(error["message"] as? String == "refused \"x\"")
        #expect(error["component"] as? String == "sidecar")
    }

    @Test func absentErrorIsNull() throws {
        let event = TrafficEvent(
            timeMicroseconds: 1, requestID: 1, source: Endpoint(), destination: Endpoint(), method: "GET", path: "/",
            status: 200, bytesIn: 0, bytesOut: 0, latencyMicroseconds: 1, kind: .edge
        )
        let object = try parse(formatter.line(TappedEvent(topic: "traffic.edge.main", event: .traffic(event))))
        #expect(object["error"] is NSNull)
        #expect(object["time"] as? String == "1970-01-01T00:00:00.000001Z")
    }

    @Test func lifecycleAndLogAsJSON() throws {
        let container = Endpoint(className: "ContainerB", instanceID: "b-1", port: 3000)
        let lifecycle = try parse(formatter.line(TappedEvent(
            topic: "lifecycle.ContainerB.b-1",
            event: .lifecycle(LifecycleEvent(
                timeMicroseconds: 951_782_400_000_000, container: container, state: .restarting, exitCode: -9,
                restarts: 3, pid: 99, message: "killed by signal 9"
            ))
        )))
        #expect(Set(lifecycle.keys) == ["event", "topic", "time", "time_us", "container", "state", "exit_code", "restarts", "pid", "message"])
        #expect(lifecycle["time"] as? String == "2000-02-29T00:00:00.000000Z")
        #expect(lifecycle["state"] as? String == "restarting")
        #expect(lifecycle["exit_code"] as? Int == -9)
        #expect(lifecycle["restarts"] as? Int == 3)
        #expect(lifecycle["pid"] as? Int == 99)
        #expect(lifecycle["time_us"] as? String == "951782400000000")

        let log = try parse(formatter.line(TappedEvent(
            topic: "log.ContainerB.b-1",
            event: .log(LogLine(timeMicroseconds: 4_107_542_399_999_999, container: container, stream: .stdout, line: "\u{1B}[1mbold\u{1B}[0m {\"json\": true}"))
        )))
        #expect(Set(log.keys) == ["event", "topic", "time", "time_us", "container", "stream", "line"])
        #expect(log["time"] as? String == "2100-02-28T23:59:59.999999Z")
        #expect(log["stream"] as? String == "stdout")
        #expect(log["line"] as? String == "\u{1B}[1mbold\u{1B}[0m {\"json\": true}")
    }
}

struct FilterTests {
    @Test func parsing() {
        #expect(TapFilter("ContainerA") == TapFilter(className: "ContainerA"))
        #expect(TapFilter("ContainerA/a-0") == TapFilter(className: "ContainerA", instanceID: "a-0"))
        #expect(TapFilter("") == nil)
        #expect(TapFilter("/a-0") == nil)
        #expect(TapFilter("ContainerA/") == nil)
    }

    @Test func matchesSourceDestinationOrContainer() {
        let toA = TrafficEvent(
            timeMicroseconds: 1, requestID: 1, source: Endpoint(className: "edge", instanceID: "main"),
            destination: Endpoint(className: "ContainerA", instanceID: "a-0", port: 8080), method: "GET", path: "/",
            status: 200, bytesIn: 0, bytesOut: 0, latencyMicroseconds: 1, kind: .edge
        )
        #expect(TapFilter(className: "ContainerA").matches(.traffic(toA)))
        #expect(TapFilter(className: "ContainerA", instanceID: "a-0").matches(.traffic(toA)))
        #expect(!TapFilter(className: "ContainerA", instanceID: "a-1").matches(.traffic(toA)))
        #expect(TapFilter(className: "edge").matches(.traffic(toA)))
        #expect(!TapFilter(className: "ContainerB").matches(.traffic(toA)))

        let b = Endpoint(className: "ContainerB", instanceID: "b-0")
        #expect(TapFilter(className: "ContainerB").matches(.lifecycle(LifecycleEvent(timeMicroseconds: 1, container: b, state: .healthy))))
        #expect(TapFilter("ContainerB/b-0")!.matches(.log(LogLine(timeMicroseconds: 1, container: b, stream: .stdout, line: ""))))
        #expect(!TapFilter("ContainerA")!.matches(.log(LogLine(timeMicroseconds: 1, container: b, stream: .stdout, line: ""))))
    }
}
