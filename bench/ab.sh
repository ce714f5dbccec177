#!/usr/bin/env bash
# Two builds of Berth side by side, for a change whose effect is smaller than the noise between two runs of
# bench/run.sh: open-loop latency at a fixed rate, the two meshes alternated round after round in front of one app.
#
#   bench/ab.sh OLD_DIR NEW_DIR [--rounds N] [--rate R] [--seconds S] [--new-edge-args "ARGS"]
#
# Each DIR holds berth-edge, berth-router and berth-sidecar (release builds). Both meshes run at once on
# 127.0.0.1 (the one not measured only heartbeats), in front of one nginx app with one worker, as in bench/run.sh.
# Prints one line per round and mesh, then the median of each percentile per mesh.
set -euo pipefail

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
(($# >= 2)) || { usage >&2; exit 2; }
old=$1 new=$2
shift 2
rounds=4 rate=1000 seconds=10 new_edge_args=""
while (($#)); do
    case "$1" in
        --rounds) rounds="${2:?}"; shift ;;
        --rate) rate="${2:?}"; shift ;;
        --seconds) seconds="${2:?}"; shift ;;
        --new-edge-args) new_edge_args="${2:?}"; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
for dir in "$old" "$new"; do
    for exe in berth-edge berth-router berth-sidecar; do
        [ -x "$dir/$exe" ] || { echo "error: $dir/$exe is missing or not executable" >&2; exit 1; }
    done
done
for tool in nginx gcc curl; do
    command -v "$tool" >/dev/null || { echo "error: $tool is needed (apt-get install $tool)" >&2; exit 1; }
done

bench="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d /tmp/berth-ab.XXXXXX)"
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
gcc -O2 -Wall -o "$work/loadgen" "$bench/loadgen.c"

# shellcheck source=bench/small_app.sh
source "$bench/small_app.sh"
app_port=$(free_port)
write_small_app "$work" "$app_port"
nginx -p "$work/app" -c "$work/app.conf" &
pids+=($!)

mesh() { # NAME DIR [EDGE ARGS...]: starts a mesh (in this shell, so that cleanup knows its pids); port_NAME is its edge's port
    local name=$1 dir=$2 frontend backend events_in events_out edge
    shift 2
    frontend=$(free_port) backend=$(free_port) events_in=$(free_port) events_out=$(free_port) edge=$(free_port)
    "$dir/berth-router" --frontend "tcp://127.0.0.1:$frontend" --backend "tcp://127.0.0.1:$backend" \
        --events-in "tcp://127.0.0.1:$events_in" --events-out "tcp://127.0.0.1:$events_out" >"$work/$name-router.log" 2>&1 &
    pids+=($!)
    "$dir/berth-sidecar" --router "tcp://127.0.0.1:$backend" --events "tcp://127.0.0.1:$events_in" \
        --class Bench --instance "$name" --port "$app_port" --capacity 128 >"$work/$name-sidecar.log" 2>&1 &
    pids+=($!)
    "$dir/berth-edge" --listen "127.0.0.1:$edge" --router "tcp://127.0.0.1:$frontend" --events "tcp://127.0.0.1:$events_in" \
        --route /=Bench "$@" >"$work/$name-edge.log" 2>&1 &
    pids+=($!)
    printf -v "port_$name" '%s' "$edge"
}

mesh old "$old"
# shellcheck disable=SC2086 # the extra arguments are meant to split
mesh new "$new" $new_edge_args
old_port=$port_old new_port=$port_new
for port in "$old_port" "$new_port"; do
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/" >/dev/null && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$port/" >/dev/null || { echo "error: the mesh on :$port did not answer; logs in $work" >&2; trap - EXIT; exit 1; }
done

echo "open-loop at $rate req/s, ${seconds}s per run, $rounds rounds; old = $old, new = $new"
for round in $(seq "$rounds"); do
    for side in old new; do
        port=$old_port
        [ "$side" = new ] && port=$new_port
        line=$("$work/loadgen" -p "$port" -r "$rate" -d "$seconds" -w 1)
        echo "round $round $side $line" | tee -a "$work/results.txt"
    done
done
python3 - "$work/results.txt" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    fields = line.split()
    values = dict(f.split("=", 1) for f in fields[3:])
    rows.setdefault(fields[2], []).append(values)
print("median over rounds (ms):")
for side in ("old", "new"):
    cells = ", ".join(f"{k[:-3]} {statistics.median(float(r[k]) for r in rows[side]):.3f}" for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms"))
    errors = sum(int(r["errors"]) + int(r["timeouts"]) + int(r["non2xx"]) for r in rows[side])
    print(f"  {side}: {cells}; failed requests {errors}")
EOF
