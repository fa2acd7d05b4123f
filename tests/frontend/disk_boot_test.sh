#!/bin/bash
# Firmware boot from an IDE disk (docs/storage.md "Firmware boot"): SeaBIOS
# loads tests/frontend/disk_boot.asm from the disk's first sector; the boot
# sector reads and writes the disk through the BIOS disk services (so SeaBIOS's
# ATA driver, the PIIX IDE model, the block layer and the image format are all
# on the path) and reports through the debug-exit port. The same disk in raw,
# VHD and VHDX; QEMU 7.2 boots the raw one as the oracle for the boot sector.
# Usage: disk_boot_test.sh VIRIDIAN VIRIDIAN_IMG BOOT_SECTOR
set -u
viridian=$1 img=$2 boot_sector=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; failures=$((failures + 1)); }
if [ ! -r /usr/share/seabios/bios.bin ]; then
    echo "ok - # SKIP no /usr/share/seabios/bios.bin (Debian's seabios package)"
    exit 0
fi

# 4 MiB: the boot sector, sectors 1-16 with byte (sector * 7 + offset) & 0xFF,
# and "LAST SECTOR" at the start of sector 8191.
python3 - "$boot_sector" "$work/disk.raw" <<'PY'
import sys
boot = open(sys.argv[1], 'rb').read()
assert len(boot) == 512
disk = bytearray(4 << 20)
disk[0:512] = boot
for sector in range(1, 17):
    for offset in range(512):
        disk[sector * 512 + offset] = (sector * 7 + (sector - 1) * 512 + offset) & 0xFF
disk[8191 * 512:8191 * 512 + 11] = b"LAST SECTOR"
open(sys.argv[2], 'wb').write(disk)
PY

written_sector_ok() { # RAW_FILE
    dd if="$1" bs=512 skip=17 count=1 status=none | head -c 26 | grep -q "WRITTEN BY THE BOOT SECTOR"
}

for fmt in raw vpc vhdx; do
    disk=$work/disk.$fmt
    if [ $fmt = raw ]; then
        cp "$work/disk.raw" "$disk"
    else
        opts=()
        [ $fmt = vpc ] && opts=(-o force_size=on)
        "$img" convert -f raw -O $fmt "${opts[@]}" "$work/disk.raw" "$disk" >/dev/null || {
            fail "$fmt: viridian-img convert"
            continue
        }
    fi
    # The VHDX disk also goes past the host page cache (cache=none, O_DIRECT).
    cache=writeback
    [ $fmt = vhdx ] && cache=none
    "$viridian" --drive "file=$disk,format=$fmt,cache=$cache" --deterministic --no-reboot \
        --max-instructions 200000000 >"$work/out" 2>"$work/err" </dev/null
    status=$?
    if [ $status -eq 1 ] && grep -q "disk-boot: all checks passed" "$work/out"; then
        pass "$fmt: SeaBIOS boots the disk and the boot sector's reads and write pass"
    else
        fail "$fmt: status $status; $(tr -d '\r' <"$work/out" | grep disk-boot) $(head -2 "$work/err")"
    fi
    rm -f "$work/back.raw"
    "$img" convert -f $fmt -O raw "$disk" "$work/back.raw" >/dev/null &&
        written_sector_ok "$work/back.raw" && pass "$fmt: the guest's write is in the image" ||
        fail "$fmt: the guest's write is not in the image"
    "$img" check -f $fmt "$disk" >/dev/null || fail "$fmt: viridian-img check after the boot"
done

# The oracle: QEMU's own SeaBIOS and IDE run the same boot sector.
if command -v qemu-system-x86_64 >/dev/null; then
    cp "$work/disk.raw" "$work/qemu.raw"
    timeout 60 qemu-system-x86_64 -nodefaults -display none -serial none -m 128 \
        -drive "file=$work/qemu.raw,format=raw,if=ide" \
        -device isa-debug-exit,iobase=0xf4,iosize=4 </dev/null >/dev/null 2>&1
    status=$?
    [ $status -eq 1 ] && written_sector_ok "$work/qemu.raw" &&
        pass "QEMU boots the same disk and the boot sector passes there too" ||
        fail "QEMU: the boot sector fails on QEMU (status $status): the test itself is wrong"
fi

echo "$failures failed"
[ $failures -eq 0 ]
