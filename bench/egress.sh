#!/usr/bin/env bash
# What an egress call costs: app A calling app B through A's own sidecar ($BERTH_URL/Bench/), against A calling B
# directly, at 1 connection and at 32 (issue 18); and, for scale, the same request from a client through an edge.
#
#   bench/egress.sh                 # release build into .build-release (as bench/run.sh), 10 s per run
#   bench/egress.sh --bin DIR       # berth-router, berth-sidecar and berth-edge from DIR
#   bench/egress.sh --duration 3    # seconds per run
#
# wrk stands for app A: its requests go either straight to B (nginx, one worker, the 62-byte JSON of bench/run.sh)
# or to the egress listener of A's sidecar, which sends them over the bus to B's sidecar and on to B. The router
# keeps the directory and is on no request's path. Prints a markdown table: requests per second, mean, p50 and p99
# latency, and the latency the egress path adds to the direct one.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/bench/mesh_lib.sh"

bin="" duration=10
while (($#)); do
    case "$1" in
        --bin) bin="${2:?--bin needs a folder}"; shift ;;
        --duration) duration="${2:?--duration needs seconds}"; shift ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: bench/egress.sh [--bin DIR] [--duration SECONDS]" >&2; exit 2 ;;
    esac
    shift
done

require_tools wrk nginx curl python3
if [ -z "$bin" ]; then
    for exe in berth-router berth-sidecar berth-edge; do
        (cd "$root" && swift build -c release --static-swift-stdlib --scratch-path .build-release --product "$exe") >&2
    done
    bin="$(cd "$root" && swift build -c release --static-swift-stdlib --scratch-path .build-release --show-bin-path)"
fi
for exe in berth-router berth-sidecar berth-edge; do
    [ -x "$bin/$exe" ] || { echo "error: $bin/$exe is missing" >&2; exit 1; }
done

work="$(mktemp -d)"
pids=()
trap 'stop_started; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

app_port=$(free_port) frontend=$(free_port) backend=$(free_port) events_in=$(free_port) events_out=$(free_port)
egress_port=$(free_port) unused_port=$(free_port) edge_port=$(free_port)
write_small_app "$work" "$app_port"
start_small_app "$work"
"$bin/berth-router" --frontend "tcp://127.0.0.1:$frontend" --backend "tcp://127.0.0.1:$backend" \
    --events-in "tcp://127.0.0.1:$events_in" --events-out "tcp://127.0.0.1:$events_out" >"$work/router.log" 2>&1 &
pids+=($!)
# B: the app behind its sidecar.
"$bin/berth-sidecar" --router "tcp://127.0.0.1:$backend" --events "tcp://127.0.0.1:$events_in" \
    --class Bench --instance b-0 --port "$app_port" --capacity 128 >"$work/sidecar-b.log" 2>&1 &
pids+=($!)
# A: a sidecar whose app is wrk; only its egress listener is used.
"$bin/berth-sidecar" --router "tcp://127.0.0.1:$backend" --events "tcp://127.0.0.1:$events_in" \
    --class Caller --instance a-0 --port "$unused_port" \
    --egress-listen "127.0.0.1:$egress_port" --egress-router "tcp://127.0.0.1:$frontend" --egress Bench >"$work/sidecar-a.log" 2>&1 &
pids+=($!)

# An edge in front of B, as a client outside the mesh would call it.
"$bin/berth-edge" --listen "127.0.0.1:$edge_port" --router "tcp://127.0.0.1:$frontend" --events "tcp://127.0.0.1:$events_in" \
    --route /=Bench >"$work/edge.log" 2>&1 &
pids+=($!)

deadline=$((SECONDS + 20))
until curl -sf "http://127.0.0.1:$egress_port/Bench/" >/dev/null && curl -sf "http://127.0.0.1:$edge_port/" >/dev/null; do
    ((SECONDS < deadline)) || { echo "error: the egress listener did not reach Bench within 20 s" >&2; tail -5 "$work"/*.log >&2; exit 1; }
    sleep 0.1
done

# run NAME URL CONNECTIONS: one wrk run; prints "rps mean_us p50_us p99_us".
run() {
    local threads=$(( $3 < 2 ? 1 : 2 ))
    wrk -t"$threads" -c"$3" -d1s "$2" >/dev/null 2>&1 # warm-up
    wrk -t"$threads" -c"$3" -d"${duration}s" --latency "$2" >"$work/$1-$3.txt" 2>&1
    python3 - "$work/$1-$3.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def us(value):
    found = re.match(r"([\d.]+)(us|ms|s|m)$", value)
    if not found: sys.exit(f"cannot read the latency {value!r} in {sys.argv[1]}:\n{text}")
    number, unit = found.groups()
    return float(number) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[unit]
mean = us(re.search(r"^\s+Latency\s+(\S+)", text, re.M).group(1))
p50 = us(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = us(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if errors: print(f"warning: {errors.group(1)} failed responses in {sys.argv[1]}", file=sys.stderr)
print(f"{rps:.0f} {mean:.0f} {p50:.0f} {p99:.0f}")
PY
}

echo "| connections | path | req/s | mean | p50 | p99 | added (p50) |"
echo "|---|---|---|---|---|---|---|"
for connections in 1 32; do
    read -r d_rps d_mean d_p50 d_p99 < <(run direct "http://127.0.0.1:$app_port/" "$connections")
    read -r e_rps e_mean e_p50 e_p99 < <(run egress "http://127.0.0.1:$egress_port/Bench/" "$connections")
    echo "| $connections | direct A → B | $d_rps | ${d_mean} µs | ${d_p50} µs | ${d_p99} µs | |"
    echo "| $connections | A → its sidecar → B's sidecar → B | $e_rps | ${e_mean} µs | ${e_p50} µs | ${e_p99} µs | $((e_p50 - d_p50)) µs |"
    read -r g_rps g_mean g_p50 g_p99 < <(run edge "http://127.0.0.1:$edge_port/" "$connections")
    echo "| $connections | (client → edge → B's sidecar → B) | $g_rps | ${g_mean} µs | ${g_p50} µs | ${g_p99} µs | $((g_p50 - d_p50)) µs |"
done
echo
echo "wrk ${duration}s per run after a 1 s warm-up; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; $(date -u +%Y-%m-%dT%H:%MZ)"
