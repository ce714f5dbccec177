#!/usr/bin/python3
"""The edge and the router with N registered sidecars, simulated over real ZeroMQ sockets.

For each N (e.g. 1, 10, 100, 1000) this adds simulated sidecars until N are registered with a running
berth-router: each registers over its own DEALER connection (READY naming its own ipc:// endpoint, then a heartbeat
every second), and all of them answer edges on one ROUTER socket bound to every sidecar's endpoint (a small 200 for
each request, a heartbeat for each heartbeat). A real berth-edge follows the router's directory and picks among the
N; wrk loads the edge with 8 connections for a fixed time. Printed per N, as one JSON line: requests/second, how
many sidecars the edge used, the edge's CPU time per request and its resident memory, and the router's CPU use with
N sidecars heartbeating (it carries no request). Cost per request and memory must stay flat as N grows.

The wire is Proto/berth.proto, encoded by hand (proto3 varints and length-delimited fields): only the few
fields needed. Needs pyzmq (Debian: python3-zmq) and wrk; run with /usr/bin/python3.
"""
import argparse
import heapq
import json
import os
import re
import resource
import select
import subprocess
import sys
import time

import zmq

# ---- protobuf, by hand ----


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3) + varint(n) if n else b""


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def fields(buf):
    """{field number: [value, ...]} for varint (int) and length-delimited (bytes) fields."""
    out = {}
    i, n = 0, len(buf)
    while i < n:
        key = 0
        shift = 0
        while True:
            b = buf[i]
            i += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        number, wire = key >> 3, key & 7
        if wire == 0 or wire == 2:
            v = 0
            shift = 0
            while True:
                b = buf[i]
                i += 1
                v |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            if wire == 2:
                v, i = buf[i:i + v], i + v
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wire)
        out.setdefault(number, []).append(v)
    return out


def envelope_ready(class_name, instance, port, capacity, endpoint):
    ready = (f_varint(1, 2) + f_bytes(2, class_name) + f_bytes(3, instance) + f_bytes(4, varint(port))
             + f_varint(5, capacity) + f_varint(6, 1000) + f_bytes(7, endpoint))
    return f_bytes(1, ready)


def envelope_heartbeat(in_flight=0):
    return f_bytes(2, f_varint(1, in_flight))


def envelope_response(request_id, status, served_by):
    header = f_bytes(1, "content-type") + f_bytes(2, "application/json")
    response = f_varint(1, request_id) + f_varint(2, status) + f_bytes(3, header) + f_bytes(5, served_by)
    return f_bytes(5, response)


KIND_READY, KIND_HEARTBEAT, KIND_DISCONNECT, KIND_REQUEST, KIND_RESPONSE = 1, 2, 3, 4, 5


def envelope_kind(buf):
    f = fields(buf)
    for kind in (KIND_REQUEST, KIND_RESPONSE, KIND_HEARTBEAT, KIND_DISCONNECT, KIND_READY):
        if kind in f:
            return kind, fields(f[kind][0])
    return 0, {}


def cpu_ns(pid):
    """CPU time of every thread of `pid`, in ns: its process CPU-time clock (MAKE_PROCESS_CPUCLOCK(pid, SCHED))."""
    return time.clock_gettime_ns(((~pid) << 3) | 2)


def resident_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


BODY = b'{"ok":true,"app":"simulated sidecar"}'


class Sims:
    """N simulated sidecars: a DEALER each to the router, one ROUTER bound to all their endpoints for edges."""

    def __init__(self, args):
        self.args = args
        self.context = zmq.Context(io_threads=1)
        self.context.set(zmq.MAX_SOCKETS, 16384)
        self.poller = select.epoll()
        self.serving = self.context.socket(zmq.ROUTER)
        self.serving.setsockopt(zmq.LINGER, 0)
        self.serving_fd = self.serving.getsockopt(zmq.FD)
        self.poller.register(self.serving_fd, select.EPOLLIN)
        self.links = {}  # dealer fd -> (socket, name, endpoint)
        self.registered = set()
        self.heartbeats = []
        self.answered = {}  # edge link identity -> count
        self.names = []

    def add(self, count):
        now = time.monotonic()
        for _ in range(count):
            index = len(self.names)
            name = "sim-%d" % index
            endpoint = "ipc://%s/sim-%d.sock" % (self.args.work, index)
            self.serving.bind(endpoint)
            dealer = self.context.socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.connect(self.args.backend)
            fd = dealer.getsockopt(zmq.FD)
            self.links[fd] = (dealer, name, endpoint)
            self.names.append(fd)
            self.poller.register(fd, select.EPOLLIN)
            dealer.send(envelope_ready(self.args.class_name, name, 8080, self.args.capacity, endpoint))
            heapq.heappush(self.heartbeats, (now + (index % 100) / 100.0, fd))

    def drain_link(self, fd):
        dealer, name, endpoint = self.links[fd]
        while dealer.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            frames = dealer.recv_multipart(zmq.NOBLOCK)
            self.registered.add(fd)
            kind, _ = envelope_kind(frames[0])
            if kind == KIND_DISCONNECT:
                self.registered.discard(fd)
                dealer.send(envelope_ready(self.args.class_name, name, 8080, self.args.capacity, endpoint), zmq.NOBLOCK)

    def drain_serving(self):
        socket = self.serving
        while socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            frames = socket.recv_multipart(zmq.NOBLOCK)
            if len(frames) < 2:
                continue
            kind, body = envelope_kind(frames[1])
            if kind == KIND_REQUEST:
                request_id = body[1][0] if 1 in body else 0
                served_by = f_bytes(1, self.args.class_name) + f_bytes(2, "sim") + f_varint(3, 8080)
                socket.send_multipart([frames[0], envelope_response(request_id, 200, served_by), BODY], zmq.NOBLOCK)
                self.answered[frames[0]] = self.answered.get(frames[0], 0) + 1
            elif kind == KIND_HEARTBEAT:
                socket.send_multipart([frames[0], envelope_heartbeat()], zmq.NOBLOCK)

    def pump(self, timeout):
        now = time.monotonic()
        while self.heartbeats and self.heartbeats[0][0] <= now:
            _, fd = heapq.heappop(self.heartbeats)
            self.links[fd][0].send(envelope_heartbeat(), zmq.NOBLOCK)
            self.drain_link(fd)
            heapq.heappush(self.heartbeats, (now + 1.0, fd))
        for fd, _ in self.poller.poll(timeout):
            if fd == self.serving_fd:
                self.drain_serving()
            else:
                self.drain_link(fd)
        self.drain_serving()

    def wait_registered(self, timeout=60.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(self.registered) == len(self.names):
                return True
            self.pump(0.01)
        return False

    def spin(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump(0.005)


def wrk(args, seconds, sims):
    """Runs wrk against the edge while the simulated sidecars answer; returns (requests, errors)."""
    process = subprocess.Popen(["wrk", "--timeout", "5s", "-t1", "-c8", "-d%ds" % seconds, args.edge_url],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while process.poll() is None:
        sims.pump(0.002)
    out = process.stdout.read()
    requests = int(re.search(r"(\d+) requests in", out).group(1)) if re.search(r"(\d+) requests in", out) else 0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return requests, errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", required=True, help="the router's backend endpoint")
    parser.add_argument("--router-pid", type=int, required=True)
    parser.add_argument("--edge-pid", type=int, required=True)
    parser.add_argument("--edge-url", required=True, help="a URL on the edge routed to --class-name")
    parser.add_argument("--work", required=True, help="a folder for the simulated sidecars' ipc endpoints")
    parser.add_argument("--counts", default="1,10,100,1000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--idle-seconds", type=float, default=2.0)
    parser.add_argument("--capacity", type=int, default=128)
    parser.add_argument("--class-name", default="Scale")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    counts = [int(c) for c in args.counts.split(",")]
    if hard < max(counts) * 3 + 64:
        sys.exit("edge_scale: the open-file limit %d is too low for %d sidecars" % (hard, max(counts)))

    sims = Sims(args)
    for count in counts:
        sims.add(count - len(sims.names))
        if not sims.wait_registered():
            sys.exit("edge_scale: %d of %d simulated sidecars never registered" % (count - len(sims.registered), count))
        sims.spin(1.5)  # the edge hears of the last ones
        wrk(args, 1, sims)  # warm-up; also proves the path works

        cpu0 = cpu_ns(args.router_pid)
        t0 = time.monotonic()
        sims.spin(args.idle_seconds)
        router_idle = (cpu_ns(args.router_pid) - cpu0) / (time.monotonic() - t0)

        sims.answered.clear()
        edge0 = cpu_ns(args.edge_pid)
        t0 = time.monotonic()
        requests, errors = wrk(args, int(args.seconds), sims)
        elapsed = time.monotonic() - t0
        edge_cpu = cpu_ns(args.edge_pid) - edge0
        print(json.dumps({
            "sidecars": count,
            "requests": requests,
            "errors": errors,
            "sidecars_used": len(sims.answered),
            "rps": round(requests / elapsed, 1),
            "edge_cpu_us_per_req": round(edge_cpu / 1e3 / max(requests, 1), 2),
            "edge_rss_kib": resident_kib(args.edge_pid),
            "router_idle_cpu_pct": round(router_idle / 1e7, 2),
            "router_rss_kib": resident_kib(args.router_pid),
        }), flush=True)
    sims.context.destroy(linger=0)


if __name__ == "__main__":
    main()
