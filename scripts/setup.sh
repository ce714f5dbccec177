#!/usr/bin/env bash
# Installs the system packages Berth builds against, when they are missing. Sourced by demo.sh and test.sh.
set -euo pipefail

# python3-zmq, python3-protobuf and protobuf-compiler: the test that subscribes to the event stream from Python, with
# nothing of Berth's but Proto/berth.proto (for Debian's /usr/bin/python3).
berth_packages=(libzmq3-dev libprotobuf-c-dev protobuf-c-compiler pkg-config python3 iproute2 util-linux
    python3-zmq python3-protobuf protobuf-compiler ${BERTH_EXTRA_PACKAGES:-})

berth_missing=()
for package in "${berth_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || berth_missing+=("$package")
done
if ((${#berth_missing[@]})); then
    echo "berth: installing ${berth_missing[*]}" >&2
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${berth_missing[@]}" >/dev/null
fi
