#!/usr/bin/env bash
# Two builds of Berth side by side, for a change whose effect is smaller than the noise between two runs of
# bench/run.sh: open-loop latency at a fixed rate, the two meshes alternated round after round in front of one app.
#
#   bench/ab.sh OLD_DIR NEW_DIR [--rounds N] [--rate R] [--seconds S] [--new-edge-args "ARGS"] [--throughput]
#
# Each DIR holds berth-edge, berth-router and berth-sidecar (release builds). Both meshes run at once on
# 127.0.0.1 (the one not measured only heartbeats), in front of one nginx app with one worker, as in bench/run.sh.
# Prints one line per round and mesh, then the median of each percentile per mesh. With --throughput, each run is
# wrk at 32 connections instead, and the medians are req/s and each process's CPU time per request.
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
(($# >= 2)) || { usage >&2; exit 2; }
old=$1 new=$2
shift 2
rounds=4 rate=1000 seconds=10 new_edge_args="" throughput=0
while (($#)); do
    case "$1" in
        --rounds) rounds="${2:?}"; shift ;;
        --rate) rate="${2:?}"; shift ;;
        --seconds) seconds="${2:?}"; shift ;;
        --new-edge-args) new_edge_args="${2:?}"; shift ;;
        --throughput) throughput=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
bench="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/mesh_lib.sh
source "$bench/mesh_lib.sh"
require_tools nginx gcc curl
require_binaries "$old" "$new"
work="$(mktemp -d /tmp/berth-ab.XXXXXX)"
pids=()
cleanup() {
    stop_started
    rm -rf "$work"
}
trap cleanup EXIT
gcc -O2 -Wall -o "$work/loadgen" "$bench/loadgen.c"

app_port=$(free_port)
write_small_app "$work" "$app_port"
start_small_app "$work"

start_mesh old "$old" "$app_port" "$work"
# shellcheck disable=SC2086 # the extra arguments are meant to split
start_mesh new "$new" "$app_port" "$work" $new_edge_args
old_port=$port_old new_port=$port_new
for port in "$old_port" "$new_port"; do
    wait_for_mesh "$port" 10 || { echo "logs in $work" >&2; trap - EXIT; exit 1; }
done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # user + system time, in clock ticks

run_once() { # PORT PROCS: one measured run on one mesh, printed as key=value pairs
    local port=$1 procs=$2 requests line entry ticks
    if ((!throughput)); then
        "$work/loadgen" -p "$port" -r "$rate" -d "$seconds" -w 1
        return
    fi
    wrk -t2 -c32 -d1s "http://127.0.0.1:$port/" >/dev/null
    local -A before=()
    for entry in $procs; do before[${entry%%:*}]=$(cpu_ticks "${entry#*:}"); done
    requests=$(wrk -t2 -c32 -d"${seconds}s" "http://127.0.0.1:$port/" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
    line="rps=$((requests / seconds))"
    for entry in $procs; do
        ticks=$(($(cpu_ticks "${entry#*:}") - before[${entry%%:*}]))
        line+=" ${entry%%:*}_us=$(awk -v t="$ticks" -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')"
    done
    echo "$line"
}

if ((throughput)); then
    command -v wrk >/dev/null || { echo "error: wrk is needed (apt-get install wrk)" >&2; exit 1; }
    echo "wrk -t2 -c32, ${seconds}s per run, $rounds rounds; old = $old, new = $new"
else
    echo "open-loop at $rate req/s, ${seconds}s per run, $rounds rounds; old = $old, new = $new"
fi
for round in $(seq "$rounds"); do
    for side in old new; do
        port=$old_port procs=$procs_old
        [ "$side" = new ] && port=$new_port procs=$procs_new
        echo "round $round $side $(run_once "$port" "$procs")" | tee -a "$work/results.txt"
    done
done
python3 - "$work/results.txt" "$throughput" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    fields = line.split()
    rows.setdefault(fields[2], []).append(dict(f.split("=", 1) for f in fields[3:]))
def median(side, key):
    return statistics.median(float(r[key]) for r in rows[side])
if sys.argv[2] == "1":
    print("median over rounds (req/s; CPU microseconds per request):")
    for side in ("old", "new"):
        edge, router, sidecar = (median(side, f"{role}_us") for role in ("edge", "router", "sidecar"))
        print(f"  {side}: {median(side, 'rps'):,.0f} req/s; edge {edge:.1f}, router {router:.1f}, sidecar {sidecar:.1f}, "
              f"all three {edge + router + sidecar:.1f}")
else:
    print("median over rounds (ms):")
    for side in ("old", "new"):
        cells = ", ".join(f"{k[:-3]} {median(side, k):.3f}" for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms"))
        errors = sum(int(r["errors"]) + int(r["timeouts"]) + int(r["non2xx"]) for r in rows[side])
        print(f"  {side}: {cells}; failed requests {errors}")
EOF
