#!/usr/bin/env bash
# An app that writes each answer in two pieces, head then body, as Python's http.server does (issue 20): direct,
# through two nginx hops, and through Berth, one connection at a time, kept alive. With Nagle's algorithm on the
# app's side and a delayed ACK on the proxy's side, the body waits up to 40 ms on every kept-alive exchange; a
# proxy that acknowledges at once does not wait. Prints p50/p99 per peer.
#
#   bench/two_writes.sh [--bin DIR] [--seconds N]    # DIR holds berth-edge, berth-router, berth-sidecar
#                                                    # (default: .build-release/release, else .build/debug)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=mesh_lib.sh
source "$root/bench/mesh_lib.sh"

bin="" seconds=5
while (($#)); do
    case "$1" in
        --bin) bin="${2:?--bin needs a folder}"; shift ;;
        --seconds) seconds="${2:?--seconds needs a number}"; shift ;;
        -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "usage: bench/two_writes.sh [--bin DIR] [--seconds N]" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$bin" ]; then
    bin="$root/.build-release/release"
    [ -x "$bin/berth-edge" ] || bin="$root/.build/debug"
fi
bin="$(cd "$bin" && pwd)"
require_tools nginx wrk curl python3
require_binaries "$bin"

work="$(mktemp -d /tmp/berth-two-writes.XXXXXX)"
pids=()
trap 'stop_started; rm -rf "$work"' EXIT

# The app: HTTP/1.1 keep-alive, Nagle left on (as most servers leave it), the head and the body in two send()s.
cat >"$work/app.py" <<'PY'
import socket, sys, threading
body = b'{"ok":true,"app":"two-writes","message":"head and body in two writes"}'
head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
def serve(connection):
    with connection:
        pending = b""
        while True:
            while b"\r\n\r\n" not in pending:
                data = connection.recv(65536)
                if not data:
                    return
                pending += data
            _, _, pending = pending.partition(b"\r\n\r\n")  # requests here carry no body
            connection.sendall(head)
            connection.sendall(body)
listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
print("listening", flush=True)
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
PY

app=$(free_port) hop_in=$(free_port) hop_out=$(free_port)
python3 "$work/app.py" "$app" >"$work/app.log" 2>&1 &
pids+=($!)

proxy() { # NAME LISTEN_PORT UPSTREAM_PORT: nginx as a keep-alive reverse proxy, as bench/run.sh configures it
    write_proxy_conf "$work" "$1" "127.0.0.1:$2" "127.0.0.1:$3"
    nginx -p "$work/$1" -c "$work/$1.conf" &
    pids+=($!)
}
proxy hop-out "$hop_out" "$app"
proxy hop-in "$hop_in" "$hop_out"
start_mesh berth "$bin" "$app" "$work"
wait_for_mesh "$port_berth" 30

printf '%-26s %9s %9s %10s\n' peer p50 p99 requests/s
for peer in "direct:$app" "nginx, two hops:$hop_in" "berth:$port_berth"; do
    port=${peer##*:}
    wrk -t1 -c1 -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    out="$(wrk -t1 -c1 -d"${seconds}s" --latency "http://127.0.0.1:$port/")"
    p50="$(awk '$1 == "50%" { print $2 }' <<<"$out")"
    p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
    rate="$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")"
    printf '%-26s %9s %9s %10s\n' "${peer%:*}" "$p50" "$p99" "$rate"
done
