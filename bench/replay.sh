#!/usr/bin/env bash
# Record, replay and reverse execution (docs/replay.md) beside QEMU TCG's
# record/replay (-icount shift=auto,rr=record|replay), one after the other
# in this script: the default guest (guest/) boots to its init, runs `true`
# and powers off, on one vCPU (QEMU's record/replay refuses SMP). Prints each
# wall time and the log size; then, on viridian, the latency of gdb's
# reverse-stepi and reverse-continue at 90% of the run (--replay-goto).
#
#   bench/replay.sh [BUILD_DIR]     (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
kernel=guest/vmlinuz
initrd=guest/initramfs.cpio.gz
append='console=ttyS0 panic=-1 viridian.run=true'
for f in "$build/viridian" "$kernel" "$initrd"; do
    [ -e "$f" ] || { echo "replay.sh: $f is missing (build, and run scripts/fetch-guest.sh)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# timed NAME CMD...: runs CMD (it must print the guest's poweroff) and
# prints its wall time.
timed() {
    local name=$1 start end status=0
    shift
    start=$EPOCHREALTIME
    "$@" >"$work/out" 2>"$work/err" </dev/null || status=$?
    end=$EPOCHREALTIME
    if [ "$status" -ne 0 ] || ! grep -q "reboot: Power down" "$work/out"; then
        echo "replay.sh: $name did not boot to poweroff (status $status)" >&2
        tail -5 "$work/err" >&2
        exit 1
    fi
    awk -v n="$name" -v a="$start" -v b="$end" 'BEGIN { printf "%-44s %7.2f s\n", n, b - a }'
}

machine=(--memory 512M --kernel "$kernel" --initrd "$initrd" --append "$append")
echo "record and replay, $(date +%F), $(nproc) host CPUs, one vCPU"
timed "viridian --deterministic" "$build/viridian" "${machine[@]}" --deterministic
timed "viridian --record" "$build/viridian" "${machine[@]}" --record "$work/run.vrr" --stats
instructions=$(grep '^instructions:' "$work/err" | awk '{print $2}')
timed "viridian --replay" "$build/viridian" --replay "$work/run.vrr"
# A QMP socket makes the replay keep its snapshots (for replay-seek).
timed "viridian --replay, snapshots kept" "$build/viridian" --replay "$work/run.vrr" \
    --qmp "unix:$work/qmp.sock,server,wait=off"
echo "viridian log: $(stat -c %s "$work/run.vrr") bytes for $instructions instructions"
qemu=(qemu-system-x86_64 -machine pc -accel tcg -m 512M -smp 1 -nographic -no-reboot
    -kernel "$kernel" -initrd "$initrd" -append "$append")
timed "QEMU TCG -icount shift=auto" "${qemu[@]}" -icount shift=auto
timed "QEMU TCG -icount shift=auto,rr=record" "${qemu[@]}" -icount "shift=auto,rr=record,rrfile=$work/run.rr"
timed "QEMU TCG -icount shift=auto,rr=replay" "${qemu[@]}" -icount "shift=auto,rr=replay,rrfile=$work/run.rr"
echo "QEMU log: $(stat -c %s "$work/run.rr") bytes"

# Reverse execution under gdb, at 90% of the run.
if command -v gdb >/dev/null; then
    goto=$((instructions * 9 / 10))
    "$build/viridian" --replay "$work/run.vrr" --gdb "unix:$work/gdb.sock" --replay-goto "$goto" \
        >/dev/null 2>"$work/gdb-err" </dev/null &
    for _ in $(seq 600); do grep -q "stopped at" "$work/gdb-err" && break; sleep 0.1; done
    echo "reverse execution at instruction $goto (viridian under gdb):"
    gdb -q -n -batch -ex "set pagination off" -ex "set confirm off" -ex "set architecture i386:x86-64" \
        -ex "target remote $work/gdb.sock" -x bench/replay_latency.py 2>&1 | grep '^latency' || true
    wait || true
fi
