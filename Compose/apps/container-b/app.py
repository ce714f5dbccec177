"""Container B of the original demo: receives events and says what it got.

    POST /receive  -> {"from": "ContainerB", "instance": ..., "received": <JSON or text>, "bytes": N}
    GET  /health   -> 200 "ok"

Configured by environment, as a sidecar starts it: PORT (3000), BERTH_INSTANCE ("b").
Python standard library only. Exits 0 on SIGTERM or SIGINT.
"""

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "3000"))
INSTANCE = os.environ.get("BERTH_INSTANCE", "b")


def say(line):
    print(line, flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries content-length
    server_version = "demo-container-b"
    timeout = 60  # seconds an idle keep-alive connection may stay open

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, b"ok", "text/plain; charset=utf-8")
        elif self.path == "/receive":
            self.reply_json(405, {"error": "method not allowed", "path": self.path}, {"Allow": "POST"})
        else:
            self.reply_json(404, {"error": "not found", "path": self.path})

    def do_POST(self):
        if self.path != "/receive":
            self.reply_json(404, {"error": "not found", "path": self.path})
            return
        try:
            body = self.read_body()
        except ValueError as error:
            self.close_connection = True
            self.reply_json(400, {"error": str(error)})
            return
        text = body.decode("utf-8", errors="replace")
        try:
            received = json.loads(text)
        except ValueError:
            received = text
        self.reply_json(200, {"from": "ContainerB", "instance": INSTANCE, "received": received, "bytes": len(body)})

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit():
            raise ValueError(f"bad content-length {length!r}")
        return self.rfile.read(int(length))

    def reply_json(self, status, value, headers=None):
        self.reply(status, json.dumps(value).encode(), "application/json", headers)

    def reply(self, status, body, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_request(self, code="-", size="-"):
        # A request too malformed to parse has no command or path yet.
        say(f"{self.command or '-'} {getattr(self, 'path', '-')} -> {int(code)}")

    def log_message(self, format, *args):
        sys.stderr.write("container B: " + (format % args) + "\n")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True  # open keep-alive connections do not hold up exit

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return, and this handler runs on the thread serving.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    say(f"container B listening on {PORT}")
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
