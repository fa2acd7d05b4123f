#!/usr/bin/env bash
# Builds the fuzz targets in tests/fuzz with clang 14's libFuzzer, AddressSanitizer
# and UndefinedBehaviorSanitizer into build-fuzz/, and runs each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    (defaults: 60; interpreter hypercall qmp gdb snapshot snapshot-file vhd vhdx ide vmbus scsi-disk vmbus-channel netvsp e1000 recording)
#
# Each target runs SECONDS seconds, FUZZ_JOBS of them at a time (default: one
# per processor). New inputs go to build-fuzz/corpus/TARGET,
# seeded from tests/fuzz/corpus/TARGET when that exists; a crash, hang (10 s per
# input) or sanitizer report leaves its input in build-fuzz/artifacts/ and makes
# the script exit 1. Reproduce one with: build-fuzz/tests/fuzz/TARGET-libfuzzer FILE
# FUZZ_SEED=N fixes libFuzzer's random seed (the test suite does, so that its
# runs try the same inputs in the same order); without it each run explores anew.
# Installs clang-14 and libclang-rt-14-dev (libFuzzer and the sanitizer
# runtimes) when missing, as scripts/setup.sh does for the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(interpreter hypercall qmp gdb snapshot snapshot-file vhd vhdx ide vmbus scsi-disk vmbus-channel netvsp e1000 recording)
build=build-fuzz

PACKAGES=(clang-14 libclang-rt-14-dev)
# shellcheck source=scripts/packages.sh
source scripts/packages.sh
install_packages fuzz.sh "${PACKAGES[@]}"

if [ ! -f "$build/build.ninja" ]; then
    # Everything is compiled with the fuzzer's coverage instrumentation
    # (fuzzer-no-link); only the targets link libFuzzer itself. UBSan reports
    # abort, so the fuzzer sees them as crashes.
    CC=clang-14 CXX=clang++-14 meson setup "$build" --buildtype=debugoptimized \
        -Dlibfuzzer=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dcpp_args='-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined'
fi
binaries=()
for t in "${targets[@]}"; do binaries+=("tests/fuzz/$t-libfuzzer"); done
nice ninja -C "$build" "${binaries[@]}"

mkdir -p "$build/artifacts"

# run_target TARGET: one target for $seconds; its summary is printed when it
# is done (the targets run side by side, see FUZZ_JOBS below).
run_target() {
    local t=$1
    local bin=$build/tests/fuzz/$t-libfuzzer
    local corpus=$build/corpus/$t
    mkdir -p "$corpus"
    local seeds=()
    local max_len=4096
    if [ -d "tests/fuzz/corpus/$t" ]; then
        seeds=("tests/fuzz/corpus/$t")
        # Inputs may grow a little past the largest seed (a snapshot's state
        # is larger than 4096 bytes).
        local largest
        largest=$(find "tests/fuzz/corpus/$t" -type f -printf '%s\n' | sort -n | tail -n 1)
        [ -z "$largest" ] || [ "$largest" -lt 3072 ] || max_len=$((largest + 1024))
    fi
    local seed=()
    [ -z "${FUZZ_SEED:-}" ] || seed=(-seed="$FUZZ_SEED")
    local failed=0
    if ! nice "$bin" "${seed[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "$corpus" "${seeds[@]}" \
        >"$build/$t.log" 2>&1; then
        failed=1
    fi
    # One block of output per target, whole, whatever finishes beside it.
    {
        echo "fuzz.sh: $t for $seconds s${FUZZ_SEED:+, seed $FUZZ_SEED}"
        if [ $failed -ne 0 ]; then
            echo "fuzz.sh: $t FAILED; see $build/$t.log and $build/artifacts/"
            grep -E 'ERROR|SUMMARY|runtime error|#[0-9]+ 0x' "$build/$t.log" | head -n 30 || true
        fi
        grep -E '^stat::(number_of_executed_units|peak_rss_mb)|cov:' "$build/$t.log" | tail -n 3
    } >"$build/$t.summary"
    cat "$build/$t.summary"
    return $failed
}

# FUZZ_JOBS targets at a time (default: one per processor). Each target is
# single-threaded and bounded by time, so running them side by side gives
# each the same time on a core of its own, in a fraction of the wall time.
jobs=${FUZZ_JOBS:-$(nproc)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
status=0
running=0
for t in "${targets[@]}"; do
    if [ $running -ge "$jobs" ]; then
        wait -n || status=1
        running=$((running - 1))
    fi
    run_target "$t" &
    running=$((running + 1))
done
while [ $running -gt 0 ]; do
    wait -n || status=1
    running=$((running - 1))
done
exit $status
