import BerthWire
import Foundation
import Testing

@testable import BerthOTLP

/// A traffic event as the OTLP span a collector reads (OTLP/HTTP's JSON encoding).
@Suite struct OTLPJSONTests {
    let event = TrafficEvent(
        timeMicroseconds: 1_735_787_045_678_901, requestID: 7, traceID: "4bf92f3577b34da6a3ce929d0e0e4736",
        source: Endpoint(className: "edge", instanceID: "main"), destination: Endpoint(className: "ContainerA", instanceID: "a-0", port: 8080),
        method: "GET", path: "/q\"uote\n", status: 502, bytesIn: 0, bytesOut: 0, latencyMicroseconds: 840, kind: .sidecar,
        error: MeshError(code: .appUnreachable, message: "refused", component: "app"),
        spanID: "00f067aa0ba902b7", parentSpanID: "b7ad6b7169203331", xRequestID: "r-1"
    )

    @Test func aSpanCarriesItsIdsTimesAndStatus() throws {
        let text = OTLPJSON.request([event], service: "berth-sidecar", instance: "ContainerA/a-0")
        let request = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let resourceSpans = try #require((request["resourceSpans"] as? [[String: Any]])?.first)
        let attributes = try #require((resourceSpans["resource"] as? [String: Any])?["attributes"] as? [[String: Any]])
        #expect(attributes.compactMap { $0["key"] as? String } == ["service.name", "service.instance.id"])
        let span = try #require(((resourceSpans["scopeSpans"] as? [[String: Any]])?.first?["spans"] as? [[String: Any]])?.first)
        #expect(span["traceId"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(span["spanId"] as? String == "00f067aa0ba902b7" && span["parentSpanId"] as? String == "b7ad6b7169203331")
        #expect(span["kind"] as? Int == 2, "a sidecar serves")
        #expect(span["startTimeUnixNano"] as? String == "1735787045678061000" && span["endTimeUnixNano"] as? String == "1735787045678901000")
        #expect((span["status"] as? [String: Any])?["code"] as? Int == 2, "an error")
        #expect(span["name"] as? String == "GET ContainerA/a-0")
        let spanAttributes = try #require(span["attributes"] as? [[String: Any]])
        let path = spanAttributes.first { $0["key"] as? String == "url.path" }?["value"] as? [String: Any]
        #expect(path?["stringValue"] as? String == "/q\"uote\n")
    }

    @Test func anEventOutsideATraceIsNoSpanAndARootHasNoParent() throws {
        var untraced = event
        untraced.traceID = "an-old-edge's-id"
        var root = event
        root.parentSpanID = ""
        let text = OTLPJSON.request([untraced, root], service: "s", instance: "i")
        #expect(text.components(separatedBy: "\"spanId\"").count == 2, "one span: \(text)")
        #expect(!text.contains("parentSpanId"))
    }
}
