#!/usr/bin/env bash
# Boot benchmark: the default guest (guest/, from scripts/fetch-guest.sh)
# boots to its init, runs `true` and powers off, in viridian and in QEMU TCG
# (-machine pc -accel tcg, same memory and CPU count), one after the other in
# this script. Prints both wall times and the ratio.
#
#   bench/boot.sh [BUILD_DIR] [RUNS]     (defaults: build, 1)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
runs=${2:-1}
kernel=guest/vmlinuz
initrd=guest/initramfs.cpio.gz
append='console=ttyS0 panic=-1 viridian.run=true'
for f in "$build/viridian" "$kernel" "$initrd"; do
    [ -e "$f" ] || { echo "boot.sh: $f is missing (build, and run scripts/fetch-guest.sh)" >&2; exit 1; }
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# timed CMD...: runs CMD (which must print the guest's poweroff marker and
# exit 0) and sets $elapsed to its wall time in seconds.
timed() {
    local start end status=0
    start=$EPOCHREALTIME
    "$@" >"$log" 2>&1 </dev/null || status=$?
    end=$EPOCHREALTIME
    if [ "$status" -ne 0 ] || ! grep -q "viridian-guest: poweroff" "$log"; then
        echo "boot.sh: '$1' did not boot to poweroff (status $status)" >&2
        tail -5 "$log" >&2
        exit 1
    fi
    elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
}

best_viridian=; best_qemu=
for ((i = 0; i < runs; i++)); do
    timed "$build/viridian" --memory 512M --kernel "$kernel" --initrd "$initrd" --append "$append" --stats
    instructions=$(grep '^instructions:' "$log" | awk '{print $2}')
    best_viridian=$(awk -v a="${best_viridian:-1e9}" -v b="$elapsed" 'BEGIN { print (b < a) ? b : a }')
    timed qemu-system-x86_64 -machine pc -accel tcg -m 512M -smp 1 -nographic -no-reboot \
        -kernel "$kernel" -initrd "$initrd" -append "$append"
    best_qemu=$(awk -v a="${best_qemu:-1e9}" -v b="$elapsed" 'BEGIN { print (b < a) ? b : a }')
done
echo "boot to poweroff, best of $runs, $(date +%F), $(nproc) host CPUs"
printf "%-10s %10s\n" emulator seconds
printf "%-10s %10s   (%s guest instructions)\n" viridian "$best_viridian" "$instructions"
printf "%-10s %10s\n" "QEMU TCG" "$best_qemu"
awk -v v="$best_viridian" -v q="$best_qemu" 'BEGIN { printf "ratio viridian / QEMU TCG: %.2f\n", v / q }'
