#!/usr/bin/env bash
# CPU benchmark: times bench/cpu_loop.asm (an integer loop mix, ~280 million
# guest instructions) on viridian and on QEMU TCG, side by side, and reports
# guest instructions per second and the time ratio.
#
#   bench/cpu.sh [BUILD_DIR] [RUNS]     (defaults: build, 3)
#
# Each emulator runs the loop RUNS times and the start-up cost (the same guest
# with zero iterations, also RUNS times) is subtracted; the best of each is
# used, which is the least disturbed by other work on the host. The guest
# instruction count comes from viridian's --stats; QEMU runs the identical
# program, so the count is the same for it. Both must print the same checksum.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build}
runs=${2:-3}
viridian=$build/viridian
[ -x "$viridian" ] || viridian=$build/frontend/viridian
rom=$build/bench/cpu_loop.elf
empty_rom=$build/bench/cpu_loop_empty.elf
qemu=(qemu-system-x86_64 -machine pc -accel tcg -display none -serial stdio
      -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel)

for f in "$viridian" "$rom" "$empty_rom"; do
    [ -e "$f" ] || { echo "cpu.sh: $f is missing; build first (ninja -C $build)" >&2; exit 1; }
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# shellcheck source=bench/timing.sh
source "$(dirname "$0")/timing.sh"

best viridian "$viridian" --stats --kernel "$rom"
v_total=$best
instructions=$(sed -n 's/^instructions: //p' "$out/viridian.err")
v_checksum=$(cat "$out/viridian.out")
best viridian_empty "$viridian" --stats --kernel "$empty_rom"
v_empty=$best
empty_instructions=$(sed -n 's/^instructions: //p' "$out/viridian_empty.err")
loop_instructions=$((instructions - empty_instructions))

have_qemu=0
if command -v qemu-system-x86_64 >/dev/null; then
    have_qemu=1
    best qemu "${qemu[@]}" "$rom"
    q_total=$best
    q_checksum=$(cat "$out/qemu.out")
    best qemu_empty "${qemu[@]}" "$empty_rom"
    q_empty=$best
    if [ "$q_checksum" != "$v_checksum" ]; then
        echo "cpu.sh: checksums differ: viridian '$v_checksum', QEMU '$q_checksum'" >&2
        exit 1
    fi
fi

report() { # NAME TOTAL EMPTY
    awk -v name="$1" -v total="$2" -v empty="$3" -v n="$loop_instructions" 'BEGIN {
        net = total - empty; if (net <= 0) net = 0.0001
        printf "%-10s %9.3f s %9.3f s %9.3f s %12.1f\n", name, total, empty, net, n / net / 1e6 }'
}

echo "guest: $rom ($v_checksum)"
echo "guest instructions in the loop: $loop_instructions (start-up: $empty_instructions)"
echo "best of $runs runs, $(date -u +%Y-%m-%d), $(nproc) host CPUs"
printf "%-10s %11s %11s %11s %12s\n" emulator total start-up net "guest MIPS"
report viridian "$v_total" "$v_empty"
if [ "$have_qemu" -eq 1 ]; then
    report "QEMU TCG" "$q_total" "$q_empty"
    awk -v vt="$v_total" -v ve="$v_empty" -v qt="$q_total" -v qe="$q_empty" 'BEGIN {
        v = vt - ve; q = qt - qe; if (q <= 0) q = 0.0001
        printf "time ratio viridian / QEMU TCG (net): %.2f\n", v / q }'
else
    echo "QEMU TCG: qemu-system-x86_64 not found (scripts/setup.sh installs it); skipped"
fi
