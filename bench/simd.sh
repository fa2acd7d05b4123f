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

report() { # NAME TOTAL EMPTY INSTRUCTIONS
    awk -v name="$1" -v total="$2" -v empty="$3" -v n="$4" 'BEGIN {
        net = total - empty; if (net <= 0) net = 0.0001
        printf "  %-10s %9.3f s %9.3f s %9.3f s %12.1f\n", name, total, empty, net, n / net / 1e6 }'
}

echo "best of $runs runs, $(date -u +%Y-%m-%d), $(nproc) host CPUs"
for kernel in sse x87; do
    rom=$build/bench/simd_$kernel.elf
    empty_rom=$build/bench/simd_${kernel}_empty.elf
    best v "$viridian" --stats --kernel "$rom"
    v_total=$best
    instructions=$(sed -n 's/^instructions: //p' "$out/v.err")
    v_checksum=$(cat "$out/v.out")
    best v_empty "$viridian" --stats --kernel "$empty_rom"
    v_empty=$best
    empty_instructions=$(sed -n 's/^instructions: //p' "$out/v_empty.err")
    n=$((instructions - empty_instructions))
    echo "kernel $kernel: $n guest instructions in the loop ($v_checksum)"
    printf "  %-10s %11s %11s %11s %12s\n" emulator total start-up net "guest MIPS"
    report viridian "$v_total" "$v_empty" "$n"
    if [ "$have_qemu" -eq 1 ]; then
        best q "${qemu[@]}" "$rom"
        q_total=$best
        q_checksum=$(cat "$out/q.out")
        best q_empty "${qemu[@]}" "$empty_rom"
        q_empty=$best
        if [ "$q_checksum" != "$v_checksum" ]; then
            echo "simd.sh: $kernel checksums differ: viridian '$v_checksum', QEMU '$q_checksum'" >&2
            exit 1
        fi
        report "QEMU TCG" "$q_total" "$q_empty" "$n"
        awk -v vt="$v_total" -v ve="$v_empty" -v qt="$q_total" -v qe="$q_empty" 'BEGIN {
            v = vt - ve; q = qt - qe; if (q <= 0) q = 0.0001
            printf "  time ratio viridian / QEMU TCG (net): %.2f\n", v / q }'
    else
        echo "  QEMU TCG: qemu-system-x86_64 not found (scripts/setup.sh installs it); skipped"
    fi
done
