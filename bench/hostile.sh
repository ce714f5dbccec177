#!/usr/bin/env bash
# Hostile clients against one build's edge: slowloris (many connections trickling their heads) and greedy bodies
# (many connections each sending a body near --max-body at once). See bench/hostile_clients.py for what is measured.
#
#   bench/hostile.sh DIR [--slow N] [--every S] [--greedy N] [--bytes B] [--nofile N] [--edge-args "ARGS"]
#
# DIR holds berth-edge, berth-router and berth-sidecar. --nofile runs the edge under `prlimit --nofile=N:N`, the
# issue's "edge's file limit at 256". Defaults: 500 connections, a byte every 5 s, 30 greedy bodies of 32 MiB - 1.
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
(($# >= 1)) || { usage >&2; exit 2; }
dir=$1
shift
slow=500 every=5 greedy=30 bytes=$(((32 << 20) - 1)) nofile="" edge_args=""
while (($#)); do
    case "$1" in
        --slow) slow="${2:?}"; shift ;;
        --every) every="${2:?}"; shift ;;
        --greedy) greedy="${2:?}"; shift ;;
        --bytes) bytes="${2:?}"; shift ;;
        --nofile) nofile="${2:?}"; shift ;;
        --edge-args) edge_args="${2:?}"; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
bench="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/mesh_lib.sh
source "$bench/mesh_lib.sh"
require_tools nginx curl python3 prlimit
require_binaries "$dir"
work="$(mktemp -d /tmp/berth-hostile.XXXXXX)"
pids=()
trap 'stop_started; rm -rf "$work"' EXIT

app_port=$(free_port)
write_small_app "$work" "$app_port"
start_small_app "$work"
if [ -n "$nofile" ]; then
    mesh_wrap_role=edge
    mesh_wrap=(prlimit "--nofile=$nofile:$nofile" --)
fi
# shellcheck disable=SC2086
start_mesh hostile "$dir" "$app_port" "$work" --max-body "$bytes" $edge_args
wait_for_mesh "$port_hostile" 20
edge_pid=${procs_hostile##*edge:}
echo "edge pid $edge_pid, descriptor limit $(awk '/Max open files/ {print $4}' "/proc/$edge_pid/limits"), args: ${edge_args:-none}"

if ((slow > 0)); then
    echo "== slowloris: $slow connections, a byte every $every s"
    python3 "$bench/hostile_clients.py" slowloris "$port_hostile" "$edge_pid" --connections "$slow" --every "$every" --bound 90
fi
if ((greedy > 0)); then
    echo "== greedy bodies: $greedy connections x $bytes bytes"
    python3 "$bench/hostile_clients.py" greedy "$port_hostile" "$edge_pid" --connections "$greedy" --bytes "$bytes" --bound 120
fi
if ! kill -0 "$edge_pid" 2>/dev/null; then echo "the edge died:"; tail -20 "$work/hostile-edge.log"; exit 1; fi
grep -E "not accepting|accepting paused" "$work/hostile-edge.log" | head -3 || true
