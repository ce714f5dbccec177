#!/usr/bin/env bash
# Generates the protobuf-c sources of the CBerthProto target from Proto/berth.proto.
#
#   scripts/generate-proto.sh           regenerate Sources/CBerthProto/{berth.pb-c.c,include/berth.pb-c.h}
#   scripts/generate-proto.sh --check   exit 1 if the committed files differ from what protoc-c generates now
#
# The generated .c says `#include "berth.pb-c.h"`; SwiftPM puts Sources/CBerthProto/include on the C target's
# header search path, so the header lives there, next to the umbrella header CBerthProto.h.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
proto_dir="$root/Proto"
target_dir="$root/Sources/CBerthProto"

mode=generate
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

if ! command -v protoc-c >/dev/null 2>&1; then
    echo "error: protoc-c not found on PATH (Debian/Ubuntu: apt-get install protobuf-c-compiler libprotobuf-c-dev)" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Run from the proto directory with a bare file name so the output does not depend on the caller's cwd.
(cd "$proto_dir" && protoc-c --proto_path=. --c_out="$tmp" berth.proto)

if [[ "$mode" == check ]]; then
    stale=0
    for pair in "berth.pb-c.c:berth.pb-c.c" "berth.pb-c.h:include/berth.pb-c.h"; do
        generated="$tmp/${pair%%:*}"
        committed="$target_dir/${pair#*:}"
        if [[ ! -f "$committed" ]]; then
            echo "error: ${committed#"$root/"} is missing" >&2
            stale=1
        elif ! diff -u "$committed" "$generated" >"$tmp/diff" 2>&1; then
            echo "error: ${committed#"$root/"} is stale:" >&2
            head -n 40 "$tmp/diff" >&2
            stale=1
        fi
    done
    if [[ "$stale" -ne 0 ]]; then
        echo "The generated protobuf-c sources do not match Proto/berth.proto; run scripts/generate-proto.sh and commit the result." >&2
        exit 1
    fi
    echo "Sources/CBerthProto is up to date with Proto/berth.proto ($(protoc-c --version | head -n 1))."
    exit 0
fi

mkdir -p "$target_dir/include"
# Copy only when the content changed, so an unchanged run does not touch timestamps (and trigger rebuilds).
install_if_changed() {
    if ! cmp -s "$1" "$2"; then
        cp "$1" "$2"
        echo "wrote ${2#"$root/"}"
    fi
}
install_if_changed "$tmp/berth.pb-c.c" "$target_dir/berth.pb-c.c"
install_if_changed "$tmp/berth.pb-c.h" "$target_dir/include/berth.pb-c.h"
