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

measure_loop viridian "$rom" "$empty_rom" "$viridian" --stats --kernel
v_total=$total v_empty=$empty v_checksum=$checksum
empty_instructions=$(stats_instructions viridian_empty)
loop_instructions=$(($(stats_instructions viridian) - empty_instructions))

have_qemu=0
if command -v qemu-system-x86_64 >/dev/null; then
    have_qemu=1
    measure_loop qemu "$rom" "$empty_rom" "${qemu[@]}"
    q_total=$total q_empty=$empty q_checksum=$checksum
    if [ "$q_checksum" != "$v_checksum" ]; then
        echo "cpu.sh: checksums differ: viridian '$v_checksum', QEMU '$q_checksum'" >&2
        exit 1
    fi
fi

echo "guest: $rom ($v_checksum)"
echo "guest instructions in the loop: $loop_instructions (start-up: $empty_instructions)"
echo "best of $runs runs, $(date -u +%Y-%m-%d), $(nproc) host CPUs"
report_header ""
report "" viridian "$v_total" "$v_empty" "$loop_instructions"
if [ "$have_qemu" -eq 1 ]; then
    report "" "QEMU TCG" "$q_total" "$q_empty" "$loop_instructions"
    report_ratio "" "$v_total" "$v_empty" "$q_total" "$q_empty"
else
    echo "QEMU TCG: qemu-system-x86_64 not found (scripts/setup.sh installs it); skipped"
fi
