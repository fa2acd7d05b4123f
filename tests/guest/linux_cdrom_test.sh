#!/usr/bin/env bash
# ATAPI test: the Debian kernel's ata_piix and sr_mod find the CD-ROM drive
# that `--drive file=X.iso,media=cdrom` puts on the PIIX IDE controller; the
# guest reads /dev/sr0 whole (the ISO's bytes, by bus-master DMA as libata
# does ATAPI reads) and mounts it as iso9660 to read a file on it; the
# sums must be the host's.
#
#   linux_cdrom_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built or xorriso is missing.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-cdrom "$guest"
command -v xorriso >/dev/null || { echo "linux-cdrom: no xorriso (scripts/setup.sh)"; exit 77; }

mkdir "$work/root"
head -c 1M /dev/urandom >"$work/root/data.bin"
xorriso -as mkisofs -quiet -o "$work/cd.iso" -V VIRIDIAN_CD "$work/root" ||
    fail "xorriso could not make the ISO"
iso_sum=$(sha256sum <"$work/cd.iso" | cut -d' ' -f1)
data_sum=$(sha256sum <"$work/root/data.bin" | cut -d' ' -f1)
iso_sectors=$(($(stat -c %s "$work/cd.iso") / 512))

run="cat /sys/block/sr0/size; dd if=/dev/sr0 bs=64k | sha256sum; mount -t iso9660 -o ro /dev/sr0 /mnt && sha256sum /mnt/data.bin"
# With --drive and no --kernel, viridian would boot the firmware: name the
# default guest's kernel and initramfs.
timeout 300 "$viridian" --enlightenments off --drive file="$work/cd.iso,media=cdrom,index=2" \
    --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
    --append "console=ttyS0 panic=-1 viridian.modules=ata_piix,sr_mod,isofs viridian.run=\"$run\"" \
    >"$work/out" 2>&1 </dev/null
status=$?
cat "$work/out"
[ "$status" -eq 0 ] || fail "viridian exited with status $status"
has "viridian-guest: exit status 0" || fail "the guest's command failed"
has "ata2.00: ATAPI: VIRIDIAN DVD-ROM" || fail "ata_piix did not find the ATAPI drive"
has "sr[0-9]*.*(scsi3-mmc|CD-ROM)" || fail "sr_mod did not take the drive"
has "^$iso_sectors\s*$" || fail "/sys/block/sr0/size is not $iso_sectors sectors"
has "^$iso_sum " || fail "the guest's /dev/sr0 does not hold the ISO's bytes"
has "^$data_sum  /mnt/data.bin" || fail "the file on the mounted ISO does not match"
has "ata.*(failed|timeout|error)" && fail "libata reported an error"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}"
echo "linux-cdrom: ok"
