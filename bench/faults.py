#!/usr/bin/env python3
"""Faults under load: what clients of a real mesh see when an instance's app dies or hangs (issue 19).

Starts berth-router, three echo apps each behind its own berth-sidecar (class Bench), and berth-edge (route / to
Bench), from --bin. Then, per scenario, 16 keep-alive clients send GET /instance as fast as they are answered, and two
seconds in one instance's app is hurt:
  kill  the app of b-1 is killed (SIGKILL); its sidecar lives on;
  stop  the app of b-2 is stopped (SIGSTOP) for 5 s, then continued.
Printed per scenario: requests, failed (not 200, or no answer), hung (an answer that took over 2 s), req/s before
the fault and after it, and the time to recover: from the fault to the end of the last failed or hung request.

    python3 bench/faults.py --bin .build-release/release [--seconds 10]
"""
import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ECHO = os.path.join(ROOT, "Tests", "BerthIntegrationTests", "Apps", "echo_app.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, path="/", seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


class Mesh:
    def __init__(self, bin_dir, logs):
        self.procs = []
        self.apps = {}
        tcp = lambda: "tcp://127.0.0.1:%d" % free_port()
        frontend, backend, events_in, events_out = tcp(), tcp(), tcp(), tcp()
        self.start("router", [os.path.join(bin_dir, "berth-router"), "--frontend", frontend, "--backend", backend,
                              "--events-in", events_in, "--events-out", events_out], logs)
        for index in range(3):
            port = free_port()
            self.apps["b-%d" % index] = self.start("app-%d" % index, ["/usr/bin/env", "python3", ECHO, str(port)], logs,
                                                   env={"BERTH_INSTANCE": "b-%d" % index})
            if not wait_for(port, "/instance"):
                sys.exit("faults: the echo app on :%d did not start" % port)
            self.start("sidecar-%d" % index, [os.path.join(bin_dir, "berth-sidecar"), "--router", backend, "--events", events_in,
                                              "--class", "Bench", "--instance", "b-%d" % index, "--port", str(port)], logs)
        self.port = free_port()
        self.start("edge", [os.path.join(bin_dir, "berth-edge"), "--listen", "127.0.0.1:%d" % self.port, "--router", frontend,
                            "--events", events_in, "--route", "/=Bench"], logs)
        if not wait_for(self.port, "/instance"):
            sys.exit("faults: the mesh did not answer (logs in %s)" % logs)
        seen = set()
        deadline = time.monotonic() + 10
        while len(seen) < 3 and time.monotonic() < deadline:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            c.request("GET", "/instance")
            seen.add(c.getresponse().read().decode())
        if len(seen) < 3:
            sys.exit("faults: only %s answered" % sorted(seen))

    def start(self, name, command, logs, env=None):
        out = open(os.path.join(logs, name + ".log"), "w")
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self.procs.append(process)
        return process

    def stop(self):
        for process in reversed(self.procs):
            try:
                process.send_signal(signal.SIGCONT)
                process.kill()
            except ProcessLookupError:
                pass
        for process in self.procs:
            process.wait()


def client(port, until, results, lock):
    connection = None
    while time.monotonic() < until:
        started = time.monotonic()
        status = 0
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/instance")
            response = connection.getresponse()
            response.read()
            status = response.status
            if response.getheader("connection", "").lower() == "close":
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException):
            if connection is not None:
                connection.close()
            connection = None
        with lock:
            results.append((started, time.monotonic(), status))


def run(mesh, scenario, seconds):
    results, lock = [], threading.Lock()
    start = time.monotonic()
    until = start + seconds
    threads = [threading.Thread(target=client, args=(mesh.port, until, results, lock)) for _ in range(16)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    fault = time.monotonic()
    app = mesh.apps["b-1" if scenario == "kill" else "b-2"]
    if scenario == "kill":
        app.kill()
    else:
        app.send_signal(signal.SIGSTOP)
        time.sleep(5)
        app.send_signal(signal.SIGCONT)
    for thread in threads:
        thread.join()
    failed = [r for r in results if r[2] != 200]
    hung = [r for r in results if r[2] == 200 and r[1] - r[0] > 2]
    bad_ends = [r[1] for r in failed + hung if r[1] >= fault]
    before = [r for r in results if r[1] < fault]
    after = [r for r in results if r[0] >= fault]
    return {
        "scenario": scenario,
        "requests": len(results),
        "failed": len(failed),
        "hung": len(hung),
        "rps_before": round(len(before) / (fault - start), 1),
        "rps_after": round(len(after) / max(0.001, max(r[1] for r in results) - fault), 1),
        "recovered_after_s": round(max(bad_ends) - fault, 3) if bad_ends else 0.0,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="folder with berth-router, berth-sidecar and berth-edge")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print("| scenario | requests | failed | hung (> 2 s) | req/s before | req/s after | recovered after (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for scenario in ("kill", "stop"):
        logs = tempfile.mkdtemp(prefix="berth-faults-")
        mesh = Mesh(os.path.abspath(args.bin), logs)
        try:
            r = run(mesh, scenario, args.seconds)
        finally:
            mesh.stop()
        print("| {scenario} | {requests} | {failed} | {hung} | {rps_before} | {rps_after} | {recovered_after_s} |".format(**r), flush=True)


if __name__ == "__main__":
    main()
