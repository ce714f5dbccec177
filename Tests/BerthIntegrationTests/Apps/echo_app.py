#!/usr/bin/env python3
"""A test app: answers every request with what it received, or with what the request asks for.

GET /echo...        -> 200, JSON: method, path, query, headers (in order), body length and sha256
/status/NNN         -> that status, with a small body (none for 204/304)
/redirect           -> 301 with Location
/bytes/N            -> N bytes of a fixed pattern
/slow/MS            -> answers after MS milliseconds
/instance           -> the instance name from $BERTH_INSTANCE (or the port)
/log?line=TEXT      -> prints TEXT on stdout, answers 200
/acked              -> the head, then, once the client has acknowledged it, a body with how long that took in µs
                       (nine digits): the two writes of Python's http.server, with the wait made visible
/close              -> 200 as if the connection stayed open, then closes it (as servers do with idle ones)
/early              -> 413 before reading the request body; reads it 300 ms later and keeps the connection
/chunked/N          -> N bytes of the /bytes pattern in chunks of growing size, with chunk extensions and a trailer
/call?target=T     -> calls $BERTH_URL + T (its sidecar's egress listener), passing on the traceparent it got (and
                       x-berth-call-X as x-berth-X), and answers with the callee's status, x-berth-error and body
/call?url=U         -> the same for the absolute URL U, with $BERTH_URL as its HTTP proxy
/call?...&digest=1  -> reads the callee's body as it comes and answers JSON: its length and sha256
/call?...&post=N    -> POSTs N bytes of "x" to the callee instead of a GET
/tunnel?to=H:P&send=T -> asks $BERTH_URL for a tunnel (CONNECT H:P), sends T through it, half-closes, and answers
                       JSON: the proxy's status line and everything that came back through the tunnel
/raw/NAME           -> a hand-written answer, then the connection closes: `garbage` (not HTTP), `unframed` (a body
                       that ends with the connection), `continue` (a 100 first), `conflict` (two Content-Lengths)

With ECHO_LOG_REQUESTS=1 it prints every request line it reads, as `request "LINE"` (JSON-quoted), malformed ones
included: a test can tell every request that reached it.
"""
import fcntl, hashlib, json, os, struct, sys, termios, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

LOG_REQUESTS = os.environ.get("ECHO_LOG_REQUESTS") == "1"
LOG_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def parse_request(self):
        if LOG_REQUESTS:
            line = "request " + json.dumps(self.raw_requestline.decode("latin-1").rstrip("\r\n")) + "\n"
            with LOG_LOCK:  # one write per line: threads' lines must not interleave
                sys.stdout.write(line)
                sys.stdout.flush()
        return super().parse_request()

    def body(self):
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status not in (204, 304):
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    RAW = {
        "garbage": b"NOT HTTP AT ALL\r\n\r\n",
        "unframed": b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the connection ends\n",
        "continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nafter\n",
        "conflict": b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc",
    }

    def handle_any(self):
        if self.path.startswith("/raw/"):
            self.body()
            self.wfile.write(self.RAW[self.path[len("/raw/"):]])
            self.close_connection = True
            return
        if self.path.startswith("/early"):
            # Answers first, then reads and drops the body to keep the connection in step: a client that stopped
            # sending the body when the answer came must not send another request on this connection.
            self.send(413, b"too large\n", [("content-type", "text/plain")])
            time.sleep(0.3)
            self.body()
            return
        received = self.body()
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if parts[0] == "status" and len(parts) > 1:
            status = int(parts[1])
            self.send(status, b"status %d\n" % status, [("content-type", "text/plain"), ("x-odd", "a, b;c=\"d\"")])
        elif parts[0] == "redirect":
            self.send(301, b"moved\n", [("location", "/echo"), ("content-type", "text/plain")])
        elif parts[0] == "bytes" and len(parts) > 1:
            n = int(parts[1])
            pattern = bytes(range(256))
            self.send(200, (pattern * (n // 256 + 1))[:n], [("content-type", "application/octet-stream")])
        elif parts[0] == "chunked" and len(parts) > 1:
            n = int(parts[1])
            data = (bytes(range(256)) * (n // 256 + 1))[:n]
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            offset, size = 0, 1
            while offset < n:
                piece = data[offset:offset + size]
                self.wfile.write(b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n")
                offset, size = offset + len(piece), size * 3 + 1
            self.wfile.write(b"0\r\nx-trailer: t\r\n\r\n")
        elif parts[0] == "slow" and len(parts) > 1:
            time.sleep(int(parts[1]) / 1000)
            self.send(200, b"slow\n", [("content-type", "text/plain")])
        elif parts[0] == "instance":
            name = os.environ.get("BERTH_INSTANCE") or os.environ.get("APP_NAME") or str(self.server.server_port)
            self.send(200, name.encode(), [("content-type", "text/plain")])
        elif parts[0] == "acked":
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", "9")
            self.end_headers()  # the head goes out in its own write
            started = time.monotonic()
            # TIOCOUTQ on a TCP socket: bytes sent and not yet acknowledged.
            while struct.unpack("I", fcntl.ioctl(self.connection.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0] > 0:
                if time.monotonic() - started > 1:
                    break
                time.sleep(0.0002)
            self.wfile.write(b"%09d" % int((time.monotonic() - started) * 1_000_000))
        elif parts[0] == "close":
            self.send(200, b"closing\n", [("content-type", "text/plain")])
            self.close_connection = True
        elif parts[0] == "call":
            self.call(parse_qs(url.query))
        elif parts[0] == "tunnel":
            self.tunnel(parse_qs(url.query))
        elif parts[0] == "log":
            print(parse_qs(url.query).get("line", [""])[0], flush=True)
            self.send(200, b"logged\n", [("content-type", "text/plain")])
        else:
            answer = {
                "method": self.command,
                "path": url.path,
                "query": url.query,
                "headers": [[k.lower(), v] for k, v in self.headers.items()
                            if k.lower() not in ("host", "connection", "content-length")],
                "bodyLength": len(received),
                "bodySHA256": hashlib.sha256(received).hexdigest(),
            }
            self.send(200, json.dumps(answer, sort_keys=True).encode(),
                      [("content-type", "application/json"), ("x-repeated", "one"), ("x-repeated", "two")])

    def call(self, query):
        import urllib.error, urllib.request
        base = os.environ.get("BERTH_URL", "")
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("traceparent", "x-request-id") or k.lower().startswith("x-berth-call-")}
        # x-berth-call-instance: NAME reaches the egress listener as x-berth-instance: NAME (the edge in front of
        # this app takes x-berth-instance for itself).
        headers = {k.lower().replace("x-berth-call-", "x-berth-"): v for k, v in headers.items()}
        data = b"x" * int(query["post"][0]) if "post" in query else None
        if "url" in query:
            request = urllib.request.Request(query["url"][0], headers=headers, data=data)
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": base}))
        else:
            request = urllib.request.Request(base + query["target"][0], headers=headers, data=data)
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as answer:
                status, error = answer.status, answer.headers.get("x-berth-error")
                if "digest" in query:
                    digest, length = hashlib.sha256(), 0
                    while piece := answer.read(1 << 16):
                        digest.update(piece)
                        length += len(piece)
                    body = json.dumps({"length": length, "sha256": digest.hexdigest()}).encode()
                else:
                    body = answer.read()
        except urllib.error.HTTPError as failed:
            status, error, body = failed.code, failed.headers.get("x-berth-error"), failed.read()
        self.send(status, body, [("content-type", "text/plain")] + ([("x-berth-error", error)] if error else []))

    def tunnel(self, query):
        import socket
        proxy = urlsplit(os.environ.get("BERTH_URL", ""))
        to, text = query["to"][0], query.get("send", [""])[0].encode()
        with socket.create_connection((proxy.hostname, proxy.port), timeout=10) as sock:
            sock.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (to.encode(), to.encode()))
            head = b""
            while b"\r\n\r\n" not in head:
                piece = sock.recv(4096)
                if not piece:
                    break
                head += piece
            head, _, rest = head.partition(b"\r\n\r\n")
            status = head.split(b"\r\n")[0].decode("latin-1")
            if " 200 " in status + " ":
                sock.sendall(text)
                sock.shutdown(socket.SHUT_WR)
            while piece := sock.recv(65536):
                rest += piece
        answer = {"status": status, "head": head.decode("latin-1"), "received": rest.decode("latin-1")}
        self.send(200, json.dumps(answer).encode(), [("content-type", "application/json")])

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PORT", "8080"))
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on {port}", flush=True)
    server.serve_forever()
