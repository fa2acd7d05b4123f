#!/usr/bin/env bash
# Builds the fuzz targets in tests/fuzz with clang 14's libFuzzer, AddressSanitizer
# and UndefinedBehaviorSanitizer into build-fuzz/, and runs each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    (defaults: 60; interpreter hypercall qmp gdb snapshot snapshot-file vhd vhdx ide vmbus scsi-disk vmbus-channel netvsp e1000 recording)
#
# Each target runs SECONDS seconds. New inputs go to build-fuzz/corpus/TARGET,
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

status=0
mkdir -p "$build/artifacts"
for t in "${targets[@]}"; do
    bin=$build/tests/fuzz/$t-libfuzzer
    corpus=$build/corpus/$t
    mkdir -p "$corpus"
    seeds=()
    max_len=4096
    if [ -d "tests/fuzz/corpus/$t" ]; then
        seeds=("tests/fuzz/corpus/$t")
        # Inputs may grow a little past the largest seed (a snapshot's state
        # is larger than 4096 bytes).
        largest=$(find "tests/fuzz/corpus/$t" -type f -printf '%s\n' | sort -n | tail -n 1)
        [ -z "$largest" ] || [ "$largest" -lt 3072 ] || max_len=$((largest + 1024))
    fi
    seed=()
    [ -z "${FUZZ_SEED:-}" ] || seed=(-seed="$FUZZ_SEED")
    echo "fuzz.sh: $t for $seconds s${FUZZ_SEED:+, seed $FUZZ_SEED}"
    if ! nice "$bin" "${seed[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "$corpus" "${seeds[@]}" \
        >"$build/$t.log" 2>&1; then
        status=1
        echo "fuzz.sh: $t FAILED; see $build/$t.log and $build/artifacts/" >&2
        grep -E 'ERROR|SUMMARY|runtime error|#[0-9]+ 0x' "$build/$t.log" | head -n 30 >&2 || true
    fi
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|cov:' "$build/$t.log" | tail -n 3
done
exit $status
