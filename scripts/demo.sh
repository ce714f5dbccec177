#!/usr/bin/env bash
# Runs the original demo: container A (Swift, :8080) and container B (Python, :3000), three instances each, behind
# an edge on 127.0.0.1:8787 whose Worker fetches from A and posts to B. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

swift build
exec .build/debug/berth up -f Compose/demo.yaml "$@"
