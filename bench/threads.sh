#!/usr/bin/env bash
# Per thread of each Berth process, under wrk at 32 connections: CPU time and context switches per request.
#
#   bench/threads.sh BIN_DIR [--seconds S] [-- EDGE ARGS...]
#
# BIN_DIR holds berth-edge, berth-router and berth-sidecar (release builds). It starts one mesh in front of the
# small nginx app (as bench/ab.sh does), warms it up for a second, then reads /proc/PID/task/TID before and after
# `wrk -t2 -c32` for S seconds (5). A voluntary switch is a thread going to sleep (and so a wake-up later); an
# involuntary one is a thread that could have run on but was preempted. This is how bench/PROFILE.md counts the
# hand-offs between each process's bus thread and libzmq's I/O thread.
set -euo pipefail

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
(($# >= 1)) || { usage >&2; exit 2; }
dir=$1
shift
seconds=5 edge_args=()
while (($#)); do
    case "$1" in
        --seconds) seconds="${2:?}"; shift ;;
        --) shift; edge_args=("$@"); break ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
bench="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/mesh_lib.sh
source "$bench/mesh_lib.sh"
require_tools nginx wrk curl
require_binaries "$dir"
work="$(mktemp -d /tmp/berth-threads.XXXXXX)"
pids=()
cleanup() {
    stop_started
    rm -rf "$work"
}
trap cleanup EXIT

app_port=$(free_port)
write_small_app "$work" "$app_port"
start_small_app "$work"
start_mesh threads "$dir" "$app_port" "$work" "${edge_args[@]}"
wait_for_mesh "$port_threads" 10 || { echo "logs in $work" >&2; trap - EXIT; exit 1; }

# One line per thread: ROLE TID NAME VOLUNTARY INVOLUNTARY CPU_TICKS
snapshot() {
    local entry role pid task
    for entry in $procs_threads; do
        role=${entry%%:*} pid=${entry#*:}
        for task in /proc/"$pid"/task/*; do
            printf '%s %s %s %s %s\n' "$role" "${task##*/}" "$(tr ' ' _ <"$task/comm")" \
                "$(awk '/^voluntary_ctxt_switches/ {v = $2} /^nonvoluntary_ctxt_switches/ {n = $2} END {print v, n}' "$task/status")" \
                "$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "$task/stat")"
        done
    done
}

wrk -t2 -c32 -d1s "http://127.0.0.1:$port_threads/" >/dev/null
snapshot >"$work/before"
requests=$(wrk -t2 -c32 -d"${seconds}s" "http://127.0.0.1:$port_threads/" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
snapshot >"$work/after"
((requests > 0)) || { echo "error: wrk got no answer" >&2; exit 1; }

echo "$((requests / seconds)) req/s at 32 connections; per request:"
awk -v n="$requests" -v hz="$(getconf CLK_TCK)" '
    NR == FNR { before[$2] = $0; next }
    ($2 in before) {
        split(before[$2], b, " ")
        vol = ($4 - b[4]) / n; inv = ($5 - b[5]) / n; cpu = ($6 - b[6]) * 1e6 / hz / n
        if (vol + inv < 0.001 && cpu < 0.05) next
        printf "  %-8s %-14s CPU %5.1f us   voluntary switches %.3f   involuntary %.3f\n", $1, $3, cpu, vol, inv
        total_cpu += cpu; total_vol += vol; total_inv += inv
    }
    END { printf "  %-8s %-14s CPU %5.1f us   voluntary switches %.3f   involuntary %.3f\n", "all", "", total_cpu, total_vol, total_inv }
' "$work/before" "$work/after"
