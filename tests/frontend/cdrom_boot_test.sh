#!/bin/bash
# Firmware boot from an ATAPI CD-ROM (docs/storage.md "Firmware boot"):
# SeaBIOS boots an El Torito "no emulation" ISO from `--drive
# file=boot.iso,media=cdrom`; the boot image (tests/frontend/cdrom_boot.asm)
# reads the disc through the BIOS disk services (SeaBIOS's ATAPI driver, the
# ATAPI drive model, the block layer on its path) and reports through the
# debug-exit port. QEMU 7.2 boots the same ISO as the oracle.
# Usage: cdrom_boot_test.sh VIRIDIAN BOOT_IMAGE
set -u
viridian=$1 boot_image=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; failures=$((failures + 1)); }
if [ ! -r /usr/share/seabios/bios.bin ]; then
    echo "ok - # SKIP no /usr/share/seabios/bios.bin (Debian's seabios package)"
    exit 0
fi
if ! command -v xorriso >/dev/null; then
    echo "ok - # SKIP no xorriso (scripts/setup.sh installs it)"
    exit 0
fi

# The boot image: the 2048-byte program, then three sectors with byte
# (sector * 7 + offset) & 0xFF, offset counted across them.
mkdir "$work/root"
python3 - "$boot_image" "$work/root/boot.img" <<'PY'
import sys
code = open(sys.argv[1], 'rb').read()
assert len(code) == 2048
pattern = bytearray(3 * 2048)
for offset in range(len(pattern)):
    pattern[offset] = ((offset // 2048 + 1) * 7 + offset) & 0xFF
open(sys.argv[2], 'wb').write(code + pattern)
PY
xorriso -as mkisofs -quiet -o "$work/boot.iso" -V VIRIDIAN_CD -b boot.img -no-emul-boot \
    -boot-load-size 4 -boot-info-table "$work/root" 2>"$work/xorriso.err" ||
    { fail "xorriso: $(head -2 "$work/xorriso.err")"; echo "$failures failed"; exit 1; }

"$viridian" --drive "file=$work/boot.iso,media=cdrom" --deterministic --no-reboot \
    --max-instructions 300000000 >"$work/out" 2>"$work/err" </dev/null
status=$?
if [ $status -eq 1 ] && grep -q "cdrom-boot: all checks passed" "$work/out"; then
    pass "SeaBIOS boots the ISO from the ATAPI drive and the boot image's reads pass"
else
    fail "status $status; $(tr -d '\r' <"$work/out" | grep cdrom-boot) $(head -2 "$work/err")"
fi
grep -q "probing guessed raw" "$work/err" &&
    pass "the ISO's format is probed as raw, with QEMU's warning" ||
    fail "no raw-probe warning for the ISO: $(head -2 "$work/err")"

# The oracle: QEMU's own SeaBIOS and ATAPI drive boot the same ISO.
if command -v qemu-system-x86_64 >/dev/null; then
    timeout 60 qemu-system-x86_64 -nodefaults -display none -serial none -m 128 \
        -drive "file=$work/boot.iso,format=raw,media=cdrom,if=ide" \
        -device isa-debug-exit,iobase=0xf4,iosize=4 </dev/null >/dev/null 2>&1
    status=$?
    [ $status -eq 1 ] && pass "QEMU boots the same ISO and the boot image passes there too" ||
        fail "QEMU: the boot image fails on QEMU (status $status): the test itself is wrong"
fi

echo "$failures failed"
[ $failures -eq 0 ]
