#!/usr/bin/env bash
# What one request costs each Berth process in instructions and allocations, counted exactly by valgrind's
# callgrind rather than sampled: the measure for "nothing on the hot path allocates without need".
#
#   bench/callgrind.sh BIN_DIR [--seconds S] [--top N] [--keep] [ROLE...]
#
# BIN_DIR holds berth-edge, berth-router and berth-sidecar (release builds). For each ROLE (edge, router, sidecar;
# all three by default) it starts a mesh in front of one nginx app with that process under callgrind, warms it up,
# zeroes the counters, sends small GETs with wrk (4 connections, S seconds), and prints per request: instructions,
# calls to malloc, free and the Swift runtime's allocator and reference counting, and the top functions by their
# own instructions. Numbers are user space only (the kernel's share is in `bench/run.sh --profile`). --keep keeps
# the scratch folder with the callgrind files, for callgrind_annotate or kcachegrind.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
(($# >= 1)) || { usage >&2; exit 2; }
bin=$1
shift
seconds=5 top=15 keep=0 roles=()
while (($#)); do
    case "$1" in
        --seconds) seconds="${2:?}"; shift ;;
        --top) top="${2:?}"; shift ;;
        --keep) keep=1 ;;
        edge | router | sidecar) roles+=("$1") ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
((${#roles[@]})) || roles=(edge router sidecar)
if ! command -v valgrind >/dev/null; then
    echo "installing valgrind" >&2
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq valgrind >/dev/null
fi
bench="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/mesh_lib.sh
source "$bench/mesh_lib.sh"
require_tools valgrind nginx wrk curl python3
require_binaries "$bin"
work="$(mktemp -d /tmp/berth-callgrind.XXXXXX)"
pids=()
finish() {
    stop_started
    if ((keep)); then echo "scratch folder kept: $work" >&2; else rm -rf "$work"; fi
}
trap finish EXIT

# Valgrind 3.19 (Debian 12) cannot read the DWARF 5 that Swift 6 writes and gives up on the binary; without debug
# sections it still has every function's symbol.
for exe in berth-edge berth-router berth-sidecar; do
    strip --strip-debug -o "$work/$exe" "$bin/$exe"
done

app_port=$(free_port)
write_small_app "$work" "$app_port"

measure() { # ROLE: one mesh with ROLE under callgrind; prints its section
    local role=$1 out="$work/callgrind.out.$1"
    start_small_app "$work"
    mesh_wrap_role=$role
    mesh_wrap=(valgrind --tool=callgrind --callgrind-out-file="$out")
    start_mesh bench "$work" "$app_port" "$work"
    local url="http://127.0.0.1:$port_bench/" target_pid
    target_pid=$(tr ' ' '\n' <<<"$procs_bench" | sed -n "s/^$role://p")
    wait_for_mesh "$port_bench" 60 || { tail -20 "$work/bench-$role.log" >&2; exit 1; }
    wrk -t1 -c4 -d2s "$url" >/dev/null # warm-up: connections made, caches and pools filled
    callgrind_control -z "$target_pid" >/dev/null
    local requests
    requests="$(wrk -t1 -c4 -d"${seconds}s" "$url" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')"
    callgrind_control -d "$target_pid" >/dev/null
    stop_started
    echo "## berth-$role ($requests requests, wrk -c4 on /, small JSON)"
    echo
    python3 "$bench/callgrind_summary.py" "$(ls "$out".* | tail -1)" "$requests" "$top" |
        { if command -v swift >/dev/null; then swift demangle --simplified; else cat; fi; }
    echo
}

echo "# Instructions and allocations per request, callgrind ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
for role in "${roles[@]}"; do
    measure "$role"
done
