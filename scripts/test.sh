#!/usr/bin/env bash
# Runs every test: unit tests and integration tests that start the real executables. One command, from any folder.
set -euo pipefail
cd "$(dirname "$0")/.."
# Chromium runs the dashboard's browser test.
BERTH_EXTRA_PACKAGES="chromium" source scripts/setup.sh
# The WebSocket tests' client and echo app use Python's `websockets` from PyPI (13 or later: Debian's is older).
python3 -c 'import websockets.asyncio.client' 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages 'websockets>=13' ||
    echo "test.sh: cannot install Python's websockets from PyPI; the WebSocket tests will fail" >&2

# The toolchain leaves TemporaryDirectory.* folders in $TMPDIR on every run (swift-driver, SwiftPM), and the tests
# keep their processes' logs there: all of it goes into a folder of this run's own, removed when the tests pass,
# and kept, with its name printed, when they do not.
scratch="$(mktemp -d "${TMPDIR:-/tmp}/berth-test.XXXXXX")"
export TMPDIR="$scratch"
status=0
swift build --build-tests || status=$?
# One test at a time: the integration tests start real processes and watch real heartbeats, on a 2-core machine.
((status != 0)) || swift test --skip-build --no-parallel "$@" || status=$?
if ((status == 0)); then
    rm -rf "$scratch"
else
    echo "test.sh: the tests' logs are in $scratch" >&2
fi
exit "$status"
