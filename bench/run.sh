#!/usr/bin/env bash
# Berth side by side with what users would pick instead, on this machine, in one run (issue 5).
#
#   bench/run.sh            # 3 interleaved rounds, medians; ~10 minutes once the release build is cached
#   bench/run.sh --quick    # 1 short round; ~3 minutes
#
# Peers, each its own process on 127.0.0.1: the app (nginx, 1 worker), direct, nginx one hop, nginx two hops,
# and Berth (berth-edge -> berth-sidecar -> the same app, release build; berth-router keeps the directory). Prints one markdown
# table and keeps it in bench/results/YYYY-MM-DD-HHMM.md. See bench/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run.sh [--quick] [--rounds N] [--no-build] [--keep] [--no-save]

  --quick      one round with short runs (about 3 minutes)
  --rounds N   rounds of every scenario, peers interleaved; medians are reported (default 3)
  --no-build   use the binaries already in .build-release (fails when there are none)
  --bin DIR    take berth-edge, berth-router and berth-sidecar from DIR instead (implies --no-build)
  --keep       keep the scratch folder (configs, logs, raw results) and print where it is
  --no-save    print the table only; do not write bench/results/
  --profile    instead of the rounds: perf-record Berth's three processes under each load and print
               where their CPU time goes (kept in the scratch folder with --keep)
EOF
}

quick=0 rounds=3 build=1 keep=0 save=1 bin_override="" profile=0
while (($#)); do
    case "$1" in
        --quick) quick=1; rounds=1 ;;
        --rounds) rounds="${2:?--rounds needs a number}"; shift ;;
        --no-build) build=0 ;;
        --bin) bin_override="${2:?--bin needs a folder}"; build=0; shift ;;
        --keep) keep=1 ;;
        --no-save) save=0 ;;
        --profile) profile=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$root/bench"
py=/usr/bin/python3 # Debian's python: python3-zmq is installed for it

# Durations in seconds: wrk at 32 connections, open-loop, 1 connection, 1 MiB bodies, warm-up before each.
if ((quick)); then
    d_small=3 d_open=4 d_c1=3 d_big=3 d_warm=1 d_scale=2 d_scale_idle=1 d_floor=2
else
    d_small=10 d_open=10 d_c1=5 d_big=5 d_warm=1 d_scale=5 d_scale_idle=2 d_floor=5
fi
open_rate=1000

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# ---- packages ----

install_missing() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]}"
    local sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

# shellcheck source=../scripts/setup.sh
source "$root/scripts/setup.sh" # what Berth builds against
if ! command -v nginx >/dev/null; then
    install_missing nginx-light 2>/dev/null || install_missing nginx
fi
install_missing wrk curl gcc python3-zmq procps

# ---- scratch folder, processes, cleanup ----

work="$(mktemp -d /tmp/berth-bench.XXXXXX)"
pids=() # everything started here, in start order
sampler_pid=""

cleanup() {
    local status=$? pid i
    trap - EXIT INT TERM
    [ -z "$sampler_pid" ] || kill "$sampler_pid" 2>/dev/null || true
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
    for i in $(seq 50); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if ((keep)) || ((status != 0)); then
        log "scratch folder kept: $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$work/logs" "$work/www"
results="$work/results.tsv" # round, scenario, peer, metric, value
: >"$results"

# Ports from 20000-32767: below Linux's ephemeral range, so no client socket takes one by chance; never
# 7700-7703 or 8787, which a running demo may hold. Each is checked free by binding it.
read -r -a ports <<<"$("$py" - <<'EOF'
import random, socket
chosen = []
for port in random.sample(range(20000, 32768), 400):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        chosen.append(port)
    except OSError:
        pass
    finally:
        s.close()
    if len(chosen) == 13:
        break
print(" ".join(map(str, chosen)))
EOF
)"
((${#ports[@]} == 13)) || die "could not find 13 free ports"
app_port=${ports[0]} hop1_port=${ports[1]} hop2_sidecar_port=${ports[2]} hop2_edge_port=${ports[3]}
edge_port=${ports[4]} frontend_port=${ports[5]} backend_port=${ports[6]} events_in_port=${ports[7]} events_out_port=${ports[8]}
scale_frontend=${ports[9]} scale_backend=${ports[10]} scale_events=${ports[11]} scale_edge_port=${ports[12]}

# Waits until `curl URL` prints something containing NEEDLE, for at most SECONDS, while PID lives.
wait_http() {
    local name=$1 pid=$2 url=$3 needle=$4 seconds=${5:-20} deadline
    deadline=$((SECONDS + seconds))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || { tail -20 "$work/logs/$name.log" >&2; die "$name exited during start-up"; }
        if curl -s -m 2 "$url" 2>/dev/null | grep -qF -- "$needle"; then return 0; fi
        sleep 0.05
    done
    tail -20 "$work/logs/$name.log" >&2
    die "$name not ready after ${seconds}s ($url)"
}

# Waits until something accepts TCP connections on PORT.
wait_tcp() {
    local name=$1 pid=$2 port=$3 seconds=${4:-20} deadline
    deadline=$((SECONDS + seconds))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || { tail -20 "$work/logs/$name.log" >&2; die "$name exited during start-up"; }
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    die "$name not listening on $port after ${seconds}s"
}

# ---- build ----

release_bin="$root/.build-release/release"
if ((build)); then
    log "building Berth in release mode into .build-release (the first build takes ~10 minutes)"
    for exe in berth-router berth-sidecar berth-edge; do # only what runs: the rest of the package is not built
        (cd "$root" && swift build -c release --static-swift-stdlib --scratch-path .build-release --product "$exe") >>"$work/logs/build.log" 2>&1 ||
            { tail -30 "$work/logs/build.log" >&2; die "release build of $exe failed (log above)"; }
    done
    release_bin="$(cd "$root" && swift build -c release --static-swift-stdlib --scratch-path .build-release --show-bin-path)"
fi
[ -z "$bin_override" ] || release_bin="$(cd "$bin_override" && pwd)"
for exe in berth-edge berth-router berth-sidecar; do
    [ -x "$release_bin/$exe" ] || die "$release_bin/$exe is missing: build with 'swift build -c release --static-swift-stdlib --scratch-path .build-release'"
done
gcc -O2 -Wall -o "$work/loadgen" "$bench/loadgen.c"

# ---- the app and the nginx peers ----

app_body='{"ok":true,"app":"nginx","message":"hello from the bench app"}'
head -c 1048576 /dev/urandom >"$work/www/big"
head -c 1048576 /dev/zero | tr '\0' 'x' >"$work/upload.bin"
big_sha="$(sha256sum "$work/www/big" | cut -d' ' -f1)"

nginx_common() { # NAME: one process that is its own single worker, logs and temp files in the scratch folder
    local dir="$work/nginx-$1"
    mkdir -p "$dir/tmp"
    cat <<EOF
worker_processes 1;
master_process off;
daemon off;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    tcp_nodelay on;
EOF
}

# The app: the small JSON at /, a 1 MiB file at /big, and /upload that reads a request body of up to 2 MiB
# whole (the mirror subrequest makes nginx read it before answering) and says how many bytes it read.
{
    nginx_common app
    cat <<EOF
    sendfile on;
    server {
        listen 127.0.0.1:$app_port backlog=4096;
        default_type application/json;
        location = / { return 200 '$app_body'; }
        location = /big { root $work/www; default_type application/octet-stream; }
        location = /upload {
            client_max_body_size 2m;
            client_body_buffer_size 2m;
            mirror /upload-read;
            mirror_request_body on;
            root $work/www/no-such-folder;
            log_not_found off;
            error_page 404 405 = @uploaded;
        }
        location = /upload-read { internal; return 204; }
        location @uploaded { return 200 '{"ok":true,"received":\$request_length}'; }
    }
}
EOF
} >"$work/app.conf"

proxy_conf() { # NAME LISTEN_PORT UPSTREAM_PORT: a reverse proxy with upstream keep-alive, bodies in memory
    nginx_common "$1"
    cat <<EOF
    upstream next { server 127.0.0.1:$3; keepalive 64; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$2 backlog=4096;
        location / {
            proxy_pass http://next;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            client_max_body_size 2m;
            client_body_buffer_size 2m;
            proxy_buffers 16 64k;
            proxy_busy_buffers_size 128k;
            proxy_max_temp_file_size 0;
        }
    }
}
EOF
}
proxy_conf hop1 "$hop1_port" "$app_port" >"$work/hop1.conf"
proxy_conf hop2-sidecar "$hop2_sidecar_port" "$app_port" >"$work/hop2-sidecar.conf"
proxy_conf hop2-edge "$hop2_edge_port" "$hop2_sidecar_port" >"$work/hop2-edge.conf"

start() { # NAME COMMAND...: starts one process, logs to logs/NAME.log, remembers its pid in pid_NAME
    local name=$1
    shift
    "$@" >"$work/logs/$name.log" 2>&1 &
    pids+=($!)
    printf -v "pid_${name//-/_}" '%s' "$!"
}

start app nginx -p "$work/nginx-app" -c "$work/app.conf"
wait_http app "$pid_app" "http://127.0.0.1:$app_port/" '"ok":true'
start hop1 nginx -p "$work/nginx-hop1" -c "$work/hop1.conf"
start hop2-sidecar nginx -p "$work/nginx-hop2-sidecar" -c "$work/hop2-sidecar.conf"
start hop2-edge nginx -p "$work/nginx-hop2-edge" -c "$work/hop2-edge.conf"
wait_http hop1 "$pid_hop1" "http://127.0.0.1:$hop1_port/" '"ok":true'
wait_http hop2-sidecar "$pid_hop2_sidecar" "http://127.0.0.1:$hop2_sidecar_port/" '"ok":true'
wait_http hop2-edge "$pid_hop2_edge" "http://127.0.0.1:$hop2_edge_port/" '"ok":true'

# ---- Berth ----

tcp() { printf 'tcp://127.0.0.1:%s' "$1"; }
start router "$release_bin/berth-router" --frontend "$(tcp "$frontend_port")" --backend "$(tcp "$backend_port")" \
    --events-in "$(tcp "$events_in_port")" --events-out "$(tcp "$events_out_port")"
wait_tcp router "$pid_router" "$backend_port"
start sidecar "$release_bin/berth-sidecar" --router "$(tcp "$backend_port")" --events "$(tcp "$events_in_port")" \
    --class Bench --instance bench-0 --port "$app_port" --capacity 128
start edge "$release_bin/berth-edge" --listen "127.0.0.1:$edge_port" --router "$(tcp "$frontend_port")" \
    --events "$(tcp "$events_in_port")" --route /=Bench
# Ready when a request goes all the way through: edge (directory from the router), sidecar, app.
wait_http edge "$pid_edge" "http://127.0.0.1:$edge_port/" '"ok":true' 30

peers=(direct nginx1 nginx2 berth)
declare -A peer_port=([direct]=$app_port [nginx1]=$hop1_port [nginx2]=$hop2_edge_port [berth]=$edge_port)
# The processes on each peer's path besides the app, as ROLE:PID, for memory under load.
declare -A peer_procs=(
    [direct]=""
    [nginx1]="edge:$pid_hop1"
    [nginx2]="edge:$pid_hop2_edge sidecar:$pid_hop2_sidecar"
    [berth]="edge:$pid_edge router:$pid_router sidecar:$pid_sidecar"
)

# ---- every peer answers exactly what the app answers ----

for peer in "${peers[@]}"; do
    port=${peer_port[$peer]}
    body="$(curl -sf -m 5 "http://127.0.0.1:$port/")" || die "$peer: GET / failed"
    [ "$body" = "$app_body" ] || die "$peer: GET / answered '$body', not the app's body"
    sha="$(curl -sf -m 10 "http://127.0.0.1:$port/big" | sha256sum | cut -d' ' -f1)"
    [ "$sha" = "$big_sha" ] || die "$peer: GET /big did not return the app's 1 MiB file"
    answer="$(curl -sf -m 10 -X POST --data-binary "@$work/upload.bin" -H 'Content-Type: application/octet-stream' \
        "http://127.0.0.1:$port/upload")" || die "$peer: POST /upload (1 MiB) failed"
    received="$(sed -n 's/.*"received":\([0-9]*\).*/\1/p' <<<"$answer")"
    ((${received:-0} >= 1048576)) || die "$peer: the app read ${received:-no} bytes of a 1 MiB body ($answer)"
    log "$peer on :$port answers the app's body, its 1 MiB file, and delivers 1 MiB bodies (app read $received bytes)"
done

# ---- the load generator sees a stall (checked against direct) ----

selfcheck="$work/selfcheck.txt"
"$work/loadgen" -p "$app_port" -r "$open_rate" -d 3 -w 0.5 >"$work/lg-base.txt"
"$work/loadgen" -p "$app_port" -r "$open_rate" -d 4 -w 0.5 -t 10 >"$work/lg-stall.txt" &
lg_pid=$!
sleep 2
kill -STOP "$pid_app"
sleep 0.2
kill -CONT "$pid_app"
wait "$lg_pid" || die "loadgen failed during its self-check"
{
    echo "base $(cat "$work/lg-base.txt")"
    echo "stall $(cat "$work/lg-stall.txt")"
} >"$selfcheck"
log "loadgen against direct: $(cat "$work/lg-base.txt")"
log "loadgen with the app stopped for 200 ms: $(cat "$work/lg-stall.txt")"

# ---- --profile: where Berth's processes spend their time ----

profile_berth() {
    command -v perf >/dev/null || install_missing linux-perf
    perf stat -e task-clock true >/dev/null 2>&1 || die "perf cannot count here (perf_event_paranoid is $(cat /proc/sys/kernel/perf_event_paranoid))"
    local url="http://127.0.0.1:$edge_port" scenario role entry seconds=10
    for scenario in c1 small big post; do
        local args=(-t2 -c32 "$url/")
        [ "$scenario" = c1 ] && args=(-t1 -c1 "$url/")
        [ "$scenario" = big ] && args=(-t2 -c8 "$url/big")
        [ "$scenario" = post ] && args=(-t2 -c8 -s "$bench/post.lua" "$url/upload")
        timeout 20 wrk -d1s "${args[@]}" >/dev/null 2>&1 || true
        log "profiling Berth under '$scenario' for ${seconds}s"
        # One system-wide recording (cpu-clock: no hardware counters in most VMs), split by process below,
        # and per process: CPU time and context switches, to divide by the requests wrk made.
        timeout $((seconds + 30)) perf record -e cpu-clock -F 999 -a -g -o "$work/perf-$scenario.data" -- sleep $((seconds + 1)) \
            >"$work/logs/perf-$scenario.log" 2>&1 &
        local perf_pids=($!)
        for entry in ${peer_procs[berth]}; do
            timeout $((seconds + 30)) perf stat -x, -e task-clock,context-switches,page-faults -p "${entry#*:}" -o "$work/stat-$scenario-${entry%%:*}.csv" \
                -- sleep $((seconds + 1)) >/dev/null 2>&1 &
            perf_pids+=($!)
        done
        sleep 0.5
        timeout $((seconds + 20)) wrk --timeout 5s -d "${seconds}s" "${args[@]}" >"$work/logs/wrk-profile-$scenario.txt" 2>&1 || true
        wait "${perf_pids[@]}" || true
        local requests
        requests="$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/logs/wrk-profile-$scenario.txt")"
        for entry in ${peer_procs[berth]}; do
            awk -F, -v role="${entry%%:*}" -v n="${requests:-0}" -v s="$scenario" -v secs="$seconds" '
                $3 == "task-clock" { cpu = $1 } $3 == "context-switches" { cs = $1 } $3 == "page-faults" { pf = $1 }
                END { if (n > 0) printf "%-8s under %-5s: %6.1f us CPU, %5.1f context switches and %5.1f page faults per request (%d requests in %ds, %.2f cores)\n", role, s, cpu * 1000 / n, cs / n, pf / n, n, secs, cpu / 1000 / (secs + 1) }
            ' "$work/stat-$scenario-${entry%%:*}.csv" | tee -a "$work/profile-summary.txt"
        done
        [ "$scenario" = c1 ] && continue
        for entry in ${peer_procs[berth]}; do
            role=${entry%%:*}
            (
                set +o pipefail # head closes the pipe early
                echo "## $role under '$scenario' ($(grep -o 'Requests/sec:.*' "$work/logs/wrk-profile-$scenario.txt"))"
                echo "### by library"
                perf script -i "$work/perf-$scenario.data" -F pid,ip,dso --hide-call-graph 2>/dev/null |
                    awk -v pid="${entry#*:}" '$1 == pid { d = $NF; gsub(/[()]/, "", d); n = split(d, a, "/"); c[a[n]]++; t++ }
                        END { for (k in c) printf "%7.2f%%  %s\n", 100 * c[k] / t, k }' | sort -rn | head -10
                echo "### by function (self time)"
                perf report -i "$work/perf-$scenario.data" --pid "${entry#*:}" --no-children --percentage relative --sort sym --stdio -g none 2>/dev/null |
                    grep -v '^#' | grep -v '^$' | head -40 | swift demangle --simplified 2>/dev/null | cut -c1-220
                echo
            ) >"$work/profile-$scenario-$role.txt"
            cat "$work/profile-$scenario-$role.txt"
        done
    done
}

if ((profile)); then
    profile_berth
    exit 0
fi

# ---- measuring ----

record() { # ROUND SCENARIO PEER key=value...
    local round=$1 scenario=$2 peer=$3 pair
    shift 3
    for pair in "$@"; do printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$scenario" "$peer" "${pair%%=*}" "${pair#*=}" >>"$results"; done
}

start_sampler() { # ROLE:PID...: samples VmRSS every 100 ms (at most 10 minutes) into $work/mem.txt
    : >"$work/mem.txt"
    (($#)) || return 0
    # One process that reads /proc itself: a shell loop would fork awk and sleep for each sample, and those forks
    # took the cores from the peer being measured, more so the more processes the peer has (Berth: three).
    "$py" -c '
import sys, time
entries = [entry.split(":", 1) for entry in sys.argv[1:]]
for _ in range(6000):
    for role, pid in entries:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        print(role, line.split()[1], flush=True)
        except OSError:
            pass
    time.sleep(0.1)
' "$@" >>"$work/mem.txt" &
    sampler_pid=$!
}

stop_sampler() { # ROUND SCENARIO PEER
    [ -n "$sampler_pid" ] || return 0
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
    local role max
    while read -r role max; do record "$1" "$2" "$3" "${role}_rss_max_kb=$max"; done < <(
        awk '{ if ($2 > max[$1]) max[$1] = $2 } END { for (r in max) print r, max[r] }' "$work/mem.txt"
    )
}

run_wrk() { # ROUND SCENARIO PEER SECONDS WRK-ARGS...
    local round=$1 scenario=$2 peer=$3 seconds=$4
    shift 4
    timeout $((d_warm + 20)) wrk --timeout 5s -d "${d_warm}s" "$@" >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    start_sampler ${peer_procs[$peer]}
    local out="$work/logs/wrk-$round-$scenario-$peer.txt"
    timeout $((seconds + 30)) wrk --timeout 5s -d "${seconds}s" --latency "$@" >"$out" 2>&1 || true
    stop_sampler "$round" "$scenario" "$peer"
    # shellcheck disable=SC2046
    record "$round" "$scenario" "$peer" $("$py" "$bench/report.py" wrk <"$out")
}

run_open() { # ROUND PEER
    local round=$1 peer=$2
    # shellcheck disable=SC2086
    start_sampler ${peer_procs[$peer]}
    local out
    out="$(timeout $((d_open + 30)) "$work/loadgen" -p "${peer_port[$peer]}" -u / -r "$open_rate" -d "$d_open" -w 1 -c 16 -t 5 || true)"
    stop_sampler "$round" open "$peer"
    [ -n "$out" ] || out="errors=1"
    # shellcheck disable=SC2086
    record "$round" open "$peer" $out
}

# Clients that connect and then say nothing, held open beside the load: an edge that looks at every connection on
# every wake-up slows down with them; one that asks the kernel only for the ready ones does not.
idle_clients=2000
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) > idle_clients + 1000)) || die "the open-files limit ($(ulimit -n)) is too low for $idle_clients idle clients"

run_idle() { # ROUND PEER
    local round=$1 peer=$2 held="$work/idle-held"
    rm -f "$held"
    "$py" -c '
import socket, sys, time
port, count, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
open(ready, "w").write(str(len(held)))
time.sleep(600)
' "${peer_port[$peer]}" "$idle_clients" "$held" &
    local holder=$!
    local i
    for i in $(seq 100); do [ -s "$held" ] && break; sleep 0.1; done
    [ -s "$held" ] || die "$peer: could not hold $idle_clients idle connections open"
    run_wrk "$round" idle "$peer" "$d_small" -t2 -c32 "http://127.0.0.1:${peer_port[$peer]}/"
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
}

scenarios=(small open c1 big post idle)
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
started=$SECONDS
for ((round = 1; round <= rounds; round++)); do
    for scenario in "${scenarios[@]}"; do
        # Interleaved: every scenario runs for each peer in turn, and the order rotates every round.
        for ((i = 0; i < ${#peers[@]}; i++)); do
            peer=${peers[$(((i + round - 1) % ${#peers[@]}))]}
            url="http://127.0.0.1:${peer_port[$peer]}"
            log "round $round/$rounds: $scenario on $peer ($((SECONDS - started))s)"
            case $scenario in
                small) run_wrk "$round" small "$peer" "$d_small" -t2 -c32 "$url/" ;;
                open) run_open "$round" "$peer" ;;
                c1) run_wrk "$round" c1 "$peer" "$d_c1" -t1 -c1 "$url/" ;;
                big) run_wrk "$round" big "$peer" "$d_big" -t2 -c8 "$url/big" ;;
                post) run_wrk "$round" post "$peer" "$d_big" -t2 -c8 -s "$bench/post.lua" "$url/upload" ;;
                idle) run_idle "$round" "$peer" ;;
            esac
        done
    done
done
for peer in berth nginx2; do # the peak resident memory of each process over the whole run
    for entry in ${peer_procs[$peer]}; do
        record 0 hwm "$peer" "${entry%%:*}_hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/${entry#*:}/status")"
    done
done
kill -0 "$pid_edge" "$pid_router" "$pid_sidecar" 2>/dev/null || die "a Berth process died during the run (see $work/logs)"

# ---- the edge with 1, 10, 100, 1000 simulated sidecars ----

log "the edge with 1, 10, 100, 1000 simulated sidecars ($((SECONDS - started))s)"
mkdir -p "$work/scale"
start scale-router "$release_bin/berth-router" --frontend "$(tcp "$scale_frontend")" --backend "$(tcp "$scale_backend")" \
    --events-in "$(tcp "$scale_events")" --events-out ipc://"$work/scale-events-out" --log-level warning
wait_tcp scale-router "$pid_scale_router" "$scale_backend"
start scale-edge "$release_bin/berth-edge" --listen "127.0.0.1:$scale_edge_port" --router "$(tcp "$scale_frontend")" \
    --events "$(tcp "$scale_events")" --route /=Scale --log-level warning
wait_tcp scale-edge "$pid_scale_edge" "$scale_edge_port"
timeout 900 "$py" "$bench/edge_scale.py" --backend "$(tcp "$scale_backend")" --router-pid "$pid_scale_router" \
    --edge-pid "$pid_scale_edge" --edge-url "http://127.0.0.1:$scale_edge_port/" --work "$work/scale" \
    --counts 1,10,100,1000 --seconds "$d_scale" --idle-seconds "$d_scale_idle" >"$work/scale.jsonl" || die "edge scale test failed"
kill -TERM "$pid_scale_edge" "$pid_scale_router" 2>/dev/null || true

# ---- the router killed mid-run: the requests that failed ----

log "the router killed under load ($((SECONDS - started))s)"
failover_seconds=$((d_small * 2))
timeout $((failover_seconds + 30)) wrk --timeout 5s -t2 -c16 -d "${failover_seconds}s" "http://127.0.0.1:$edge_port/" \
    >"$work/logs/wrk-failover.txt" 2>&1 &
wrk_pid=$!
sleep $((failover_seconds / 3))
kill -KILL "$pid_router"
wait "$wrk_pid" || true
failover_requests="$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/logs/wrk-failover.txt")"
failover_bad="$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$work/logs/wrk-failover.txt")"
failover_socket="$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$work/logs/wrk-failover.txt" | awk '{print $1 + $2 + $3 + $4}')"
failover_rps="$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$work/logs/wrk-failover.txt")"
echo "requests=${failover_requests:-0} failed=$((${failover_bad:-0} + ${failover_socket:-0})) rps=${failover_rps:-0} killed_after=$((failover_seconds / 3))" >"$work/failover.txt"
log "router killed: $(cat "$work/failover.txt")"

# ---- libzmq alone, in Berth's shape: the floor under the request path ----

log "the bus alone (bench/bus_floor.c) ($((SECONDS - started))s)"
gcc -O2 -Wall -o "$work/bus_floor" "$bench/bus_floor.c" -lzmq
: >"$work/floor.txt"
for hops in 3 2; do
    for inflight in 1 32; do
        # A floor that fails (it once hit EAGAIN before its links were up) is tried again, then left out with a
        # warning: it must not lose the run's other results.
        timeout 60 "$work/bus_floor" -H "$hops" -c "$inflight" -d "$d_floor" -w 1 >>"$work/floor.txt" ||
            timeout 60 "$work/bus_floor" -H "$hops" -c "$inflight" -d "$d_floor" -w 1 >>"$work/floor.txt" ||
            log "warning: bus_floor failed twice for $hops hops, $inflight in flight; left out of the report"
    done
done

# ---- the report ----

stamp="$(date -u +%Y-%m-%d-%H%M)"
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "nproc=$(nproc)"
    echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "kernel=$(uname -sr)"
    echo "memory=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "dirty=$(git -C "$root" status --porcelain -- Sources Package.swift Proto 2>/dev/null | wc -l)"
    echo "swift=$(swift --version 2>/dev/null | head -1)"
    echo "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')"
    echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    echo "binaries=$(date -u -r "$release_bin/berth-edge" '+%Y-%m-%d %H:%M UTC')"
    echo "load=load average before the rounds $load_before, after $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
    echo "rounds=$rounds"
    echo "quick=$quick"
    echo "durations=wrk 32 conn ${d_small}s, open-loop ${d_open}s at ${open_rate}/s, 1 conn ${d_c1}s, 1 MiB ${d_big}s, warm-up ${d_warm}s; router scale ${d_scale}s per N"
} >"$work/meta.txt"
save_to=()
((save)) && save_to=(--out "$bench/results/$stamp.md")
mkdir -p "$bench/results"
"$py" "$bench/report.py" table --results "$results" --scale "$work/scale.jsonl" --failover "$work/failover.txt" --floor "$work/floor.txt" --selfcheck "$selfcheck" \
    --meta "$work/meta.txt" "${save_to[@]}"
((save)) && log "kept in bench/results/$stamp.md"
log "done in $((SECONDS - started))s of measuring"
