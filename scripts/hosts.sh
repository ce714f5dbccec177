#!/usr/bin/env bash
# Three network namespaces that act as three machines, for the multi-host demo and tests:
#   berth-h1 10.77.0.1, berth-h2 10.77.0.2, berth-h3 10.77.0.3 (/24), joined by the bridge berth-br0, which has
#   10.77.0.254 so that this machine reaches them too.
#
#   scripts/hosts.sh up                 # make them (again: whatever was left is removed first)
#   scripts/hosts.sh down               # remove them
#   scripts/hosts.sh delay 1ms          # add 1 ms to every packet a host sends (tc netem); 'delay 0' removes it
#   ip netns exec berth-h2 CMD          # run CMD on h2
set -euo pipefail

hosts=(h1 h2 h3)
bridge=berth-br0

if ((EUID != 0)); then
    echo "hosts.sh: needs root (it makes network namespaces, veth pairs and a bridge); run it with sudo" >&2
    exit 1
fi

down() {
    for host in "${hosts[@]}"; do
        ip netns pids "berth-$host" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "berth-$host" 2>/dev/null || true
        ip link del "berth-$host" 2>/dev/null || true
    done
    ip link del "$bridge" 2>/dev/null || true
}

up() {
    down
    ip link add "$bridge" type bridge
    ip addr add 10.77.0.254/24 dev "$bridge"
    ip link set "$bridge" up
    local index=1
    for host in "${hosts[@]}"; do
        ip netns add "berth-$host"
        ip link add "berth-$host" type veth peer name eth0 netns "berth-$host"
        ip link set "berth-$host" master "$bridge" up
        ip -n "berth-$host" addr add "10.77.0.$index/24" dev eth0
        ip -n "berth-$host" link set eth0 up
        ip -n "berth-$host" link set lo up
        index=$((index + 1))
    done
    # Bridged frames must not go through this machine's iptables (Docker's rules drop them).
    if [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then echo 0 >/proc/sys/net/bridge/bridge-nf-call-iptables; fi
    echo "hosts.sh: berth-h1 10.77.0.1, berth-h2 10.77.0.2, berth-h3 10.77.0.3 (bridge $bridge 10.77.0.254)"
}

delay() {
    local amount="$1"
    for host in "${hosts[@]}"; do
        ip netns exec "berth-$host" tc qdisc del dev eth0 root 2>/dev/null || true
        if [[ "$amount" != "0" ]]; then ip netns exec "berth-$host" tc qdisc add dev eth0 root netem delay "$amount"; fi
    done
}

case "${1:-}" in
    up) up ;;
    down) down; echo "hosts.sh: removed" ;;
    delay) delay "${2:?delay needs an amount, like 1ms, or 0}" ;;
    *) echo "usage: scripts/hosts.sh up|down|delay AMOUNT" >&2; exit 2 ;;
esac
