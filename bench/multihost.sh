#!/usr/bin/env bash
# Berth across hosts, against two nginx hops placed the same way, and CURVE on against CURVE off.
#
#   sudo bench/multihost.sh [BUILD_DIR] [ROUNDS]     # BUILD_DIR: default .build-release/release (built if missing)
#
# The three network namespaces of scripts/hosts.sh act as machines. The client (wrk) and the edge run on h1; the
# sidecar and the app on h2; the router on h1. The nginx peer is the same path: nginx on h1 proxies to nginx on h2,
# which proxies to the app on h2. Each configuration runs with no delay and with `tc netem delay 1ms` on every
# host's link (1 ms each way between hosts). Loads: 32 connections for throughput (req/s), and 1 connection for
# latency (p50 and p99, from wrk --latency). Berth runs without keys and with CURVE on every socket.
# Results go to bench/results/DATE-multihost.md. Compare ratios within one run: the machine is noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/mesh_lib.sh

build=${1:-.build-release/release}
rounds=${2:-2}
duration=${DURATION:-10s}
((EUID == 0)) || { echo "multihost.sh: needs root (network namespaces); run it with sudo" >&2; exit 1; }
require_tools wrk nginx tc
if [ ! -x "$build/berth-edge" ]; then
    swift build -c release --build-path "${build%/release}" >/dev/null
fi
require_binaries "$build"

work=$(mktemp -d /tmp/berth-multihost.XXXXXX)
mkdir -p "$work/logs"
pids=()
h1() { ip netns exec berth-h1 "$@"; }
h2() { ip netns exec berth-h2 "$@"; }
cleanup() {
    stop_started
    scripts/hosts.sh down >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
scripts/hosts.sh up >/dev/null

app_port=18080 hop2_port=18081 hop1_port=18082 edge_port=18087 edge_curve_port=18088
write_small_app "$work" "$app_port"
h2 nginx -p "$work/app" -c "$work/app.conf" &
pids+=($!)

write_proxy_conf "$work" hop2 "10.77.0.2:$hop2_port" "127.0.0.1:$app_port"
write_proxy_conf "$work" hop1 "10.77.0.1:$hop1_port" "10.77.0.2:$hop2_port"
h2 nginx -p "$work/hop2" -c "$work/hop2.conf" &
pids+=($!)
h1 nginx -p "$work/hop1" -c "$work/hop1.conf" &
pids+=($!)

# Two meshes: plain, and CURVE on every socket (keys made with berth keygen).
keys="$work/keys"
for role in router edge sidecar; do "$build/berth" keygen "$keys" "$role" >/dev/null; done
curve() { echo --curve-key "$keys/$1.key_secret" --curve-authorized "$keys"; }
mesh() { # NAME BASE_PORT EDGE_PORT [curve]
    local name=$1 base=$2 edge=$3 secure=${4:-}
    local router_keys="" edge_keys="" sidecar_keys=""
    if [ -n "$secure" ]; then router_keys=$(curve router) edge_keys=$(curve edge) sidecar_keys=$(curve sidecar); fi
    h1 "$build/berth-router" --frontend "tcp://10.77.0.1:$base" --backend "tcp://10.77.0.1:$((base + 1))" \
        --events-in "tcp://10.77.0.1:$((base + 2))" --events-out "tcp://10.77.0.1:$((base + 3))" $router_keys \
        >"$work/logs/$name-router.log" 2>&1 &
    pids+=($!)
    h2 "$build/berth-sidecar" --router "tcp://10.77.0.1:$((base + 1))" --events "tcp://10.77.0.1:$((base + 2))" \
        --endpoint "tcp://10.77.0.2:*" --class Bench --instance "$name" --port "$app_port" --capacity 128 $sidecar_keys \
        >"$work/logs/$name-sidecar.log" 2>&1 &
    pids+=($!)
    h1 "$build/berth-edge" --listen "10.77.0.1:$edge" --router "tcp://10.77.0.1:$base" \
        --events "tcp://10.77.0.1:$((base + 2))" --route /=Bench $edge_keys >"$work/logs/$name-edge.log" 2>&1 &
    pids+=($!)
}
mesh plain 17700 "$edge_port"
mesh curve 17710 "$edge_curve_port" curve

declare -A url=([nginx2]="http://10.77.0.1:$hop1_port/" [berth]="http://10.77.0.1:$edge_port/" [berth-curve]="http://10.77.0.1:$edge_curve_port/")
peers=(nginx2 berth berth-curve)
for peer in "${peers[@]}"; do
    for _ in $(seq 100); do h1 curl -fs -o /dev/null "${url[$peer]}" && break; sleep 0.1; done
    h1 curl -fs -o /dev/null "${url[$peer]}" || { echo "error: $peer does not answer; logs in $work/logs" >&2; trap - EXIT; exit 1; }
done

# wrk's summary: requests/s, and latency percentiles in ms.
rps() { awk '/Requests\/sec/ { print $2 }'; }
percentile() { # P: from wrk --latency's distribution, in ms
    awk -v p="$1%" '$1 == p { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } print v }'
}
# netem may be missing from the kernel (no sch_netem): then only the runs without delay are made.
delays=(0 1ms)
if ! ip netns exec berth-h1 tc qdisc add dev eth0 root netem delay 1ms 2>/dev/null; then
    echo "multihost.sh: this kernel has no netem qdisc; measuring without added delay only" >&2
    delays=(0)
fi
ip netns exec berth-h1 tc qdisc del dev eth0 root 2>/dev/null || true
declare -A results
for delay in "${delays[@]}"; do
    scripts/hosts.sh delay "$delay"
    for round in $(seq "$rounds"); do
        for peer in "${peers[@]}"; do
            out=$(h1 wrk -t2 -c32 -d"$duration" "${url[$peer]}")
            rate=$(rps <<<"$out")
            results["$delay,$peer,rps"]+="$rate "
            out=$(h1 wrk -t1 -c1 -d"$duration" --latency "${url[$peer]}")
            results["$delay,$peer,p50"]+="$(percentile 50 <<<"$out") "
            results["$delay,$peer,p99"]+="$(percentile 99 <<<"$out") "
            echo "delay $delay round $round $peer: $rate req/s" >&2
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mkdir -p bench/results
report="bench/results/$(date -u +%Y-%m-%d-%H%M)-multihost.md"
{
    echo "# Across hosts: edge on h1, sidecar and app on h2 ($(date -u +%Y-%m-%dT%H:%MZ), code $(git rev-parse --short HEAD))"
    echo
    echo "\`sudo bench/multihost.sh $build $rounds\`, $duration per measurement, medians of $rounds rounds. Client (wrk) on h1."
    echo "Delay: \`tc netem delay\` on every host's link, so 1ms is 1 ms each way between hosts."
    echo
    echo "| delay | peer | req/s at 32 conn | vs nginx2 | p50 at 1 conn (ms) | p99 at 1 conn (ms) |"
    echo "|---|---|---:|---:|---:|---:|"
    for delay in "${delays[@]}"; do
        base=$(median <<<"${results["$delay,nginx2,rps"]}")
        for peer in "${peers[@]}"; do
            r=$(median <<<"${results["$delay,$peer,rps"]}")
            printf '| %s | %s | %.0f | %.2f× | %.3f | %.3f |\n' "$delay" "$peer" "$r" "$(echo "$r / $base" | bc -l)" \
                "$(median <<<"${results["$delay,$peer,p50"]}")" "$(median <<<"${results["$delay,$peer,p99"]}")"
        done
    done
    echo
    [ "${#delays[@]}" -gt 1 ] || echo "No added delay: this kernel has no netem qdisc (tc qdisc add ... netem fails)."
    echo
    for delay in "${delays[@]}"; do
        on=$(median <<<"${results["$delay,berth-curve,rps"]}") off=$(median <<<"${results["$delay,berth,rps"]}")
        printf 'CURVE on / off at 32 connections, delay %s: %.0f / %.0f req/s = %.2f×\n\n' "$delay" "$on" "$off" "$(echo "$on / $off" | bc -l)"
    done
} >"$report"
cat "$report"
