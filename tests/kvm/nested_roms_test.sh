#!/usr/bin/env bash
# nested_roms_test.sh — runs test ROMs on viridian inside the nested QEMU
# guest (nested_run.sh), all in one boot, and judges each as
# test-roms/run-rom.sh does: exit status 1 (isa-debug-exit code 0), a line
# exactly "PASS" and no line with "FAIL".
#
#   nested_roms_test.sh kvm|interp VIRIDIAN [ROM.elf CPUS CMDLINE]...
#
# kvm runs each ROM with `--accel kvm`; interp without --accel (viridian's
# interpreter inside the nested guest: the same harness with no KVM backend,
# and the numbers to compare with). CPUS is the ROM's --cpus (1 or more),
# CMDLINE its --append ("" for none). Exits 77 (skipped) when QEMU or the
# guest is missing.
# ROM_TIMEOUT (seconds, default 60) bounds each ROM inside the guest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

[ $# -ge 2 ] || {
    echo "usage: $0 kvm|interp VIRIDIAN [ROM.elf CPUS CMDLINE]..." >&2
    exit 2
}
mode=$1
viridian=$2
shift 2
name=kvm-nested
accel=()
case $mode in
kvm)
    # The backend exists: a viridian that refuses --accel kvm in the
    # nested guest (which has /dev/kvm) fails every ROM. (This used to
    # skip when `--help | grep -q` found no --accel; under pipefail that
    # pipeline also failed whenever grep closed the pipe before viridian
    # had written all of --help, and CI skipped the test.)
    accel=(--accel kvm)
    ;;
interp) name=kvm-nested-interp ;;
*)
    echo "$name: mode must be kvm or interp, not '$mode'" >&2
    exit 2
    ;;
esac
[ $(($# % 3)) -eq 0 ] && [ $# -gt 0 ] || {
    echo "$name: ROMs come as triples ROM.elf CPUS CMDLINE" >&2
    exit 2
}
rom_limit=${ROM_TIMEOUT:-60}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# kvm_smoke first: KVM itself running guest code in the nested guest, so
# that a broken nested KVM is not taken for a broken backend. It needs only
# libc, which the guest has for viridian.
${CC:-cc} -O2 -o "$work/kvm_smoke" "$here/kvm_smoke.c" || {
    echo "$name: cannot build kvm_smoke.c"
    exit 1
}

# The guest's script: every ROM in turn between marker lines. busybox's
# timeout bounds each; /proc/uptime times them (centiseconds).
files=("$work/kvm_smoke")
names=()
{
    echo 'now() { cut -d" " -f1 /proc/uptime; }'
    echo 'elapsed() { awk -v a="$1" -v b="$(now)" '"'"'BEGIN { printf "%.2f", b - a }'"'"'; }'
    echo './kvm_smoke 10000'
    while [ $# -gt 0 ]; do
        rom=$1 cpus=$2 cmdline=$3
        shift 3
        [ -f "$rom" ] || {
            echo "$name: no such ROM: $rom"
            exit 1
        }
        base=${rom##*/}
        files+=("$rom")
        names+=("${base%.elf}")
        line="timeout $rom_limit \"\$VIRIDIAN\" ${accel[*]} --kernel $(quote "$base")"
        [ "$cpus" = 1 ] || line+=" --cpus $(quote "$cpus")"
        [ -z "$cmdline" ] || line+=" --append $(quote "$cmdline")"
        echo "echo 'nested-rom: begin ${base%.elf}'; t0=\$(now)"
        echo "$line 2>&1"
        echo "s=\$?; echo \"nested-rom: end ${base%.elf} status \$s seconds \$(elapsed \$t0)\""
    done
} >"$work/roms.sh"

file_args=()
for f in "${files[@]}"; do file_args+=(--file "$f"); done
# Boot (about 5 s) plus every ROM's limit, with room for a slow machine.
limit=$((60 + rom_limit * ${#files[@]}))
set +e
"$here/nested_run.sh" "${file_args[@]}" --script "$work/roms.sh" "$viridian" "$limit" >"$work/out" 2>&1
status=$?
set -e
cat "$work/out"
[ $status -ne 77 ] || exit 77

grep -q '^kvm-smoke: ok' "$work/out" || {
    echo "$name: KVM does not run guest code in the nested guest (kvm_smoke); nothing judged"
    exit 1
}

# Judge each ROM on the lines between its markers.
passed=0
failed=()
for rom in "${names[@]}"; do
    sed -n "/^nested-rom: begin $rom\$/,/^nested-rom: end $rom /p" "$work/out" >"$work/rom"
    end=$(grep "^nested-rom: end $rom " "$work/rom" || true)
    why=
    if [ -z "$end" ]; then
        why="did not finish (nested_run.sh status $status)"
    else
        rom_status=$(echo "$end" | awk '{ print $5 }')
        if grep -q 'FAIL' "$work/rom"; then
            why="output contains FAIL (exit status $rom_status)"
        elif ! grep -qx 'PASS' "$work/rom"; then
            why="no PASS line (exit status $rom_status)"
        elif [ "$rom_status" != 1 ]; then
            why="exit status $rom_status, expected 1 (debug-exit code 0)"
        fi
    fi
    if [ -n "$why" ]; then
        failed+=("$rom")
        echo "$name: FAILED $rom: $why"
    else
        passed=$((passed + 1))
    fi
done
echo "$name: $(grep -m1 '^nested-run: /dev/kvm after' "$work/out" | sed 's/^nested-run: //'), $(grep -m1 '^kvm-smoke: ok' "$work/out" | sed 's/^kvm-smoke: ok, //')"
echo "$name: per ROM (seconds inside the nested guest):" \
    "$(sed -n 's/^nested-rom: end \([^ ]*\) status [0-9]* seconds \([0-9.]*\)$/\1 \2/p' "$work/out" | tr '\n' ',' | sed 's/,$//; s/,/, /g')"
echo "$name: $passed of ${#names[@]} ROMs passed${failed[*]:+; failed: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
