#!/usr/bin/env bash
# Runs every test: unit tests and integration tests that start the real executables. One command, from any folder.
set -euo pipefail
cd "$(dirname "$0")/.."
# Chromium runs the dashboard's browser test.
BERTH_EXTRA_PACKAGES="chromium" source scripts/setup.sh

swift build --build-tests
# One test at a time: the integration tests start real processes and watch real heartbeats, on a 2-core machine.
swift test --skip-build --no-parallel "$@"
