#!/usr/bin/python3
"""The router alone with N registered sidecars, simulated over real ZeroMQ DEALER sockets.

For each N (e.g. 1, 10, 100, 1000) this adds simulated sidecars until N are registered with a running
berth-router: each is its own DEALER connection on the backend that sends READY, heartbeats every second and
answers every request with a small 200 response. A client DEALER on the frontend sends requests for the class at
a fixed rate (the same for every N, so the router batches alike; at most a window of them in flight) for a
fixed time; latency counts from each request's due time. Printed per N, as one JSON line: requests/second, latency
percentiles, and the router's CPU time per request (all threads, from the process CPU-time clock), minus what
it spends idle with N sidecars heartbeating. Cost per request must stay flat as N grows.

The wire is Proto/berth.proto, encoded by hand (proto3 varints and length-delimited fields): only the few
fields the router needs. Needs pyzmq (Debian: python3-zmq); run with /usr/bin/python3.
"""
import argparse
import heapq
import json
import os
import resource
import select
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


def envelope_ready(class_name, instance, port, capacity):
    ready = (f_varint(1, 1) + f_bytes(2, class_name) + f_bytes(3, instance) + f_bytes(4, varint(port))
             + f_varint(5, capacity) + f_varint(6, 1000))
    return f_bytes(1, ready)


def envelope_heartbeat(in_flight=0):
    return f_bytes(2, f_varint(1, in_flight))


def envelope_request(request_id, class_name):
    request = f_varint(1, request_id) + f_bytes(2, f_bytes(1, class_name)) + f_bytes(4, "GET") + f_bytes(5, "/")
    return f_bytes(4, request)


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


# ---- the router's CPU time ----


def router_cpu_ns(pid):
    """CPU time of every thread of `pid`, in ns: its process CPU-time clock (MAKE_PROCESS_CPUCLOCK(pid, SCHED))."""
    return time.clock_gettime_ns(((~pid) << 3) | 2)


# ---- the simulation ----

BODY = b'{"ok":true,"app":"simulated sidecar"}'


class Sim:
    __slots__ = ("socket", "fd", "name", "registered", "answered", "served_by")


class Driver:
    def __init__(self, args):
        self.args = args
        self.context = zmq.Context(io_threads=1)
        self.context.set(zmq.MAX_SOCKETS, 16384)
        self.poller = select.epoll()
        self.by_fd = {}
        self.sims = []
        self.heartbeats = []  # heap of (due, index)
        self.client = self.context.socket(zmq.DEALER)
        self.client.setsockopt(zmq.LINGER, 0)
        self.client.setsockopt(zmq.SNDHWM, 100000)
        self.client.setsockopt(zmq.RCVHWM, 100000)
        self.client.connect(args.frontend)
        self.client_fd = self.client.getsockopt(zmq.FD)
        self.poller.register(self.client_fd, select.EPOLLIN)
        self.sent = {}  # request id -> send time
        self.next_id = 1
        self.latencies = []
        self.errors = 0
        self.statuses = {}
        self.answered_total = 0
        self.behind = 0

    def add_sims(self, count):
        now = time.monotonic()
        for _ in range(count):
            index = len(self.sims)
            sim = Sim()
            sim.name = "sim-%d" % index
            sim.socket = self.context.socket(zmq.DEALER)
            sim.socket.setsockopt(zmq.LINGER, 0)
            sim.socket.setsockopt(zmq.SNDHWM, 10000)
            sim.socket.setsockopt(zmq.RCVHWM, 10000)
            sim.socket.connect(self.args.backend)
            sim.fd = sim.socket.getsockopt(zmq.FD)
            sim.registered = False
            sim.answered = 0
            sim.served_by = f_bytes(1, self.args.class_name) + f_bytes(2, sim.name) + f_varint(3, 8080)
            sim.socket.send(envelope_ready(self.args.class_name, sim.name, 8080, self.args.capacity))
            self.sims.append(sim)
            self.by_fd[sim.fd] = sim
            self.poller.register(sim.fd, select.EPOLLIN)
            heapq.heappush(self.heartbeats, (now + (index % 100) / 100.0, index))
            self.drain_sim(sim)

    def drain_sim(self, sim):
        socket = sim.socket
        while socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            frames = socket.recv_multipart(zmq.NOBLOCK)
            sim.registered = True
            kind, body = envelope_kind(frames[0])
            if kind == KIND_REQUEST:
                request_id = body[1][0] if 1 in body else 0
                socket.send_multipart([envelope_response(request_id, 200, sim.served_by), BODY], zmq.NOBLOCK)
                sim.answered += 1
            elif kind == KIND_DISCONNECT:
                # The router does not know us (e.g. a missed heartbeat): register again.
                sim.registered = False
                socket.send(envelope_ready(self.args.class_name, sim.name, 8080, self.args.capacity), zmq.NOBLOCK)

    def drain_client(self, now_fn=time.monotonic):
        client = self.client
        while client.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            frames = client.recv_multipart(zmq.NOBLOCK)
            now = now_fn()
            kind, body = envelope_kind(frames[0])
            if kind != KIND_RESPONSE:
                continue
            request_id = body[1][0] if 1 in body else 0
            status = body[2][0] if 2 in body else 0
            started = self.sent.pop(request_id, None)
            if started is None:
                continue
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200 and 4 not in body:
                self.latencies.append(now - started)
            else:
                self.errors += 1

    def send_request(self, due=None):
        request_id = self.next_id
        self.next_id += 1
        self.sent[request_id] = due if due is not None else time.monotonic()
        self.client.send(envelope_request(request_id, self.args.class_name), zmq.NOBLOCK)

    def heartbeat_due(self, now):
        while self.heartbeats and self.heartbeats[0][0] <= now:
            _, index = heapq.heappop(self.heartbeats)
            sim = self.sims[index]
            sim.socket.send(envelope_heartbeat(), zmq.NOBLOCK)
            self.drain_sim(sim)
            heapq.heappush(self.heartbeats, (now + 1.0, index))

    def pump(self, timeout):
        for fd, _ in self.poller.poll(timeout):
            if fd == self.client_fd:
                self.drain_client()
            else:
                self.drain_sim(self.by_fd[fd])
        self.drain_client()

    def spin(self, seconds, window=0, rate=0.0, deadline_for_outstanding=5.0):
        """Pumps messages for `seconds`. With a window, keeps up to that many requests in flight; with a rate too,
        sends on a fixed timeline (request i due at start + i/rate) and measures latency from the due time."""
        start = time.monotonic()
        end = start + seconds
        due = 0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            self.heartbeat_due(now)
            if rate:
                while len(self.sent) < window and start + due / rate <= now:
                    self.send_request(start + due / rate)
                    due += 1
                wait = max(0.0, min(0.005, start + due / rate - time.monotonic()))
            else:
                while window and len(self.sent) < window:
                    self.send_request()
                wait = 0.005
            self.pump(wait)
        if window:
            hard = time.monotonic() + deadline_for_outstanding
            while self.sent and time.monotonic() < hard:
                self.heartbeat_due(time.monotonic())
                self.pump(0.005)
            self.errors += len(self.sent)
            self.sent.clear()
        if rate:
            self.behind = int((end - start) * rate) - due  # requests the driver could not send on time

    def wait_registered(self, timeout=60.0):
        end = time.monotonic() + timeout
        next_ready = time.monotonic() + 0.5
        while time.monotonic() < end:
            if all(sim.registered for sim in self.sims):
                return True
            now = time.monotonic()
            self.heartbeat_due(now)
            if now >= next_ready:
                next_ready = now + 0.5
                for sim in self.sims:
                    if not sim.registered:
                        sim.socket.send(envelope_ready(self.args.class_name, sim.name, 8080, self.args.capacity), zmq.NOBLOCK)
            self.pump(0.01)
        return False


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[int((len(sorted_values) - 1) * p)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frontend", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--router-pid", type=int, required=True)
    parser.add_argument("--counts", default="1,10,100,1000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--idle-seconds", type=float, default=2.0)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rate", type=float, default=2000.0,
                        help="requests per second, the same for every N, so the router batches alike (0: as fast as the window allows)")
    parser.add_argument("--capacity", type=int, default=128)
    parser.add_argument("--class-name", default="Bench")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    counts = [int(c) for c in args.counts.split(",")]
    if hard < max(counts) * 2 + 64:
        sys.exit("router_scale: the open-file limit %d is too low for %d sidecars" % (hard, max(counts)))

    driver = Driver(args)
    for count in counts:
        driver.add_sims(count - len(driver.sims))
        if not driver.wait_registered():
            missing = sum(1 for s in driver.sims if not s.registered)
            sys.exit("router_scale: %d of %d simulated sidecars never registered" % (missing, count))
        driver.spin(0.5, window=args.window, rate=args.rate)  # warm-up; also proves the path works
        driver.latencies.clear()
        driver.errors = 0
        driver.statuses.clear()

        cpu0 = router_cpu_ns(args.router_pid)
        t0 = time.monotonic()
        driver.spin(args.idle_seconds)
        idle_rate = (router_cpu_ns(args.router_pid) - cpu0) / (time.monotonic() - t0)  # ns per second

        for sim in driver.sims:
            sim.answered = 0
        cpu0 = router_cpu_ns(args.router_pid)
        t0 = time.monotonic()
        driver.spin(args.seconds, window=args.window, rate=args.rate)
        elapsed = time.monotonic() - t0
        cpu = router_cpu_ns(args.router_pid) - cpu0
        done = len(driver.latencies)
        lat = sorted(driver.latencies)
        busy_sims = sum(1 for s in driver.sims if s.answered)
        print(json.dumps({
            "sidecars": count,
            "requests": done,
            "errors": driver.errors,
            "statuses": {str(k): v for k, v in driver.statuses.items()},
            "sidecars_used": busy_sims,
            "rps": round(done / elapsed, 1),
            "offered_rps": args.rate,
            "not_sent_on_time": driver.behind,
            "p50_ms": round(percentile(lat, 0.50) * 1e3, 4),
            "p90_ms": round(percentile(lat, 0.90) * 1e3, 4),
            "p99_ms": round(percentile(lat, 0.99) * 1e3, 4),
            "router_cpu_us_per_req": round(cpu / 1e3 / max(done, 1), 2),
            "router_cpu_us_per_req_net": round((cpu - idle_rate * elapsed) / 1e3 / max(done, 1), 2),
            "router_idle_cpu_pct": round(idle_rate / 1e7, 2),
            "router_busy_cpu_pct": round(cpu / elapsed / 1e7, 1),
        }), flush=True)
    driver.context.destroy(linger=0)


if __name__ == "__main__":
    main()
