#!/usr/bin/env bash
# Clock-read benchmark: what one read of the time costs a guest on viridian
# through the Hyper-V reference TSC page, the reference counter MSR
# (HV_X64_MSR_TIME_REF_COUNT) and the emulated HPET's main counter, and what
# a hypercall round trip costs (bench/clock_reads.asm, 1,000,000 of each).
#
#   bench/clock.sh [BUILD_DIR] [RUNS]     (defaults: build, 5)
#
# The guest times each loop with RDTSC, which is host nanoseconds on viridian
# without --deterministic (1 GHz virtual TSC on the host's monotonic clock).
# For each method the best of RUNS runs is kept (the least disturbed by other
# work on the host) and the empty loop's best time is subtracted, so the
# figure is the cost of the read itself. Leave the machine otherwise idle.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build}
runs=${2:-5}
viridian=$build/viridian
rom=$build/bench/clock_reads.elf
reads=1000000
for f in "$viridian" "$rom"; do
    [ -e "$f" ] || { echo "clock.sh: $f is missing; build first (ninja -C $build)" >&2; exit 1; }
done

declare -A best
methods=(empty tsc-page ref-msr hpet hypercall)
for ((run = 1; run <= runs; ++run)); do
    out=$("$viridian" --kernel "$rom" </dev/null 2>&1) && status=0 || status=$?
    if [ "$status" -ne 1 ] || ! grep -qx PASS <<<"$out"; then
        echo "$out"
        echo "clock.sh: the guest failed (status $status)" >&2
        exit 1
    fi
    for m in "${methods[@]}"; do
        ns=$((16#$(awk -v m="$m" '$1 == m { print $2 }' <<<"$out")))
        if [ -z "${best[$m]:-}" ] || [ "$ns" -lt "${best[$m]}" ]; then
            best[$m]=$ns
        fi
    done
done

echo "best of $runs runs, $reads iterations each; loop overhead subtracted"
printf "%-10s %12s\n" method "ns per read"
for m in "${methods[@]}"; do
    [ "$m" = empty ] && continue
    net=$((best[$m] - best[empty]))
    printf "%-10s %12s\n" "$m" "$(awk -v n="$net" -v r="$reads" 'BEGIN { printf "%.1f", n / r }')"
done
printf "%-10s %12s\n" "(loop)" "$(awk -v n="${best[empty]}" -v r="$reads" 'BEGIN { printf "%.1f", n / r }')"
