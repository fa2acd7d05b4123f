#!/usr/bin/env bash
# SSE/x87 benchmark: times bench/simd_loop.asm's two kernels (an SSE2 integer
# and single-precision loop, about 105 million guest instructions, and an x87
# extended-precision loop, about 50 million) on viridian and on QEMU TCG,
# side by side, and reports guest instructions per second and the time ratio.
#
#   bench/simd.sh [BUILD_DIR] [RUNS]     (defaults: build, 3)
#
# Method as bench/cpu.sh: each kernel runs RUNS times on each emulator, so
# does its zero-iteration twin (start-up cost), the best of each is kept and
# the start-up is subtracted. The instruction count comes from viridian's
# --stats; QEMU runs the identical program. Both must print the same checksum
# (the x87 kernel is chaotic: one rounding difference would change it).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build}
runs=${2:-3}
viridian=$build/viridian
[ -x "$viridian" ] || viridian=$build/frontend/viridian
qemu=(qemu-system-x86_64 -machine pc -accel tcg -display none -serial stdio
      -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel)
have_qemu=0
command -v qemu-system-x86_64 >/dev/null && have_qemu=1

for f in "$viridian" "$build"/bench/simd_{sse,x87}{,_empty}.elf; do
    [ -e "$f" ] || { echo "simd.sh: $f is missing; build first (ninja -C $build)" >&2; exit 1; }
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# shellcheck source=bench/timing.sh
source "$(dirname "$0")/timing.sh"

echo "best of $runs runs, $(date -u +%Y-%m-%d), $(nproc) host CPUs"
for kernel in sse x87; do
    rom=$build/bench/simd_$kernel.elf
    empty_rom=$build/bench/simd_${kernel}_empty.elf
    measure_loop v "$rom" "$empty_rom" "$viridian" --stats --kernel
    v_total=$total v_empty=$empty v_checksum=$checksum
    n=$(($(stats_instructions v) - $(stats_instructions v_empty)))
    echo "kernel $kernel: $n guest instructions in the loop ($v_checksum)"
    report_header "  "
    report "  " viridian "$v_total" "$v_empty" "$n"
    if [ "$have_qemu" -eq 1 ]; then
        measure_loop q "$rom" "$empty_rom" "${qemu[@]}"
        q_total=$total q_empty=$empty q_checksum=$checksum
        if [ "$q_checksum" != "$v_checksum" ]; then
            echo "simd.sh: $kernel checksums differ: viridian '$v_checksum', QEMU '$q_checksum'" >&2
            exit 1
        fi
        report "  " "QEMU TCG" "$q_total" "$q_empty" "$n"
        report_ratio "  " "$v_total" "$v_empty" "$q_total" "$q_empty"
    else
        echo "  QEMU TCG: qemu-system-x86_64 not found (scripts/setup.sh installs it); skipped"
    fi
done
