#!/usr/bin/env python3
"""A small OpenTelemetry collector for tests: takes OTLP/HTTP JSON exports and prints the spans.

    otlp_receiver.py PORT

For every POST /v1/traces it prints one JSON object per span on stdout: {"service": ..., "traceId": ..., "spanId":
..., "parentSpanId": ..., "name": ..., "kind": ..., "start": ..., "end": ...}, and answers 200 with an empty
ExportTraceServiceResponse. Anything else gets 404; a body that is not OTLP JSON gets 400.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path != "/v1/traces":
            return self.answer(404, b"{}")
        try:
            request = json.loads(body)
            lines = []
            for resource_spans in request["resourceSpans"]:
                attributes = {a["key"]: a["value"].get("stringValue") for a in resource_spans["resource"]["attributes"]}
                for scope_spans in resource_spans["scopeSpans"]:
                    for span in scope_spans["spans"]:
                        lines.append(json.dumps({
                            "service": attributes.get("service.name"), "instance": attributes.get("service.instance.id"),
                            "traceId": span["traceId"], "spanId": span["spanId"], "parentSpanId": span.get("parentSpanId", ""),
                            "name": span["name"], "kind": span["kind"],
                            "start": int(span["startTimeUnixNano"]), "end": int(span["endTimeUnixNano"]),
                        }))
        except (ValueError, KeyError, TypeError) as error:
            print(json.dumps({"error": str(error)}), flush=True)
            return self.answer(400, b"{}")
        if lines:
            print("\n".join(lines), flush=True)
        self.answer(200, b"{}")


if __name__ == "__main__":
    print(json.dumps({"listening": True}), flush=True)
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
