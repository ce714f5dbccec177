import BerthWire

/// `--json`: one JSON object per event, on one line, for jq and log shippers.
///
/// Values follow the proto3 JSON mapping: 64-bit integers (`uint64` in the proto: `time_us`, `request_id`,
/// `bytes_in`, `bytes_out`, `latency_us`) are JSON strings of decimal digits, because a JSON number is a double
/// and rounds ids such as 6.6e18; 32-bit integers are numbers. Keys are the proto's field names (the mapping's
/// `preserving_proto_field_name` form, which every proto3 JSON parser accepts) and are always present (`null`
/// for an absent `error`). Where this departs from the mapping, on purpose and documented in docs/events.md:
/// `event` names the `Event.kind` that is set (`traffic`, `lifecycle` or `log`), `topic` is the topic frame,
/// `time` is `time_us` again in RFC 3339 (UTC, microseconds), and enum values are the proto value names lowercase
/// and without the enum's prefix: `TRAFFIC_KIND_SIDECAR` is `"sidecar"`, `ERROR_CODE_APP_UNREACHABLE` is
/// `"app_unreachable"`.
///
/// ```json
/// {"event":"traffic","topic":"traffic.edge.main","time":"2025-01-02T03:04:05.678901Z","time_us":"1735787045678901",
///  "request_id":"6600000000000000007","trace_id":"","source":{"class_name":"edge","instance_id":"main","port":0},
///  "destination":{…},"method":"GET","path":"/a/","status":200,"bytes_in":"0","bytes_out":"12","latency_us":"840",
///  "kind":"edge","error":null,"span_id":"00f067aa0ba902b7","parent_span_id":"","x_request_id":""}
/// ```
public struct JSONEventFormatter: Sendable {
    public init() {}

    /// The object for `tapped`, without a newline.
    public func line(_ tapped: TappedEvent) -> String {
        var object = JSONObject()
        switch tapped.event {
        case .traffic(let event):
            object.add("event", string: "traffic")
            object.add("topic", string: tapped.topic)
            object.addTime(event.timeMicroseconds)
            object.add("request_id", uint64: event.requestID)
            object.add("trace_id", string: event.traceID)
            object.add("source", raw: Self.endpoint(event.source))
            object.add("destination", raw: Self.endpoint(event.destination))
            object.add("method", string: event.method)
            object.add("path", string: event.path)
            object.add("status", number: event.status)
            object.add("bytes_in", uint64: event.bytesIn)
            object.add("bytes_out", uint64: event.bytesOut)
            object.add("latency_us", uint64: event.latencyMicroseconds)
            object.add("kind", string: Names.trafficKind(event.kind))
            if let error = event.error {
                var nested = JSONObject()
                nested.add("code", string: Names.errorCode(error.code))
                nested.add("message", string: error.message)
                nested.add("component", string: error.component)
                object.add("error", raw: nested.text)
            } else {
                object.add("error", raw: "null")
            }
            object.add("span_id", string: event.spanID)
            object.add("parent_span_id", string: event.parentSpanID)
            object.add("x_request_id", string: event.xRequestID)
        case .lifecycle(let event):
            object.add("event", string: "lifecycle")
            object.add("topic", string: tapped.topic)
            object.addTime(event.timeMicroseconds)
            object.add("container", raw: Self.endpoint(event.container))
            object.add("state", string: Names.lifecycleState(event.state))
            object.add("exit_code", number: event.exitCode)
            object.add("restarts", number: event.restarts)
            object.add("pid", number: event.pid)
            object.add("message", string: event.message)
        case .log(let event):
            object.add("event", string: "log")
            object.add("topic", string: tapped.topic)
            object.addTime(event.timeMicroseconds)
            object.add("container", raw: Self.endpoint(event.container))
            object.add("stream", string: Names.logStream(event.stream))
            object.add("line", string: event.line)
        }
        return object.text
    }

    private static func endpoint(_ endpoint: Endpoint) -> String {
        var object = JSONObject()
        object.add("class_name", string: endpoint.className)
        object.add("instance_id", string: endpoint.instanceID)
        object.add("port", number: endpoint.port)
        return object.text
    }

    /// RFC 3339 in UTC with microseconds: `2025-01-02T03:04:05.678901Z`.
    public static func rfc3339(microseconds: UInt64) -> String {
        let seconds = Int64(microseconds / 1_000_000)
        let fraction = microseconds % 1_000_000
        let (year, month, day) = civilDate(daysSinceEpoch: seconds / 86_400)
        let ofDay = seconds % 86_400
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(ofDay / 3_600, 2)):\(pad(ofDay / 60 % 60, 2)):\(pad(ofDay % 60, 2))"
            + ".\(pad(Int64(fraction), 6))Z"
    }

    /// The proleptic Gregorian date of a day count (Howard Hinnant's `civil_from_days`), for days ≥ 0.
    private static func civilDate(daysSinceEpoch days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = z / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// A JSON object written key by key, in order (also OTLP's JSON, in BerthOTLP).
package struct JSONObject {
    private var members = ""

    package init() {}

    /// The object, braces included.
    package var text: String { "{" + members + "}" }

    package mutating func add(_ key: String, raw value: String) {
        if !members.isEmpty { members += "," }
        JSONObject.appendString(key, to: &members)
        members += ":"
        members += value
    }

    package mutating func add(_ key: String, string value: String) {
        var quoted = ""
        JSONObject.appendString(value, to: &quoted)
        add(key, raw: quoted)
    }

    /// A 32-bit integer: a JSON number, exact in every parser.
    package mutating func add<Value: FixedWidthInteger>(_ key: String, number value: Value) {
        precondition(Value.bitWidth <= 32, "64-bit integers are strings in the proto3 JSON mapping: use add(_:uint64:)")
        add(key, raw: "\(value)")
    }

    /// A 64-bit integer as the proto3 JSON mapping writes it: a string, so that no parser rounds it to a double.
    package mutating func add(_ key: String, uint64 value: UInt64) {
        add(key, raw: "\"\(value)\"")
    }

    mutating func addTime(_ microseconds: UInt64) {
        add("time", string: JSONEventFormatter.rfc3339(microseconds: microseconds))
        add("time_us", uint64: microseconds)
    }

    /// Appends `value` as a JSON string: quotes, backslashes and control characters escaped (RFC 8259 §7);
    /// U+2028 and U+2029 too, so that the line is also valid JavaScript.
    static func appendString(_ value: String, to output: inout String) {
        output += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case "\u{00}"..."\u{1F}", "\u{7F}", "\u{2028}", "\u{2029}":
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }
}
