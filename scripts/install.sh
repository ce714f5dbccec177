#!/usr/bin/env bash
# Builds Berth in release mode and installs it, so that `berth` is on PATH:
#
#   scripts/install.sh [--prefix DIR]     # default /usr/local as root, ~/.local otherwise
#
# PREFIX/bin gets berth, berth-router, berth-sidecar, berth-edge and the demo's demo-edge and demo-container-a (a
# compose file names them bare, and berth finds them beside itself). PREFIX/share/berth gets the demo's compose
# file and its Python app, so that `cd PREFIX/share/berth && berth up -f Compose/demo.yaml` runs the demo anywhere.
# The Swift runtime is linked in statically: the executables run without the toolchain.
set -euo pipefail

prefix=""
while (($#)); do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a folder}"; shift ;;
        --prefix=*) prefix="${1#--prefix=}" ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "usage: scripts/install.sh [--prefix DIR]" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$prefix" ]; then
    if [ "$(id -u)" -eq 0 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
fi

cd "$(dirname "$0")/.."
source scripts/setup.sh

executables=(berth berth-router berth-sidecar berth-edge demo-edge demo-container-a)
# The folder and flags bench/run.sh builds with: one release build serves both.
build=(swift build -c release --static-swift-stdlib --scratch-path .build-release)
echo "berth: building release (the first build takes about 10 minutes)" >&2
for product in "${executables[@]}"; do "${build[@]}" --product "$product"; done
bin="$("${build[@]}" --show-bin-path)"

mkdir -p "$prefix/bin" "$prefix/share/berth/Compose/apps/container-b"
# Stripped: a release build keeps its debug information, 60 to 150 MB an executable.
for product in "${executables[@]}"; do install -s -m 0755 "$bin/$product" "$prefix/bin/$product"; done
install -m 0644 Compose/demo.yaml "$prefix/share/berth/Compose/demo.yaml"
install -m 0644 Compose/apps/container-b/app.py "$prefix/share/berth/Compose/apps/container-b/app.py"

echo "berth: installed ${executables[*]} in $prefix/bin" >&2
case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) echo "berth: $prefix/bin is not on PATH; add it: export PATH=\"$prefix/bin:\$PATH\"" >&2 ;;
esac
echo "berth: the demo: cd $prefix/share/berth && berth up -f Compose/demo.yaml" >&2
