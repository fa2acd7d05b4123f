#!/usr/bin/env bash
# A first look at emulated against enlightened disk I/O (not the issue-15
# report, which runs fio on the Debian disk guest): the default guest reads
# a 256 MiB raw disk with busybox dd (O_DIRECT, queue depth 1) — 128 MiB in
# 1 MiB requests, then 8192 x 4 KiB — on viridian's IDE, on viridian's
# synthetic SCSI controller (storvsp over VMBus), and on QEMU TCG's IDE, one
# after the other in this run. Time is the guest's /proc/uptime around each
# dd; viridian's exits are its --stats. Prints a markdown table.
#
#   bench/io-first-look.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
guest=${VIRIDIAN_GUEST_DIR:-guest}
command -v qemu-system-x86_64 >/dev/null || { echo "io-first-look.sh: qemu-system-x86_64 is not installed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
truncate -s 256M "$work/disk.img"
head -c 128M /dev/urandom | dd of="$work/disk.img" conv=notrunc status=none
run='cat /proc/uptime; dd if=/dev/sda of=/dev/null bs=1M count=128 iflag=direct; cat /proc/uptime; dd if=/dev/sda of=/dev/null bs=4k count=8192 iflag=direct; cat /proc/uptime'
append="console=ttyS0 panic=-1 quiet viridian.run=\"$run\""

measure() { # NAME LOG: prints a table row from the three uptime readings
    local name=$1 log=$2
    read -r t0 t1 t2 < <(grep -E '^[0-9]+\.[0-9]+ [0-9]+\.[0-9]+\s*$' "$log" | awk '{printf "%s ", $1} END {print ""}')
    local ports vmbus
    ports=$(sed -n 's/^port accesses: //p' "$log")
    vmbus=$(sed -n 's/^vmbus signals to host: //p' "$log")
    awk -v n="$name" -v a="$t0" -v b="$t1" -v c="$t2" -v p="${ports:--}" -v s="${vmbus:--}" \
        'BEGIN { printf "| %s | %.0f | %.0f | %s | %s |\n", n, 128 / (b - a), 8192 / (c - b), p, s }'
}

"$build/viridian" --stats --drive file="$work/disk.img,format=raw" --kernel "$guest/vmlinuz" \
    --initrd "$guest/initramfs.cpio.gz" --append "${append/quiet/quiet viridian.modules=ata_piix,sd_mod}" \
    </dev/null >"$work/ide.log" 2>&1
"$build/viridian" --stats --drive file="$work/disk.img,format=raw,if=scsi" --kernel "$guest/vmlinuz" \
    --initrd "$guest/initramfs.cpio.gz" --append "${append/quiet/quiet viridian.modules=hv_vmbus,hv_storvsc,sd_mod}" \
    </dev/null >"$work/scsi.log" 2>&1
timeout 900 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot -kernel "$guest/vmlinuz" \
    -initrd "$guest/initramfs.cpio.gz" -append "${append/quiet/quiet viridian.modules=ata_piix,sd_mod}" \
    -drive file="$work/disk.img,format=raw,if=ide" </dev/null >"$work/qemu.log" 2>&1
echo "| disk | 1 MiB reads, MiB/s | 4 KiB reads, IOPS | port exits (whole run) | VMBus signals to host (whole run) |"
echo "|---|---|---|---|---|"
measure "viridian IDE (ata_piix)" "$work/ide.log"
measure "viridian synthetic SCSI (hv_storvsc)" "$work/scsi.log"
measure "QEMU 7.2 TCG IDE (ata_piix)" "$work/qemu.log"
