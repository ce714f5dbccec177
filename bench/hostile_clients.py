#!/usr/bin/env python3
"""Hostile clients against an edge on 127.0.0.1, for bench/hostile.sh: slowloris and greedy bodies.

  hostile_clients.py slowloris PORT EDGE_PID --connections 500 --every 5 --bound 90
      N connections each send the start of a head, then one byte every EVERY seconds. Meanwhile one client sends
      GET / in a loop. Reports when the edge closed the trickling ones (and whether with 408), how many descriptors
      the edge held, and how the other client fared.
  hostile_clients.py greedy PORT EDGE_PID --connections 30 --bytes 33554431
      N connections at once each send a head with Content-Length BYTES and then the body as fast as they can.
      Reports the answers' statuses and the edge's peak resident memory (VmHWM) and its resident memory over time.
Every loop is bounded in time and count; only 127.0.0.1 is contacted.
"""
import argparse, os, socket, statistics, threading, time


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return 0


def descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def normal_client(port, stop, results):
    while not stop.is_set():
        start = time.monotonic()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            results.append((data.startswith(b"HTTP/1.1 200"), time.monotonic() - start))
        except OSError:
            results.append((False, time.monotonic() - start))
        time.sleep(0.05)


def slowloris(args):
    opened, conns = time.monotonic(), []
    for _ in range(args.connections):
        s = socket.create_connection(("127.0.0.1", args.port), timeout=10)
        s.setblocking(False)
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
        conns.append({"sock": s, "opened": time.monotonic(), "closed": None, "data": b""})
    print(f"opened {len(conns)} trickling connections in {time.monotonic() - opened:.1f} s; "
          f"edge descriptors {descriptors(args.pid)}")
    stop, results = threading.Event(), []
    client = threading.Thread(target=normal_client, args=(args.port, stop, results))
    client.start()
    next_byte, deadline, peak_fds = time.monotonic(), time.monotonic() + args.bound, 0
    while any(c["closed"] is None for c in conns) and time.monotonic() < deadline:
        now = time.monotonic()
        for c in conns:
            if c["closed"] is not None:
                continue
            try:
                chunk = c["sock"].recv(65536)
                if chunk:
                    c["data"] += chunk
                else:
                    c["closed"] = now
            except BlockingIOError:
                pass
            except OSError:
                c["closed"] = now
        if now >= next_byte:
            for c in conns:
                if c["closed"] is None:
                    try:
                        c["sock"].send(b"s")
                    except OSError:
                        c["closed"] = now
            next_byte = now + args.every
        peak_fds = max(peak_fds, descriptors(args.pid))
        time.sleep(0.05)
    stop.set()
    client.join()
    closed = [c["closed"] - c["opened"] for c in conns if c["closed"] is not None]
    told = sum(1 for c in conns if c["data"].startswith(b"HTTP/1.1 408"))
    ok = [latency for good, latency in results if good]
    print(f"trickling connections closed: {len(closed)}/{len(conns)}, with 408: {told}")
    if closed:
        print(f"  closed after (s): min {min(closed):.1f}, median {statistics.median(closed):.1f}, max {max(closed):.1f}")
    print(f"edge descriptors, peak: {peak_fds}")
    print(f"other client: {len(ok)}/{len(results)} served"
          + (f", latency median {statistics.median(ok) * 1000:.1f} ms, max {max(ok) * 1000:.1f} ms" if ok else ""))
    for c in conns:
        c["sock"].close()


def greedy(args):
    statuses, lock = [], threading.Lock()
    body = b"g" * (1 << 20)

    def one():
        try:
            s = socket.create_connection(("127.0.0.1", args.port), timeout=60)
            s.sendall(b"POST / HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n" % args.bytes)
            left = args.bytes
            try:
                while left > 0:
                    n = s.send(body[:min(left, len(body))])
                    left -= n
            except OSError:
                pass
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            status = data[9:12].decode() if data.startswith(b"HTTP/1.") else "closed"
        except OSError as error:
            status = type(error).__name__
        with lock:
            statuses.append(status)

    before = proc_status(args.pid, "VmRSS")
    threads = [threading.Thread(target=one) for _ in range(args.connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    peak = before
    while any(t.is_alive() for t in threads) and time.monotonic() - started < args.bound:
        peak = max(peak, proc_status(args.pid, "VmRSS"))
        time.sleep(0.1)
    for t in threads:
        t.join(timeout=1)
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"{args.connections} connections x {args.bytes} bytes in {time.monotonic() - started:.1f} s: answers {counts}")
    print(f"edge resident memory: before {before / 1024:.0f} MiB, peak sampled {peak / 1024:.0f} MiB, "
          f"VmHWM {proc_status(args.pid, 'VmHWM') / 1024:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["slowloris", "greedy"])
    parser.add_argument("port", type=int)
    parser.add_argument("pid", type=int)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--every", type=float, default=5)
    parser.add_argument("--bytes", type=int, default=(32 << 20) - 1)
    parser.add_argument("--bound", type=float, default=120)
    args = parser.parse_args()
    slowloris(args) if args.mode == "slowloris" else greedy(args)
