import BerthTestSupport
import BerthWire
import Foundation
import Testing

// MARK: - Samples

private let fullEndpoint = Endpoint(className: "ContainerA", instanceID: "a-0", port: 8080)
private let unicode = "héllo wörld — 日本語 🚢 \u{1F3F3}\u{FE0F}\u{200D}\u{1F308}"

private let fullRequest = Request(
    id: .max,
    target: Target(className: "ContainerA", instanceName: "sticky-\(unicode)"),
    port: .max,
    method: "PATCH",
    path: "/get-payload/\(unicode)",
    query: "a=1&b=2&c=\(unicode)",
    headers: [
        Header("Accept", "*/*"),
        Header("Set-Cookie", "a=1"),
        Header("Set-Cookie", "b=2"),
        Header("X-Empty", ""),
        Header("", "no name"),
        Header("X-Unicode", unicode),
    ],
    timeoutMilliseconds: .max,
    traceID: "4bf92f3577b34da6a3ce929d0e0e4736",
    attempt: 1,
    source: Endpoint(className: "edge", instanceID: "edge-0", port: 443),
    parentSpanID: "00f067aa0ba902b7",
    traceFlags: 1,
    xRequestID: "request-\(unicode)"
)

private let fullReady = Ready(
    className: "ContainerA", instanceID: "a-0", ports: [8080, 9090, .max], capacity: 64, heartbeatMilliseconds: 1000,
    endpoint: "ipc:///run/user/0/berth-0/sidecars/ContainerA-\(unicode).sock"
)

private let envelopes: [Envelope] = [
    .streamData(StreamData(id: .max)),
    .streamData(StreamData(id: 7, final: true)),
    .streamData(StreamData(id: 7, error: MeshError(code: .appFailed, message: "cut", component: "app"))),
    .credit(Credit(id: 1, bytes: .max)),
    .streamCancel(StreamCancel(id: 3, reason: "the client went away")),
    .request({ var request = Request(id: 9, target: Target(className: "S"), method: "POST", path: "/up"); request.bodyStreams = true; request.streamWindow = 1 << 20; return request }()),
    .response({ var response = Response(id: 9, status: 200); response.bodyStreams = true; return response }()),
    .ready(fullReady),
    .ready(Ready(className: "C", instanceID: "c", ports: [], capacity: 1, heartbeatMilliseconds: 0, endpoint: "tcp://10.0.0.1:1")),
    .heartbeat(Heartbeat(inFlight: 0)),
    .heartbeat(Heartbeat(inFlight: .max)),
    .disconnect(Disconnect(reason: "")),
    .disconnect(Disconnect(reason: "shutting down: \(unicode)")),
    .request(fullRequest),
    .request(Request(id: 0, target: Target(className: "B"), method: "GET", path: "/")),
    .response(Response(id: 1, status: 200)),
    .directoryRequest,
    .directory(Directory(epoch: 0, sequence: 0, instances: [])),
    .directory(Directory(epoch: .max, sequence: .max, instances: [fullReady, fullReady])),
    .directoryUpdate(DirectoryUpdate(epoch: 1, sequence: 2, instance: fullReady, removed: true)),
    .directoryUpdate(DirectoryUpdate(epoch: 1, sequence: 3, instance: fullReady, removed: false)),
    .response(Response(id: 2, status: 200, inFlight: .max)),
    .response(Response(id: .max, status: 599, headers: fullRequest.headers, servedBy: fullEndpoint)),
    .response(
        Response(
            id: 3,
            status: 504,
            error: MeshError(code: .deadlineExceeded, message: "no answer in 30 s: \(unicode)", component: "router"),
            servedBy: Endpoint()
        )
    ),
] + ErrorCode.allCases.map { code in
    .response(Response(id: 9, status: 502, error: MeshError(code: code, message: "", component: "")))
}

private let events: [Event] = [
    .traffic({
        var event = TrafficEvent(
            timeMicroseconds: 1, requestID: 2, source: Endpoint(), destination: Endpoint(), method: "GET", path: "/sse", status: 200,
            bytesIn: 0, bytesOut: 1 << 40, latencyMicroseconds: 10_000_000, kind: .edge
        )
        event.inProgress = true
        event.streamed = true
        return event
    }()),
    .traffic(
        TrafficEvent(
            timeMicroseconds: .max,
            requestID: .max,
            traceID: "trace",
            source: Endpoint(className: "edge", instanceID: "edge-0", port: 80),
            destination: fullEndpoint,
            method: "GET",
            path: "/\(unicode)",
            status: 200,
            bytesIn: .max,
            bytesOut: 12_345,
            latencyMicroseconds: 999,
            kind: .edge,
            error: MeshError(code: .saturated, message: "queue full", component: "router"),
            spanID: "00f067aa0ba902b7",
            parentSpanID: "a3ce929d0e0e4736",
            xRequestID: "request-\(unicode)"
        )
    ),
    .traffic(
        TrafficEvent(
            timeMicroseconds: 0, requestID: 0, source: Endpoint(), destination: Endpoint(), method: "", path: "",
            status: 0, bytesIn: 0, bytesOut: 0, latencyMicroseconds: 0, kind: .unspecified
        )
    ),
    .lifecycle(
        LifecycleEvent(
            timeMicroseconds: 1_700_000_000_000_000,
            container: fullEndpoint,
            state: .exited,
            exitCode: -9,
            restarts: 3,
            pid: 4242,
            message: "killed: \(unicode)"
        )
    ),
    .lifecycle(LifecycleEvent(timeMicroseconds: 1, container: Endpoint(), state: .restarting, exitCode: .min)),
    .log(LogLine(timeMicroseconds: 5, container: fullEndpoint, stream: .stderr, line: unicode)),
    .log(LogLine(timeMicroseconds: 0, container: Endpoint(), stream: .stdout, line: "")),
]

// MARK: - Hand-written protobuf, for inputs the encoder cannot produce

/// Enough of the protobuf wire format to write invalid or unusual messages by hand.
private struct Proto {
    var bytes: [UInt8] = []

    mutating func varint(_ field: UInt64, _ value: UInt64) {
        raw(field << 3)
        raw(value)
    }

    mutating func bytes(_ field: UInt64, _ value: [UInt8]) {
        raw(field << 3 | 2)
        raw(UInt64(value.count))
        bytes += value
    }

    mutating func string(_ field: UInt64, _ value: String) { bytes(field, Array(value.utf8)) }
    mutating func message(_ field: UInt64, _ value: Proto) { bytes(field, value.bytes) }

    private mutating func raw(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }
}

private func envelope(_ field: UInt64, _ build: (inout Proto) -> Void) -> [UInt8] {
    var inner = Proto()
    build(&inner)
    var outer = Proto()
    outer.message(field, inner)
    return outer.bytes
}

/// A valid Request, minus what `leaving` removes.
private func request(_ leaving: (inout Proto) -> Void = { _ in }) -> [UInt8] {
    envelope(4) { request in
        request.varint(1, 42)
        var target = Proto()
        target.string(1, "ContainerA")
        request.message(2, target)
        request.string(4, "GET")
        request.string(5, "/")
        leaving(&request)
    }
}

private func expectError(_ bytes: [UInt8], _ code: WireError.Code, _ message: String) {
    #expect(throws: WireError(code: code, message: message)) { try Envelope(decoding: bytes) }
}

// MARK: - Tests

@Suite struct RoundTrip {
    @Test(arguments: envelopes)
    func envelope(_ value: Envelope) throws {
        let bytes = value.encoded()
        #expect(try Envelope(decoding: bytes) == value)
        #expect(try bytes.withUnsafeBytes { try Envelope(decoding: $0) } == value)
    }

    @Test(arguments: events)
    func event(_ value: Event) throws {
        #expect(try Event(decoding: value.encoded()) == value)
    }

    @Test func largeValues() throws {
        let request = Envelope.request(
            Request(
                id: 7,
                target: Target(className: "Big"),
                method: "POST",
                path: "/" + String(repeating: "p", count: 70_000),
                headers: (0..<1_000).map { Header("X-Header-\($0)", String(repeating: "v", count: $0)) }
            )
        )
        let bytes = request.encoded()
        #expect(bytes.count > 570_000)
        #expect(try Envelope(decoding: bytes) == request)
    }

    @Test func aCreditOfNothingIsRefused() {
        expectError(BerthWireTests.envelope(11) { credit in credit.varint(1, 5) }, .invalidValue, "Credit.bytes is 0 (must grant at least 1)")
    }

    @Test func emptyInstanceNameIsNoInstanceName() throws {
        let request = Request(id: 1, target: Target(className: "A", instanceName: ""), method: "GET", path: "/")
        guard case .request(let decoded) = try Envelope(decoding: Envelope.request(request).encoded()) else {
            Issue.record("not a request")
            return
        }
        #expect(decoded.target.instanceName == nil)
    }

    @Test func defaultValuesAreLeftOut() {
        #expect(Envelope.heartbeat(Heartbeat()).encoded() == [0x12, 0x00])
        #expect(Envelope.request(Request(id: 0, target: Target(className: "A"), method: "G", path: "/")).encoded().count == 13)
    }

    @Test func stringsEndAtTheFirstNUL() throws {
        let decoded = try Envelope(decoding: Envelope.disconnect(Disconnect(reason: "a\0b")).encoded())
        #expect(decoded == .disconnect(Disconnect(reason: "a")))
    }

    /// Header values travel as bytes: a NUL is not a place to cut the value but a reason to refuse the message.
    @Test func aHeaderValueWithANulIsRefusedNotCut() {
        let request = Request(id: 1, target: Target(className: "A"), method: "GET", path: "/", headers: [Header("x-a", "1\02")])
        #expect(throws: WireError(code: .invalidValue, message: "Request.headers[0].value contains a NUL byte")) {
            try Envelope(decoding: Envelope.request(request).encoded())
        }
    }
}

@Suite struct UntrustedInput {
    @Test func randomBytesNeverCrash() {
        var random = SeededGenerator(seed: 0xBE27)
        var decoded = 0
        for _ in 0..<4_000 {
            let count = Int.random(in: 0...128, using: &random)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            if (try? Envelope(decoding: bytes)) != nil { decoded += 1 }
            if (try? Event(decoding: bytes)) != nil { decoded += 1 }
        }
        #expect(decoded < 8_000)
    }

    @Test func mutatedMessagesNeverCrash() {
        var random = SeededGenerator(seed: 7)
        let valid = envelopes.prefix(8).map { $0.encoded() } + events.map { $0.encoded() }
        for _ in 0..<4_000 {
            var bytes = valid.randomElement(using: &random)!
            for _ in 0...Int.random(in: 0...3, using: &random) {
                let index = Int.random(in: bytes.indices, using: &random)
                switch Int.random(in: 0...2, using: &random) {
                case 0: bytes[index] ^= 1 << UInt8.random(in: 0...7, using: &random)
                case 1: bytes[index] = .random(in: 0...255, using: &random)
                default: bytes.insert(.random(in: 0...255, using: &random), at: index)
                }
            }
            _ = try? Envelope(decoding: bytes)
            _ = try? Event(decoding: bytes)
        }
    }

    @Test func everyPrefixOfARequestThrowsOrDecodes() throws {
        let bytes = Envelope.request(fullRequest).encoded()
        var failures = 0
        for length in 0..<bytes.count {
            do {
                _ = try Envelope(decoding: Array(bytes[..<length]))
            } catch {
                failures += 1
            }
        }
        #expect(failures > 0)
        #expect(try Envelope(decoding: bytes) == .request(fullRequest))
    }

    @Test func everyPrefixOfAnEventThrowsOrDecodes() {
        let bytes = events[0].encoded()
        for length in 0..<bytes.count {
            _ = try? Event(decoding: Array(bytes[..<length]))
        }
    }
}

@Suite struct SemanticErrors {
    @Test func notProtobuf() {
        let bytes: [UInt8] = [0x22, 0x7F] + Array(repeating: 0, count: 15)
        expectError(bytes, .malformed, "malformed Envelope: protobuf-c could not unpack 17 bytes")
        #expect(throws: WireError(code: .malformed, message: "malformed Event: protobuf-c could not unpack 17 bytes")) {
            try Event(decoding: bytes)
        }
    }

    @Test func noKind() {
        expectError([], .empty, "Envelope has no kind set (0 bytes)")
        expectError([0x78, 0x01], .empty, "Envelope has no kind set")  // field 15, unknown: no kind
        #expect(throws: WireError(code: .empty, message: "Event has no kind set")) { try Event(decoding: [0x30, 0x01]) }
    }

    @Test func validRequestDecodes() throws {
        let decoded = try Envelope(decoding: request())
        #expect(decoded == .request(Request(id: 42, target: Target(className: "ContainerA"), method: "GET", path: "/")))
    }

    @Test func requestRules() {
        expectError(
            envelope(4) { request in
                request.string(4, "GET")
                request.string(5, "/")
            },
            .missingField,
            "Request has no target"
        )
        expectError(
            Envelope.request(Request(id: 1, target: Target(className: ""), method: "GET", path: "/")).encoded(),
            .missingField,
            "Request.target.class_name is empty"
        )
        expectError(
            Envelope.request(Request(id: 1, target: Target(className: "A"), method: "", path: "/")).encoded(),
            .missingField,
            "Request.method is empty"
        )
        expectError(
            Envelope.request(Request(id: 1, target: Target(className: "A"), method: "GET", path: "")).encoded(),
            .missingField,
            "Request.path is empty"
        )
        expectError(
            Envelope.request(Request(id: 1, target: Target(className: "A"), method: "GET", path: "get")).encoded(),
            .invalidValue,
            "Request.path \"get\" does not start with \"/\""
        )
    }

    @Test(arguments: [0, 99, 600, UInt32.max])
    func responseStatusOutOfRange(_ status: UInt32) {
        expectError(
            Envelope.response(Response(id: 1, status: status)).encoded(),
            .invalidValue,
            "Response.status \(status) is outside 100...599"
        )
    }

    @Test func readyRules() {
        func ready(
            version: UInt32 = 2, className: String = "A", instanceID: String = "a-0", capacity: UInt32 = 1, endpoint: String = "tcp://h:1"
        ) -> [UInt8] {
            let ready = Ready(
                protocolVersion: version, className: className, instanceID: instanceID, ports: [80], capacity: capacity,
                heartbeatMilliseconds: 500, endpoint: endpoint
            )
            return Envelope.ready(ready).encoded()
        }
        expectError(ready(version: 7), .unsupportedVersion, "Ready.protocol_version 7 is not supported (this build speaks 2)")
        expectError(ready(version: 1), .unsupportedVersion, "Ready.protocol_version 1 is not supported (this build speaks 2)")
        expectError(ready(endpoint: ""), .missingField, "Ready.endpoint is empty")
        expectError(ready(className: ""), .missingField, "Ready.class_name is empty")
        expectError(ready(instanceID: ""), .missingField, "Ready.instance_id is empty")
        expectError(ready(capacity: 0), .invalidValue, "Ready.capacity is 0 (must be at least 1)")
    }

    @Test func invalidUTF8() {
        let header = { (value: [UInt8]) -> Proto in
            var header = Proto()
            header.string(1, "X-Bad")
            header.bytes(2, value)
            return header
        }
        expectError(
            request { $0.message(7, header([0x61, 0xFF, 0xFE])) },
            .invalidValue,
            "Request.headers[0].value is not valid UTF-8"
        )
        expectError(request { $0.bytes(9, [0xC3]) }, .invalidValue, "Request.trace_id is not valid UTF-8")
        expectError(request { $0.bytes(4, [0xED, 0xA0, 0x80]) }, .invalidValue, "Request.method is not valid UTF-8")
        #expect(throws: WireError(code: .invalidValue, message: "LogLine.line is not valid UTF-8")) {
            var log = Proto()
            log.bytes(4, [0x80])
            var event = Proto()
            event.message(3, log)
            return try Event(decoding: event.bytes)
        }
    }

    @Test(arguments: [12, 99, UInt64(UInt32.max), UInt64.max])
    func unknownEnumValuesDecodeAsDefaults(_ value: UInt64) throws {
        var error = Proto()
        error.varint(1, value)
        let response = envelope(5) { response in
            response.varint(2, 500)
            response.message(4, error)
        }
        #expect(try Envelope(decoding: response) == .response(Response(id: 0, status: 500, error: MeshError(code: .internal, message: "", component: ""))))

        var traffic = Proto()
        traffic.varint(12, value)
        traffic.message(13, error)
        var event = Proto()
        event.message(1, traffic)
        guard case .traffic(let decoded) = try Event(decoding: event.bytes) else {
            Issue.record("not a traffic event")
            return
        }
        #expect(decoded.kind == .unspecified)
        #expect(decoded.error?.code == .internal)

        var lifecycle = Proto()
        lifecycle.varint(3, value)
        event = Proto()
        event.message(2, lifecycle)
        #expect(try Event(decoding: event.bytes) == .lifecycle(LifecycleEvent(timeMicroseconds: 0, container: Endpoint(), state: .unspecified)))

        var log = Proto()
        log.varint(3, value)
        event = Proto()
        event.message(3, log)
        #expect(try Event(decoding: event.bytes) == .log(LogLine(timeMicroseconds: 0, container: Endpoint(), stream: .stdout, line: "")))
    }

    @Test func descriptionIsTheMessage() {
        let error = WireError(code: .missingField, message: "Request has no target")
        #expect("\(error)" == "Request has no target")
    }
}

@Test func generatedSourcesAreUpToDate() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["bash", root.appendingPathComponent("scripts/generate-proto.sh").path, "--check"]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "scripts/generate-proto.sh --check failed:\n\(text)")
}
