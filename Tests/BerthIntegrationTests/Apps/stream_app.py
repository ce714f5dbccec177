#!/usr/bin/env python3
"""A test app for streamed bodies: it writes answers as it goes, and says what it saw.

GET  /download/N     -> N bytes of a fixed pattern (the sha256 of the whole is in x-sha256), with Content-Length,
                        written 64 KiB at a time; /progress says how many bytes it has written so far
GET  /chunked/N      -> the same N bytes, chunked (no Content-Length)
GET  /sse/N          -> N server-sent events; event i+1 is written only once GET /next has been asked i+1 times,
                        so a client can tell that each event reached it while the answer was still open
GET  /next           -> lets the next event of /sse go
GET  /forever        -> a chunk every 50 ms until the connection breaks; /closed then counts it
GET  /closed         -> how many /forever answers ended because the client's side went away
GET  /progress       -> bytes the current /download has written
POST /upload         -> reads the body (Content-Length or chunked) and answers with its length and sha256
GET  /               -> 200 ok (readiness)

`stream_app.py --pattern N` writes the pattern's first N bytes to stdout; `--sha256 N` prints their sha256.
"""
import hashlib, json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATTERN = bytes(range(256)) * 256  # 64 KiB
NEXT = threading.Semaphore(0)
STATE = {"closed": 0, "progress": 0}
LOCK = threading.Lock()


def pattern_bytes(n):
    """Yields the pattern's first n bytes, 64 KiB at a time."""
    left = n
    while left > 0:
        piece = PATTERN[: min(left, len(PATTERN))]
        left -= len(piece)
        yield piece


def pattern_sha256(n):
    digest = hashlib.sha256()
    for piece in pattern_bytes(n):
        digest.update(piece)
    return digest.hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def small(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if parts[0] == "download":
            n = int(parts[1])
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(n))
            self.end_headers()
            with LOCK:
                STATE["progress"] = 0
            for piece in pattern_bytes(n):
                self.wfile.write(piece)
                with LOCK:
                    STATE["progress"] += len(piece)
        elif parts[0] == "chunked":
            n = int(parts[1])
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for piece in pattern_bytes(n):
                self.chunk(piece)
            self.wfile.write(b"0\r\n\r\n")
        elif parts[0] == "sse":
            n = int(parts[1])
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            for i in range(n):
                if i > 0 and not NEXT.acquire(timeout=30):
                    self.close_connection = True
                    return
                self.chunk(b"id: %d\ndata: event %d\n\n" % (i, i))
            self.wfile.write(b"0\r\n\r\n")
        elif parts[0] == "next":
            NEXT.release()
            self.small(200, b"ok\n")
        elif parts[0] == "forever":
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            i = 0
            try:
                while True:
                    self.chunk(b"tick %d\n" % i)
                    i += 1
                    time.sleep(0.05)
            except OSError:
                with LOCK:
                    STATE["closed"] += 1
                self.close_connection = True
        elif parts[0] == "closed":
            with LOCK:
                self.small(200, str(STATE["closed"]).encode())
        elif parts[0] == "progress":
            with LOCK:
                self.small(200, str(STATE["progress"]).encode())
        else:
            self.small(200, b"ok\n")

    def do_POST(self):
        digest = hashlib.sha256()
        count = 0
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left > 0:
                    data = self.rfile.read(min(left, 1 << 16))
                    if not data:
                        raise ConnectionError("body cut short")
                    digest.update(data)
                    left -= len(data)
                count += size
                self.rfile.readline()
        else:
            left = int(self.headers.get("content-length") or 0)
            while left > 0:
                data = self.rfile.read(min(left, 1 << 16))
                if not data:
                    raise ConnectionError("body cut short")
                digest.update(data)
                count += len(data)
                left -= len(data)
        self.small(200, json.dumps({"length": count, "sha256": digest.hexdigest()}).encode(), "application/json")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--sha256":
        print(pattern_sha256(int(sys.argv[2])))
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "--pattern":
        for piece in pattern_bytes(int(sys.argv[2])):
            sys.stdout.buffer.write(piece)
        sys.exit(0)
    port = int(os.environ.get("PORT") or sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()
