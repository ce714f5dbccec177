#!/usr/bin/env bash
# Fuzzes the edge's HTTP/1.1 for longer than the suite does: the suite's FuzzTests (mutated requests against a real
# mesh while a second client checks valid ones; no hang, no malformed answer, no request smuggled to the app), run
# for RUNS seeds of COUNT requests each. A failure names its seed; `--seeds S --runs 1` replays it.
#
#   scripts/fuzz-edge.sh [--seeds FIRST] [--runs RUNS] [--count COUNT]     (defaults: 1000, 10, 2000)
set -euo pipefail
cd "$(dirname "$0")/.."

first=1000 runs=10 count=2000
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) first="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --count) count="$2"; shift 2 ;;
        *) echo "usage: $0 [--seeds FIRST] [--runs RUNS] [--count COUNT]" >&2; exit 2 ;;
    esac
done

swift build --build-tests
failed=()
for seed in $(seq "$first" $((first + runs - 1))); do
    echo "== seed $seed, $count requests"
    if ! BERTH_FUZZ_SEED="$seed" BERTH_FUZZ_COUNT="$count" swift test --skip-build --no-parallel --filter FuzzTests; then
        failed+=("$seed")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed seeds: ${failed[*]}" >&2
    exit 1
fi
echo "$runs seeds of $count requests: no hang, no malformed answer, nothing smuggled"
