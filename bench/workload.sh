#!/usr/bin/env bash
# Workload benchmark (issue 5): the same guest workload, timed natively, in
# QEMU TCG and in viridian, printed as seconds and time/native.
#
# The workload: busybox `seq` writes WORKLOAD_MIB MiB (default 32) of numbers
# to /tmp/f (cut to the exact size with head -c), then `sha256sum /tmp/f`
# and `gzip -c /tmp/f >/dev/null`. In the guests it runs from the default
# initramfs through viridian.run=; the guest times itself with /proc/uptime
# around the workload only (busybox `date` has no %N), so the boot is not
# counted. Natively it runs with the guest's own busybox binary, extracted
# from the initramfs (the same code the guests run), or the host's
# seq/head/sha256sum/gzip if that fails. Both emulators get 512 MiB, 1 vCPU.
#
#   bench/workload.sh [BUILD_DIR]            (default: build)
#   WORKLOAD_MIB=4 bench/workload.sh         a smaller run for a slow build
#   WORKLOAD_SKIP=viridian|qemu              leave one emulator out
# No pipefail: `seq | head -c` ends seq with SIGPIPE on purpose.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
mib=${WORKLOAD_MIB:-32}
skip=${WORKLOAD_SKIP:-}
kernel=guest/vmlinuz
initrd=guest/initramfs.cpio.gz
for f in "$build/viridian" "$kernel" "$initrd"; do
    [ -e "$f" ] || { echo "workload.sh: $f is missing (build, and run scripts/fetch-guest.sh)" >&2; exit 1; }
done
[[ "$mib" =~ ^[1-9][0-9]*$ ]] || { echo "workload.sh: WORKLOAD_MIB must be a positive integer" >&2; exit 1; }
bytes=$((mib * 1048576))
# seq 1 N writes more than `bytes` for this N at any size up to a few GiB.
count=$((bytes / 6 + 1000))

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The guest command: no double quotes (the kernel command line cannot hold
# them inside a quoted value). It prints "workload-seconds S" and the hash.
steps="seq 1 $count | head -c $bytes >/tmp/f && sha256sum /tmp/f && gzip -c /tmp/f >/dev/null"
guest_cmd="read t0 x </proc/uptime; $steps; read t1 x </proc/uptime; echo workload-seconds \$(awk -v a=\$t0 -v b=\$t1 'BEGIN { print b - a }')"
append="console=ttyS0 panic=-1 viridian.run=\"$guest_cmd\""

# The hash the guests must print: the same bytes hashed on the host.
expected=$(seq 1 "$count" | head -c "$bytes" | sha256sum | cut -d' ' -f1)

# native: the guest's busybox on the host if it runs here, else coreutils.
busybox=
if (cd "$work" && zcat "$OLDPWD/$initrd" | cpio -id --quiet bin/busybox) 2>/dev/null &&
    "$work/bin/busybox" true 2>/dev/null; then
    busybox="$work/bin/busybox"
fi
native() {
    local tmp=$work/f
    if [ -n "$busybox" ]; then
        "$busybox" seq 1 "$count" | "$busybox" head -c "$bytes" >"$tmp"
        "$busybox" sha256sum "$tmp" >/dev/null
        "$busybox" gzip -c "$tmp" >/dev/null
    else
        seq 1 "$count" | head -c "$bytes" >"$tmp"
        sha256sum "$tmp" >/dev/null
        gzip -c "$tmp" >/dev/null
    fi
    rm -f "$tmp"
}
start=$EPOCHREALTIME
native
end=$EPOCHREALTIME
native_s=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
native_tool=${busybox:+busybox from the initramfs}
native_tool=${native_tool:-host coreutils}

# in_guest NAME CMD...: boots CMD, checks the hash and the exit status, and
# sets $guest_s to the workload time the guest printed.
in_guest() {
    local name=$1 log=$work/$1.log status=0
    shift
    "$@" >"$log" 2>&1 </dev/null || status=$?
    if [ "$status" -ne 0 ] || ! grep -q "viridian-guest: exit status 0" "$log"; then
        echo "workload.sh: $name did not run the workload to the end (status $status)" >&2
        tail -5 "$log" >&2
        exit 1
    fi
    grep -q "^$expected " "$log" || { echo "workload.sh: $name printed a wrong sha256" >&2; exit 1; }
    guest_s=$(grep -o 'workload-seconds [0-9.]*' "$log" | awk '{ print $2 }')
}

viridian_s=-
qemu_s=-
if [ "$skip" != viridian ]; then
    in_guest viridian "$build/viridian" --memory 512M --kernel "$kernel" --initrd "$initrd" --append "$append"
    viridian_s=$guest_s
fi
if [ "$skip" != qemu ]; then
    in_guest qemu qemu-system-x86_64 -machine pc -accel tcg -m 512M -smp 1 -nographic -no-reboot \
        -kernel "$kernel" -initrd "$initrd" -append "$append"
    qemu_s=$guest_s
fi

echo "workload: seq | head -c $mib MiB > /tmp/f; sha256sum; gzip -c; $(date +%F), $(nproc) host CPUs"
printf "%-10s %10s %12s\n" where seconds time/native
row() {
    if [ "$2" = - ]; then
        printf "%-10s %10s %12s\n" "$1" - -
    else
        awk -v n="$1" -v s="$2" -v b="$native_s" 'BEGIN { printf "%-10s %10.2f %12.1f\n", n, s, s / b }'
    fi
}
row native "$native_s"
echo "           (native: $native_tool)"
row viridian "$viridian_s"
row "QEMU TCG" "$qemu_s"
