#!/bin/sh
# run-rom.sh — run one viridian test ROM and judge it.
#
#   run-rom.sh <emulator-binary | qemu> <rom.elf> [timeout-seconds] [kernel-cmdline]
#
# "qemu" runs the ROM on qemu-system-x86_64 (the reference); anything else
# is taken as the viridian binary and run as `<binary> --kernel <rom.elf>`
# (plus `--append <cmdline>` when a command line is given).
# QEMU_EXTRA_ARGS adds arguments to the QEMU command (e.g. "-cpu max").
# ROM_CPUS=N runs the ROM with N vCPUs (-smp N / --cpus N).
#
# Exits 0 iff the run ended with process status 1 (isa-debug-exit code 0)
# AND the output has a line "PASS" and no "FAIL"; otherwise says why and
# exits 1.

set -u

if [ $# -lt 2 ]; then
    echo "usage: $0 <emulator-binary|qemu> <rom.elf> [timeout-seconds] [kernel-cmdline]" >&2
    exit 2
fi

emu=$1
rom=$2
limit=${3:-60}
cmdline=${4-}
has_cmdline=0
[ $# -ge 4 ] && has_cmdline=1

if [ ! -f "$rom" ]; then
    echo "run-rom: no such ROM: $rom" >&2
    exit 1
fi

out=$(mktemp "${TMPDIR:-/tmp}/run-rom.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT INT TERM

if [ "$emu" = "qemu" ]; then
    set -- qemu-system-x86_64 -machine pc -accel tcg -m 128M -display none \
        -serial stdio -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=4 \
        -kernel "$rom"
    # shellcheck disable=SC2086  # word splitting of extra args is intended
    [ -n "${QEMU_EXTRA_ARGS-}" ] && set -- "$@" ${QEMU_EXTRA_ARGS}
    [ $has_cmdline = 1 ] && set -- "$@" -append "$cmdline"
    [ -n "${ROM_CPUS-}" ] && set -- "$@" -smp "$ROM_CPUS"
else
    if [ ! -x "$emu" ]; then
        echo "run-rom: emulator not found or not executable: $emu" >&2
        exit 1
    fi
    set -- "$emu" --kernel "$rom"
    [ $has_cmdline = 1 ] && set -- "$@" --append "$cmdline"
    [ -n "${ROM_CPUS-}" ] && set -- "$@" --cpus "$ROM_CPUS"
fi

timeout --kill-after=5 "$limit" "$@" </dev/null >"$out" 2>&1
status=$?

# Show what the ROM said (serial output), without carriage returns.
tr -d '\r' <"$out"

if [ $status -eq 124 ] || [ $status -eq 137 ]; then
    echo "run-rom: TIMEOUT after ${limit}s: $rom" >&2
    exit 1
fi
if tr -d '\r' <"$out" | grep -q 'FAIL'; then
    echo "run-rom: output contains FAIL (exit status $status): $rom" >&2
    exit 1
fi
if ! tr -d '\r' <"$out" | grep -qx 'PASS'; then
    echo "run-rom: no PASS line in output (exit status $status): $rom" >&2
    exit 1
fi
if [ $status -ne 1 ]; then
    echo "run-rom: exit status $status, expected 1 (debug-exit code 0): $rom" >&2
    exit 1
fi
exit 0
