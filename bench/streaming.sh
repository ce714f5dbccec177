#!/usr/bin/env bash
# Streamed bodies through Berth against two nginx hops (issue 17), on this machine, in one run.
#
#   bench/streaming.sh              # 1 GiB down and up, 3 rounds each, time to first byte x 30
#   bench/streaming.sh --size 256   # MiB per transfer (default 1024)
#
# Peers, each its own process on 127.0.0.1: nginx two hops (proxy_buffering off, proxy_request_buffering off,
# upstream keep-alive), Berth (berth-edge -> berth-sidecar), and Berth with a Worker that passes the bodies through
# as they come (streaming-edge, same sidecars; release builds from .build-release; build them with
# bench/run.sh or `swift build -c release --static-swift-stdlib --scratch-path .build-release`). The download comes
# from nginx serving a file (sendfile); the upload and the server-sent event go to
# Tests/BerthIntegrationTests/Apps/stream_app.py, the same app for both peers. Prints one markdown table with MB/s,
# the median time to first byte of a streamed answer, and the peak resident memory of each process.
set -euo pipefail

size_mib=1024 rounds=3 ttfb_runs=30
while (($#)); do
    case "$1" in
        --size) size_mib="${2:?--size needs MiB}"; shift ;;
        --rounds) rounds="${2:?--rounds needs a number}"; shift ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [--size MIB] [--rounds N]" >&2; exit 2 ;;
    esac
    shift
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.build-release/release"
for exe in berth-edge berth-router berth-sidecar streaming-edge; do
    [ -x "$bin/$exe" ] || { echo "error: $bin/$exe is missing (release build: see the header)" >&2; exit 1; }
done
# shellcheck source=mesh_lib.sh
source "$root/bench/mesh_lib.sh"
require_tools nginx curl python3

work="$(mktemp -d /tmp/berth-streaming.XXXXXX)"
pids=()
trap 'stop_started; rm -rf "$work"' EXIT
mkdir -p "$work/www" "$work/logs"
bytes=$((size_mib << 20))
python3 "$root/Tests/BerthIntegrationTests/Apps/stream_app.py" --pattern "$bytes" >"$work/www/file"
want="$(sha256sum "$work/www/file" | cut -d' ' -f1)"

file_port=$(free_port) app_port=$(free_port) hop_sidecar=$(free_port) hop_edge=$(free_port)
nginx_conf() { # NAME: the common part of one single-process nginx
    mkdir -p "$work/$1/tmp"
    cat <<EOF
worker_processes 1;
master_process off;
daemon off;
error_log $work/$1/error.log warn;
pid $work/$1/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/$1/tmp/body;
    proxy_temp_path $work/$1/tmp/proxy;
    fastcgi_temp_path $work/$1/tmp/fastcgi;
    uwsgi_temp_path $work/$1/tmp/uwsgi;
    scgi_temp_path $work/$1/tmp/scgi;
    tcp_nodelay on;
EOF
}
{
    nginx_conf files
    # Any path is the file: Berth's route takes its prefix (/file) off the path the app sees.
    echo "    sendfile on; server { listen 127.0.0.1:$file_port; location / { root $work/www; try_files /file =404; default_type application/octet-stream; } } }"
} >"$work/files.conf"
hop_conf() { # NAME LISTEN: a streaming reverse proxy to the file server (/file) and the stream app (the rest)
    nginx_conf "$1"
    cat <<EOF
    upstream files { server 127.0.0.1:$3; keepalive 16; }
    upstream app { server 127.0.0.1:$4; keepalive 16; }
    server {
        listen 127.0.0.1:$2;
        client_max_body_size 0;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_request_buffering off;
        location = /file { proxy_pass http://files; }
        location / { proxy_pass http://app; }
    }
}
EOF
}
hop_conf hop-sidecar "$hop_sidecar" "$file_port" "$app_port" >"$work/hop-sidecar.conf"
hop_conf hop-edge "$hop_edge" "$hop_sidecar" "$hop_sidecar" >"$work/hop-edge.conf"

launch() { # NAME COMMAND...
    local name=$1
    shift
    "$@" >"$work/logs/$name.log" 2>&1 &
    pids+=($!)
    printf -v "pid_${name//-/_}" '%s' "$!"
}
launch files nginx -p "$work/files" -c "$work/files.conf"
launch app python3 "$root/Tests/BerthIntegrationTests/Apps/stream_app.py" "$app_port"
launch hop-sidecar nginx -p "$work/hop-sidecar" -c "$work/hop-sidecar.conf"
launch hop-edge nginx -p "$work/hop-edge" -c "$work/hop-edge.conf"

# Berth: one sidecar for the file server, one for the stream app, an edge routing /file to the first.
fe=$(free_port) be=$(free_port) ei=$(free_port) eo=$(free_port) edge_port=$(free_port)
launch router "$bin/berth-router" --frontend "tcp://127.0.0.1:$fe" --backend "tcp://127.0.0.1:$be" \
    --events-in "tcp://127.0.0.1:$ei" --events-out "tcp://127.0.0.1:$eo"
launch sidecar-files "$bin/berth-sidecar" --router "tcp://127.0.0.1:$be" --events "tcp://127.0.0.1:$ei" \
    --class Files --instance f-0 --port "$file_port"
launch sidecar-app "$bin/berth-sidecar" --router "tcp://127.0.0.1:$be" --events "tcp://127.0.0.1:$ei" \
    --class App --instance a-0 --port "$app_port"
launch edge "$bin/berth-edge" --listen "127.0.0.1:$edge_port" --router "tcp://127.0.0.1:$fe" \
    --events "tcp://127.0.0.1:$ei" --route /file=Files --route /=App
worker_port=$(free_port)
launch worker-edge "$bin/streaming-edge" --listen "127.0.0.1:$worker_port" --router "tcp://127.0.0.1:$fe" \
    --events "tcp://127.0.0.1:$ei" --route /file=Files --route /=App --name worker-edge
wait_for_mesh "$hop_edge" 20
wait_for_mesh "$edge_port" 30
wait_for_mesh "$worker_port" 30
until curl -sf "http://127.0.0.1:$edge_port/file" -o /dev/null -r 0-0; do sleep 0.1; done
until curl -sf "http://127.0.0.1:$worker_port/file" -o /dev/null -r 0-0; do sleep 0.1; done

declare -A procs=(
    [nginx2]="edge:$pid_hop_edge sidecar:$pid_hop_sidecar"
    [berth]="edge:$pid_edge sidecar-files:$pid_sidecar_files sidecar-app:$pid_sidecar_app router:$pid_router"
    [worker]="edge:$pid_worker_edge sidecar-files:$pid_sidecar_files sidecar-app:$pid_sidecar_app router:$pid_router"
)
declare -A port=([nginx2]=$hop_edge [berth]=$edge_port [worker]=$worker_port)

# sample PEER: prints the peak VmRSS (MiB) of each of the peer's processes while the command after it runs.
sample() {
    local peer=$1
    shift
    : >"$work/mem.txt"
    python3 -c '
import sys, time
entries = [e.split(":", 1) for e in sys.argv[1:]]
while True:
    for role, pid in entries:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    print(role, line.split()[1], flush=True)
        except OSError:
            pass
    time.sleep(0.1)
' ${procs[$peer]} >>"$work/mem.txt" &
    local sampler=$!
    "$@"
    kill "$sampler"
    wait "$sampler" 2>/dev/null || true
}

peak() { awk '{ if ($2 > m[$1]) m[$1] = $2 } END { for (r in m) printf "%s %.1f MiB, ", r, m[r] / 1024 }' "$work/mem.txt" | sed 's/, $//'; }

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A down up ttfb mem_down mem_up
for peer in nginx2 berth worker; do
    url="http://127.0.0.1:${port[$peer]}"
    : >"$work/down-$peer" && : >"$work/up-$peer"
    for ((round = 0; round < rounds; round++)); do
        sample "$peer" curl -sS --fail -o "$work/got" -w '%{speed_download}\n' "$url/file" >>"$work/down-$peer"
        [ "$(sha256sum "$work/got" | cut -d' ' -f1)" = "$want" ] || { echo "error: $peer's download differs" >&2; exit 1; }
        rm -f "$work/got"
        mem_down[$peer]="$(peak)"
        sample "$peer" curl -sS --fail -T "$work/www/file" -X POST -o "$work/answer" -w '%{speed_upload}\n' "$url/upload" >>"$work/up-$peer"
        grep -q "$want" "$work/answer" || { echo "error: $peer's upload reached the app changed: $(cat "$work/answer")" >&2; exit 1; }
        mem_up[$peer]="$(peak)"
    done
    down[$peer]="$(median <"$work/down-$peer")"
    up[$peer]="$(median <"$work/up-$peer")"
    # Time to first byte of a streamed answer: the first server-sent event, written at once by the app.
    for ((run = 0; run < ttfb_runs; run++)); do
        curl -sS -N -o /dev/null -m 5 -w '%{time_starttransfer}\n' "$url/sse/1" || true
    done | median >"$work/ttfb-$peer"
    ttfb[$peer]="$(cat "$work/ttfb-$peer")"
done

mbps() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "| ${size_mib} MiB, medians of $rounds | nginx two hops | Berth | Berth / nginx | Berth, Worker passing through | Worker / nginx |"
echo "|---|---|---|---|---|---|"
echo "| download MB/s | $(mbps "${down[nginx2]}") | $(mbps "${down[berth]}") | $(ratio "${down[berth]}" "${down[nginx2]}") | $(mbps "${down[worker]}") | $(ratio "${down[worker]}" "${down[nginx2]}") |"
echo "| upload MB/s | $(mbps "${up[nginx2]}") | $(mbps "${up[berth]}") | $(ratio "${up[berth]}" "${up[nginx2]}") | $(mbps "${up[worker]}") | $(ratio "${up[worker]}" "${up[nginx2]}") |"
ms() { awk -v t="$1" 'BEGIN { printf "%.2f ms", t * 1000 }'; }
echo "| first byte of a streamed answer, median of $ttfb_runs | $(ms "${ttfb[nginx2]}") | $(ms "${ttfb[berth]}") | $(ratio "${ttfb[berth]}" "${ttfb[nginx2]}") | $(ms "${ttfb[worker]}") | $(ratio "${ttfb[worker]}" "${ttfb[nginx2]}") |"
echo "| peak RSS, download | ${mem_down[nginx2]} | ${mem_down[berth]} | | ${mem_down[worker]} | |"
echo "| peak RSS, upload | ${mem_up[nginx2]} | ${mem_up[berth]} | | ${mem_up[worker]} | |"
