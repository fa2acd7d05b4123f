#!/usr/bin/env bash
# Save/restore of a whole machine (docs/snapshots.md): a deterministic Linux
# boot saved at an instruction count partway through (--save-at) and
# restored (--incoming) prints exactly the rest of the output of an
# uninterrupted run and ends at the same instruction count. On 1 vCPU the
# snapshot goes through a file, on 2 vCPUs through exec: commands (a pipe
# both ways), JIT on. A damaged or mismatched snapshot is refused with one
# line and exit status 2.
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
fail() {
    echo "snapshot: $1"
    exit 1
}
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
require_guest "$guest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# About two thirds into the boot: the kernel has printed most of its log.
SAVE_AT=5000000000

boot() { # CPUS EXTRA... -> stdout+stderr
    local cpus=$1
    shift
    timeout 900 "$viridian" --deterministic --cpus "$cpus" --stats --kernel "$guest/vmlinuz" \
        --initrd "$guest/initramfs.cpio.gz" \
        --append 'console=ttyS0 panic=-1 viridian.run="cat /proc/uptime /proc/interrupts"' "$@" </dev/null 2>&1
}

for cpus in 1 2; do
    boot "$cpus" >"$work/full$cpus.txt" || fail "the uninterrupted run on $cpus vCPUs failed"
    if [ "$cpus" -eq 1 ]; then
        save="file:$work/machine1.snap"
        restore="file:$work/machine1.snap"
    else
        save="exec:cat > $work/machine2.snap"
        restore="exec:cat $work/machine2.snap"
    fi
    boot "$cpus" --save-at "$SAVE_AT,$save" >"$work/first$cpus.txt" ||
        fail "the run that saves on $cpus vCPUs failed: $(tail -2 "$work/first$cpus.txt")"
    grep -q "^viridian: saved the machine after" "$work/first$cpus.txt" || fail "no save message"
    boot "$cpus" --incoming "$restore" >"$work/second$cpus.txt" ||
        fail "the restored run on $cpus vCPUs failed: $(tail -2 "$work/second$cpus.txt")"
    # --stats' device and integration-service counters are the host
    # process's, not machine state (a restored run counts from zero): only
    # `instructions:` is compared.
    for run in full first second; do
        grep -Ev '^(port accesses|mmio accesses|msr accesses|interrupts|vmbus [a-z ]+|heartbeats? ?[a-z]*|time sync messages):' \
            "$work/$run$cpus.txt" >"$work/$run$cpus.cmp"
        mv "$work/$run$cpus.cmp" "$work/$run$cpus.txt"
    done
    # The saving run ends with the save message and its --stats line.
    head -n -2 "$work/first$cpus.txt" >"$work/joined$cpus.txt"
    cat "$work/second$cpus.txt" >>"$work/joined$cpus.txt"
    if ! cmp -s "$work/full$cpus.txt" "$work/joined$cpus.txt"; then
        diff "$work/full$cpus.txt" "$work/joined$cpus.txt" | head -20
        fail "on $cpus vCPUs the saved and restored run differs from the uninterrupted one"
    fi
    before=$(grep -c '' <(head -n -2 "$work/first$cpus.txt"))
    [ "$before" -gt 50 ] || fail "only $before lines were printed before the save: move SAVE_AT"
    echo "snapshot: $cpus vCPU(s): $before lines before the save, $(grep -c '' "$work/second$cpus.txt") after," \
        "$(grep '^instructions:' "$work/second$cpus.txt"), snapshot $(stat -c %s "$work/machine$cpus.snap") bytes"
done

# Refusals: one line on stderr, exit status 2.
refused() { # WHY EXTRA...
    local why=$1 out status
    shift
    out=$("$viridian" --deterministic --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
        "$@" </dev/null 2>&1)
    status=$?
    [ "$status" -eq 2 ] || fail "$why: exit status $status, expected 2 ($out)"
    [ "$(echo "$out" | grep -c '')" -eq 1 ] || fail "$why: expected one line, got: $out"
    echo "snapshot: $why refused: $out"
}
head -c 1000000 "$work/machine1.snap" >"$work/truncated.snap"
refused "a truncated snapshot" --incoming "file:$work/truncated.snap"
cp "$work/machine1.snap" "$work/corrupt.snap"
printf '\xff\xff\xff\xff' | dd of="$work/corrupt.snap" bs=1 seek=500000 conv=notrunc status=none
refused "a corrupted snapshot" --incoming "file:$work/corrupt.snap"
refused "another machine's snapshot" --cpus 2 --incoming "file:$work/machine1.snap"
refused "not a snapshot" --incoming "file:$guest/vmlinuz"
refused "a missing snapshot" --incoming "file:$work/missing.snap"
echo "snapshot: all checks passed"
