#!/usr/bin/python3
"""Helpers of bench/run.sh (standard library only).

  report.py wrk < WRK_OUTPUT            key=value pairs from one wrk --latency run (latencies in ms)
  report.py table --results TSV --scale JSONL [--floor TXT] --selfcheck FILE --meta FILE [--out FILE.md]
                                        the markdown report: medians over rounds, Berth against each peer,
                                        PASS/MISS per target of issue 5
"""
import argparse
import json
import math
import re
import statistics
import sys
from collections import defaultdict

PEERS = ["direct", "nginx1", "nginx2", "berth"]
PEER_TITLES = {"direct": "direct", "nginx1": "nginx 1 hop", "nginx2": "nginx 2 hops", "berth": "Berth"}
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def parse_wrk(text):
    out = {}
    m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    out["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
    if m:
        out["avg_ms"], out["max_ms"] = ms(m.group(1)), ms(m.group(3))
    for pct, key in (("50", "p50_ms"), ("75", "p75_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        if m:
            out[key] = ms(m.group(1))
    m = re.search(r"(\d+) requests in ([0-9.]+)(\w+), ([0-9.]+)(\w+) read", text)
    if m:
        out["requests"] = int(m.group(1))
        scale = {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1, "GB": 1024}.get(m.group(5), float("nan"))
        seconds = float(m.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}.get(m.group(3), float("nan"))
        out["read_mib_s"] = float(m.group(4)) * scale / seconds if seconds else 0.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["errors"] = sum(int(g) for g in m.groups()) if m else 0
    if "requests" not in out:
        out["errors"] = out.get("errors", 0) + 1  # wrk did not finish
    return out


# ---- the table ----


def load_results(path):
    values = defaultdict(list)  # (scenario, peer, metric) -> [value per round]
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                continue
            _, scenario, peer, metric, value = parts
            try:
                values[(scenario, peer, metric)].append(float(value))
            except ValueError:
                pass
    return values


def median(values, key):
    v = [x for x in values.get(key, []) if not math.isnan(x)]
    return statistics.median(v) if v else None


def fmt(value, digits):
    if value is None:
        return "–"
    if digits == 0:
        return "{:,.0f}".format(value)
    return "{:.{}f}".format(value, digits)


# (scenario, metric, label, kind, target). kind: tput (higher is better), lat (ms), mem (kB -> MB).
# target: ("ratio", peer, minimum) or ("added", maximum ms) or ("max_mb", maximum).
ROWS = [
    ("small", "rps", "Throughput, 32 connections, small JSON (req/s)", "tput", ("ratio", "nginx2", 1.0)),
    ("open", "p50_ms", "Latency at 1000 req/s open-loop, p50 (ms)", "lat", None),
    ("open", "p90_ms", "Latency at 1000 req/s open-loop, p90 (ms)", "lat", ("added", 0.5)),
    ("open", "p99_ms", "Latency at 1000 req/s open-loop, p99 (ms)", "lat", ("added", 1.0)),
    ("open", "p999_ms", "Latency at 1000 req/s open-loop, p99.9 (ms)", "lat", None),
    ("c1", "avg_ms", "Latency at 1 connection, mean (ms)", "lat", None),
    ("c1", "p50_ms", "Latency at 1 connection, p50 (ms)", "lat", None),
    ("c1", "p99_ms", "Latency at 1 connection, p99 (ms)", "lat", None),
    ("c1", "rps", "Throughput at 1 connection (req/s)", "tput", None),
    ("big", "rps", "1 MiB responses, 8 connections (req/s)", "tput", ("ratio", "nginx2", 0.8)),
    ("post", "rps", "1 MiB request bodies, 8 connections (req/s)", "tput", ("ratio", "nginx2", 0.8)),
    ("idle", "rps", "Throughput, 32 connections beside 2,000 idle clients (req/s)", "tput", None),
    ("mem", "edge_rss_max_kb", "Memory under load, edge process, max VmRSS (MB)", "mem", ("max_mb", 40)),
    ("mem", "router_rss_max_kb", "Memory under load, router process, max VmRSS (MB)", "mem", ("max_mb", 30)),
    ("mem", "sidecar_rss_max_kb", "Memory under load, sidecar process, max VmRSS (MB)", "mem", ("max_mb", 30)),
    ("hwm", "edge_hwm_kb", "Peak memory over the run, edge, VmHWM (MB)", "mem", None),
    ("hwm", "router_hwm_kb", "Peak memory over the run, router, VmHWM (MB)", "mem", None),
    ("hwm", "sidecar_hwm_kb", "Peak memory over the run, sidecar, VmHWM (MB)", "mem", None),
]
LOAD_SCENARIOS = ["small", "open", "c1", "big", "post", "idle"]
scenario_titles = {"small": "32 connections, small JSON", "open": "open-loop at 1000 req/s", "c1": "1 connection",
                   "big": "1 MiB responses", "post": "1 MiB request bodies", "idle": "beside 2,000 idle clients"}


def cell_value(values, scenario, peer, metric):
    if scenario == "mem":  # the largest of the per-scenario medians: memory under any of the loads
        found = [median(values, (s, peer, metric)) for s in LOAD_SCENARIOS]
        found = [v for v in found if v is not None]
        return max(found) if found else None
    return median(values, (scenario, peer, metric))


def problems(values, scenario, peer):
    """Errors, non-2xx answers and timeouts over all rounds of one scenario on one peer."""
    total = 0
    for metric in ("errors", "non2xx", "timeouts"):
        total += sum(values.get((scenario, peer, metric), []))
    return int(total)


def table(values):
    lines = []
    head = ["scenario"] + [PEER_TITLES[p] for p in PEERS] + ["Berth vs direct", "Berth vs nginx 1 hop",
                                                             "Berth vs nginx 2 hops", "target", "result"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 3) + ["---", "---"]) + "|")
    notes = []
    verdicts = []
    for scenario, metric, label, kind, target in ROWS:
        v = {p: cell_value(values, scenario, p, metric) for p in PEERS}
        if all(x is None for x in v.values()):
            continue
        cells = []
        for p in PEERS:
            x = v[p]
            if kind == "tput":
                text = fmt(x, 0)
            elif kind == "lat":
                text = fmt(x, 3)
                if p != "direct" and x is not None and v["direct"] is not None:
                    text += " ({:+.3f})".format(x - v["direct"])
            else:
                text = fmt(x / 1024 if x is not None else None, 1)
            if scenario in LOAD_SCENARIOS and problems(values, scenario, p):
                text += " ⚠"
                note = "{} on {}: {} errors, non-2xx answers or timeouts over all rounds".format(
                    scenario_titles[scenario], PEER_TITLES[p], problems(values, scenario, p))
                if note not in notes:
                    notes.append(note)
            cells.append(text)
        berth = v["berth"]
        versus = []
        for p in ("direct", "nginx1", "nginx2"):
            if berth is None or v[p] is None:
                versus.append("–")
            elif kind == "tput":
                versus.append("{:.2f}×".format(berth / v[p]) if v[p] else "–")
            elif kind == "lat":
                versus.append("{:+.3f} ms".format(berth - v[p]))
            else:
                versus.append("–" if p == "direct" else ("{:.2f}×".format(berth / v[p]) if v[p] else "–"))
        target_text, result = "", ""
        if target and berth is not None:
            if target[0] == "ratio" and v[target[1]]:
                ratio = berth / v[target[1]]
                target_text = "≥ {:.1f}× {}".format(target[2], PEER_TITLES[target[1]])
                result = "PASS" if ratio >= target[2] else "MISS"
                result += " ({:.2f}×)".format(ratio)
            elif target[0] == "added" and v["direct"] is not None:
                added = berth - v["direct"]
                target_text = "added ≤ {} ms".format(target[1])
                result = ("PASS" if added <= target[1] else "MISS") + " (+{:.3f} ms)".format(added)
            elif target[0] == "max_mb":
                target_text = "≤ {} MB".format(target[1])
                result = ("PASS" if berth / 1024 <= target[1] else "MISS") + " ({:.1f} MB)".format(berth / 1024)
            if result:
                verdicts.append((label, result))
        lines.append("| " + " | ".join([label] + cells + versus + [target_text, result]) + " |")
    return lines, notes, verdicts


def scale_table(path):
    rows = []
    try:
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip().startswith("{")]
    except OSError:
        pass
    if not rows:
        return ["(no results)"], None
    base = rows[0]["edge_cpu_us_per_req"] or None
    base_rss = rows[0]["edge_rss_kib"] or None
    lines = [
        "| sidecars | req/s | errors | sidecars used | edge CPU per request (µs) | vs 1 sidecar | edge memory (MB) | router idle CPU | router memory (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["edge_cpu_us_per_req"] / base if base else float("nan")
        lines.append("| {} | {:,.0f} | {} | {} | {:.1f} | {:.2f}× | {:.1f} | {:.1f}% | {:.1f} |".format(
            r["sidecars"], r["rps"], r["errors"], r["sidecars_used"], r["edge_cpu_us_per_req"], ratio,
            r["edge_rss_kib"] / 1024, r["router_idle_cpu_pct"], r["router_rss_kib"] / 1024))
    last = rows[-1]
    verdict = None
    if base and base_rss:
        ratio = last["edge_cpu_us_per_req"] / base
        grown = (last["edge_rss_kib"] - base_rss) / 1024
        verdict = ("Edge cost per pick flat up to {} sidecars (≤ 1.5× of 1 sidecar), memory within +16 MB".format(last["sidecars"]),
                   ("PASS" if ratio <= 1.5 and grown <= 16 else "MISS") + " ({:.2f}×, +{:.1f} MB)".format(ratio, grown))
    return lines, verdict


def failover_table(path):
    """`key=value` lines from run.sh's router-kill scenario."""
    rows = []
    try:
        with open(path) as f:
            rows = [dict(p.split("=", 1) for p in line.split()) for line in f if line.startswith("requests=")]
    except OSError:
        pass
    if not rows:
        return ["(no results)"]
    lines = ["| requests | failed | req/s | router killed after (s) |", "|---:|---:|---:|---:|"]
    for r in rows:
        lines.append("| {:,} | {} | {:,.0f} | {} |".format(int(r["requests"]), r["failed"], float(r["rps"]), r["killed_after"]))
    return lines


def floor_table(path):
    """bench/bus_floor.c's lines: libzmq alone carrying requests in Berth's shape, 3 hops and 2."""
    rows = []
    try:
        with open(path) as f:
            rows = [dict(p.split("=", 1) for p in line.split()) for line in f if line.startswith("hops=")]
    except OSError:
        pass
    if not rows:
        return ["(no results)"]
    lines = [
        "| path | in flight | req/s | edge (µs) | router (µs) | sidecar (µs) | all (µs CPU per request) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        path_text = "edge → router → sidecar → edge" if r["hops"] == "3" else "edge → sidecar → edge"
        lines.append("| {} | {} | {:,.0f} | {} | {} | {} | {} |".format(
            path_text, r["inflight"], float(r["req_per_s"]), r.get("edge_us", "–"), r.get("router_us", "–"),
            r.get("sidecar_us", "–"), r["all_us"]))
    return lines


def main_table(args):
    values = load_results(args.results)
    meta = {}
    with open(args.meta) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    lines, notes, verdicts = table(values)
    scale_lines, scale_verdict = scale_table(args.scale)
    if scale_verdict:
        verdicts.append(scale_verdict)

    selfcheck = {}
    with open(args.selfcheck) as f:
        for line in f:
            kind, _, rest = line.partition(" ")
            selfcheck[kind] = dict(p.split("=", 1) for p in rest.split() if "=" in p)
    stall = selfcheck.get("stall", {})
    base = selfcheck.get("base", {})
    stall_max = float(stall.get("max_ms", "nan"))
    stall_ok = stall_max >= 150

    dirty = meta.get("dirty", "0")
    out = []
    out.append("# Berth benchmark, {}".format(meta.get("date", "")))
    out.append("")
    out.append("- machine: {} cores, {}, {}, {} RAM".format(meta.get("nproc"), meta.get("cpu"), meta.get("kernel"), meta.get("memory")))
    out.append("- code: commit {}{}; release binaries built {}".format(
        meta.get("commit"), "" if dirty == "0" else " plus {} uncommitted changes in Sources/, Package.swift, Proto/".format(dirty),
        meta.get("binaries")))
    out.append("- tools: {}; nginx {}; wrk {}".format(meta.get("swift"), meta.get("nginx"), meta.get("wrk")))
    out.append("- machine load: {}".format(meta.get("load", "?")))
    out.append("- runs: {} round(s), peers interleaved and rotated, medians shown{}; {}".format(
        meta.get("rounds"), " (--quick)" if meta.get("quick") == "1" else "", meta.get("durations")))
    out.append("- peers: direct = client → app (nginx, 1 worker); nginx 1 hop = nginx proxy → app; nginx 2 hops = "
               "edge nginx → sidecar nginx → app (1 worker each, upstream keep-alive); Berth = berth-edge → "
               "berth-sidecar → app (release build; berth-router keeps the directory, off the request's path). All on 127.0.0.1, sharing the machine's cores with the load generator.")
    out.append("- latency cells: value (+ added over direct); 'Berth vs' columns: throughput Berth/peer, latency Berth minus peer, memory Berth/peer.")
    out.append("")
    out.extend(lines)
    out.append("")
    if notes:
        out.extend("- ⚠ " + n for n in notes)
        out.append("")
    out.append("## The edge with N registered sidecars")
    out.append("")
    out.append("N simulated sidecars (bench/edge_scale.py: a DEALER each to the router, READY and a heartbeat a second; one "
               "ROUTER bound to all their endpoints answers edges) register with a second router; a second berth-edge follows "
               "it and picks among the N, under wrk with 8 connections. The simulated sidecars are Python, so req/s is theirs; "
               "the edge's CPU time per request and its memory are the measures that must stay flat.")
    out.append("")
    out.extend(scale_lines)
    out.append("")
    if args.failover:
        out.append("## The router killed mid-run")
        out.append("")
        out.append("wrk with 16 connections on Berth for the whole run; `kill -9` of the only router a third of the way in. "
                   "Every request that got no 200 counts as failed.")
        out.append("")
        out.extend(failover_table(args.failover))
        out.append("")
    out.append("## The bus alone")
    out.append("")
    out.append("bench/bus_floor.c: three C processes with Berth's sockets, options and frames (a 100-byte envelope, a "
               "62-byte body, the answer straight to the edge over ipc://, a Delivered note per 16 answers), no HTTP, no "
               "protobuf, no Swift. Each process's CPU time, all threads, per request: what libzmq alone costs on "
               "Berth's path, and on a path without the router.")
    out.append("")
    out.extend(floor_table(args.floor))
    out.append("")
    out.append("## Targets (issue 5)")
    out.append("")
    out.append("| target | result |")
    out.append("|---|---|")
    for label, result in verdicts:
        out.append("| {} | {} |".format(label, result))
    out.append("")
    out.append("## Load generator check")
    out.append("")
    out.append("bench/loadgen.c against direct at 1000 req/s: p50 {} ms, p99 {} ms, max {} ms. With the app stopped "
               "(SIGSTOP) for 200 ms mid-run: p99 {} ms, max {} ms — {}: a stall shows up as latency.".format(
                   base.get("p50_ms", "?"), base.get("p99_ms", "?"), base.get("max_ms", "?"),
                   stall.get("p99_ms", "?"), stall.get("max_ms", "?"), "PASS" if stall_ok else "MISS"))
    out.append("")
    out.append("## Every round")
    out.append("")
    out.append("| scenario | peer | metric | values per round |")
    out.append("|---|---|---|---|")
    for (scenario, peer, metric), vals in sorted(values.items()):
        if metric in ("rps", "p90_ms", "p99_ms", "avg_ms") or metric.endswith("_kb"):
            out.append("| {} | {} | {} | {} |".format(scenario, PEER_TITLES.get(peer, peer), metric,
                                                     ", ".join("{:.4g}".format(x) for x in vals)))
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "wrk":
        parsed = parse_wrk(sys.stdin.read())
        print(" ".join("{}={}".format(k, round(v, 4) if isinstance(v, float) else v) for k, v in parsed.items()))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["table"])
    parser.add_argument("--results", required=True)
    parser.add_argument("--scale", required=True)
    parser.add_argument("--failover")
    parser.add_argument("--floor", default="")
    parser.add_argument("--selfcheck", required=True)
    parser.add_argument("--meta", required=True)
    parser.add_argument("--out")
    main_table(parser.parse_args())


if __name__ == "__main__":
    main()
