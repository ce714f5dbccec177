#!/usr/bin/env python3
"""Sends ambiguous requests to an HTTP server on 127.0.0.1:PORT, each on its own connection, and prints the first
status, the count of "HTTP/1." in what came back, and whether the server closed the connection (else: open after 3 s).
Used to put Berth's edge beside nginx (bench/results/2026-12-04-hostile.md): routes under /a/ go to an app.

  python3 bench/http_compare.py PORT
"""
import socket, sys, time
S = "GET /a/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
h = "Host: x\r\n"
cases = [
 ("bare-LF blank line", f"POST /a/echo HTTP/1.1\r\n{h}\nContent-Length: {len(S)}\r\n\r\n{S}"),
 ("head of bare LFs", f"GET /a/echo HTTP/1.1\nHost: x\n\n{S}"),
 ("bare CR in value", f"GET /a/echo HTTP/1.1\r\n{h}X-A: 1\r{S}"),
 ("NUL in value", f"GET /a/echo HTTP/1.1\r\n{h}X-A: a\0b\r\n\r\n"),
 ("SOH in value", f"GET /a/echo HTTP/1.1\r\n{h}X-A: a\x01b\r\n\r\n"),
 ("no Host 1.1", "GET /a/echo HTTP/1.1\r\nX-A: 1\r\n\r\n"),
 ("two Host", "GET /a/echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
 ("Host with slash", "GET /a/echo HTTP/1.1\r\nHost: a/b\r\n\r\n"),
 ("CL.TE", f"POST /a/echo HTTP/1.1\r\n{h}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{S}"),
 ("two CL differ", f"POST /a/echo HTTP/1.1\r\n{h}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
 ("TE gzip", f"POST /a/echo HTTP/1.1\r\n{h}Transfer-Encoding: gzip\r\n\r\n{S}"),
 ("TE gzip, chunked", f"POST /a/echo HTTP/1.1\r\n{h}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
 ("TE chunked, chunked", f"POST /a/echo HTTP/1.1\r\n{h}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
 ("HTTP/1.0 + TE", "POST /a/echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
 ("1\\r0 chunk size", f"POST /a/echo HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n1\r0\r\n0123456789abcdef\r\n0\r\n\r\n"),
 ("chunk size bare LF", f"POST /a/echo HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
 ("1 0 chunk size", f"POST /a/echo HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n1 0\r\n0123456789abcdef\r\n0\r\n\r\n"),
 ("obs-fold", f"GET /a/echo HTTP/1.1\r\n{h}X-A: 1\r\n folded\r\n\r\n"),
 ("space before colon", f"POST /a/echo HTTP/1.1\r\n{h}Content-Length : 5\r\n\r\nhello"),
 ("method 40 bytes", "M"*40 + f" /a/echo HTTP/1.1\r\n{h}\r\n"),
 ("method G(T", f"G(T /a/echo HTTP/1.1\r\n{h}\r\n"),
 ("request line 9 KB", "GET /a/echo?" + "q"*9000 + f" HTTP/1.1\r\n{h}\r\n"),
 ("CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n"),
 ("target no slash", f"GET a/echo HTTP/1.1\r\n{h}\r\n"),
 ("HTTP/2.0", f"GET /a/echo HTTP/2.0\r\n{h}\r\n"),
 ("head 70 KB", f"GET /a/echo HTTP/1.1\r\n{h}X-Big: " + "b"*70000 + "\r\n\r\n"),
 ("body over limit", f"POST /a/echo HTTP/1.1\r\n{h}Content-Length: 5000\r\n\r\n"),
 ("non-UTF-8 value", f"GET /a/echo HTTP/1.1\r\n{h}X-A: caf\xe9\r\n\r\n"),
 ("two x-berth-instance", f"GET /a/echo HTTP/1.1\r\n{h}x-berth-instance: a\r\nx-berth-instance: b\r\n\r\n"),
]
port = int(sys.argv[1])
for name, wire in cases:
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(3)
    s.sendall(wire.encode("latin-1"))
    data = b""; closed = False
    start = time.time()
    try:
        while True:
            d = s.recv(65536)
            if not d: closed = True; break
            data += d
    except socket.timeout: pass
    except ConnectionResetError: closed = True
    status = data.split(b"\r\n",1)[0].decode("latin-1")[9:12] if data else "---"
    n = data.count(b"HTTP/1.")
    print(f"{name:24s} {status:4s} answers={n} {'closed' if closed else 'open'} {time.time()-start:.1f}s")
    s.close()
