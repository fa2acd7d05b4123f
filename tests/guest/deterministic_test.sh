#!/usr/bin/env bash
# Determinism: the same guest, run twice with --deterministic, prints
# byte-identical output and retires the same number of instructions (the
# --stats line is part of the compared output). Virtual time comes from
# retired instructions, the RTC starts at a fixed date, and no host input
# is read, so the two runs must not differ in a single byte. The runs use
# two vCPUs: the round-robin schedule (fixed slices, PAUSE ending a turn)
# must be as repeatable as a single vCPU. A third run with --jit off must
# print the same bytes too: block translation (cpu/jit/) changes nothing the
# guest can see, down to when each interrupt arrives.
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
require_guest "$guest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for run in 1 2 3; do
    jit=on
    [ "$run" -eq 3 ] && jit=off
    timeout 900 "$viridian" --deterministic --cpus 2 --stats --jit "$jit" --kernel "$guest/vmlinuz" \
        --initrd "$guest/initramfs.cpio.gz" \
        --append 'console=ttyS0 panic=-1 viridian.run="cat /proc/uptime /proc/interrupts"' \
        >"$work/run$run.txt" 2>&1 </dev/null
    echo "run $run: exit status $?, $(grep '^instructions:' "$work/run$run.txt")"
done
grep -q "viridian-guest: exit status 0" "$work/run1.txt" || {
    cat "$work/run1.txt"
    echo "deterministic: the guest command did not run"
    exit 1
}
if ! cmp -s "$work/run1.txt" "$work/run2.txt"; then
    diff "$work/run1.txt" "$work/run2.txt" | head -20
    echo "deterministic: the two runs differ"
    exit 1
fi
if ! cmp -s "$work/run1.txt" "$work/run3.txt"; then
    diff "$work/run1.txt" "$work/run3.txt" | head -20
    echo "deterministic: the run with --jit off differs from the translated runs"
    exit 1
fi
echo "deterministic: all three runs identical ($(wc -l <"$work/run1.txt") lines)"
