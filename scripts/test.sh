#!/usr/bin/env bash
# Runs every test of the project (meson test over build/) and ends with one
# summary line, "N passed, M failed" (", K skipped" when any), counted from
# meson's own results in build/meson-logs/testlog.json. Extra arguments go
# to meson test (e.g. a test name, or --suite).
set -uo pipefail
cd "$(dirname "$0")/.."

build=${VIRIDIAN_BUILD_DIR:-build}
log=$build/meson-logs/testlog.json
if [ ! -d "$build" ]; then
    echo "test.sh: no $build/ directory; run scripts/setup.sh first" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# A stale log from an earlier run must not be counted if this one cannot
# even build.
rm -f "$log"
meson test -C "$build" --print-errorlogs "$@"
status=$?

if [ ! -s "$log" ]; then
    echo "test.sh: meson test produced no results (did the build fail?)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# One JSON object per line; meson needs python3, so it is always here.
python3 - "$log" "$status" <<'PY'
import json, sys

passed = failed = skipped = 0
with open(sys.argv[1]) as log:
    for line in log:
        if not line.strip():
            continue
        result = json.loads(line).get("result")
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:  # FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, ...
            failed += 1
if int(sys.argv[2]) != 0 and failed == 0:
    failed = 1  # meson failed without a failing test: count it, never report green
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
PY
