#!/usr/bin/env bash
# Root filesystem on an IDE disk in each image format (issue 14, "Linux's
# root filesystem on an IDE disk in each format boots and survives a write
# workload and a reboot with its data intact"): the default guest's own
# files are put on an ext4 filesystem (mke2fs -d, no loop device or root
# needed) and the image is converted with viridian-img to FORMAT:
#   raw, vpc (VHD dynamic), vhdx (dynamic), vhdx-child (a differencing VHDX
#   whose parent is the dynamic VHDX).
# The kernel boots with viridian.root=/dev/sda: ata_piix finds the disk, the
# initramfs mounts it and switch_roots into it. The first boot checks that /
# is the disk, writes 4 MiB of random data and its sha256 to it, syncs and
# reboots; the second boot (the same viridian run) reads the file back and
# compares. Afterwards viridian-img checks the image, qemu-img checks a
# VHDX, both read a VHD or VHDX back identically, and a child's parent is
# unchanged.
#
#   linux_root_disk_test.sh VIRIDIAN VIRIDIAN_IMG GUEST_DIR FORMAT
#
# Exits 77 (skipped) when the guest has not been built or mke2fs is missing.
set -u
viridian=$1
img=$2
guest=$3
format=$4
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test "linux-root-$format" "$guest"
command -v mke2fs >/dev/null || { echo "mke2fs is not installed: skipped"; exit 77; }

# The initramfs's tree (busybox, /init, the modules) as the disk's files.
mkdir "$work/tree"
(cd "$work/tree" && gzip -dc "$guest/initramfs.cpio.gz" | cpio -id --quiet 2>/dev/null) ||
    (cd "$work/tree" && gzip -dc "$guest/initramfs.cpio.gz" | busybox cpio -id 2>/dev/null) ||
    fail "cannot unpack the initramfs"
mke2fs -q -F -t ext4 -L vroot -d "$work/tree" "$work/root.raw" 96M || fail "mke2fs failed"

case $format in
raw) disk=$work/root.raw ;;
vpc | vhdx)
    disk=$work/root.$format
    "$img" convert -f raw -O "$format" "$work/root.raw" "$disk" || fail "viridian-img convert -O $format failed"
    ;;
vhdx-child)
    parent=$work/root.vhdx
    disk=$work/child.vhdx
    "$img" convert -f raw -O vhdx "$work/root.raw" "$parent" &&
        "$img" create -f vhdx -b "$parent" "$disk" >/dev/null || fail "cannot make the differencing child"
    parent_sum=$(sha256sum <"$parent" | cut -d' ' -f1)
    ;;
*) fail "unknown format $format" ;;
esac

# Two boots of one run: no double quotes inside (the kernel's command line).
run="grep ' / ' /proc/mounts; grep -qE '^/dev/(sda|root) / ext4' /proc/mounts || exit 1; \
if [ -e /written ]; then echo reread: \$(sha256sum </data) \$(cat /written); \
else head -c 4194304 /dev/urandom >/data && sha256sum </data | cut -d' ' -f1 >/written && sync && \
echo rebooting && reboot -f; fi"
timeout 600 "$viridian" --drive "file=$disk" --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
    --append "console=ttyS0 panic=-1 viridian.modules=ata_piix,sd_mod,ext4 viridian.root=/dev/sda viridian.run=\"$run\"" \
    >"$work/out" 2>&1 </dev/null
status=$?
cat "$work/out"
[ "$status" -eq 0 ] || fail "viridian exited with status $status"
has "viridian-guest: root /dev/sda" || fail "the initramfs did not switch to the disk"
[ "$(grep -cE '^/dev/(sda|root) / ext4 rw' "$work/out")" -eq 2 ] || fail "/ is not the disk's ext4 in both boots"
has "^rebooting" || fail "the first boot did not write its data"
line=$(grep -E '^reread: ' "$work/out" | tr -d '\r') || fail "the second boot did not read the data back"
read -r _ sum _ written <<<"$line"
[ "$sum" = "$written" ] || fail "the data read back after the reboot differs: $line"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}" "EXT4-fs error" "I/O error"

# The image afterwards: consistent, and the same bytes for both tools
# (qemu-img checks only VHDX, and cannot open a differencing VHDX at all).
if [ "$format" != raw ]; then
    "$img" check "$disk" >"$work/check" 2>&1 || fail "viridian-img check: $(cat "$work/check")"
    if command -v qemu-img >/dev/null && [ "$format" != vhdx-child ]; then
        if [ "$format" = vhdx ]; then
            qemu-img check -f vhdx "$disk" >"$work/check" 2>&1 || fail "qemu-img check: $(cat "$work/check")"
        fi
        qemu-img convert -f "$format" -O raw "$disk" "$work/qemu.raw" &&
            "$img" convert -O raw "$disk" "$work/ours.raw" || fail "cannot convert the image back to raw"
        cmp -s "$work/qemu.raw" "$work/ours.raw" || fail "qemu-img and viridian-img read different bytes"
    fi
fi
if [ "$format" = vhdx-child ]; then
    [ "$(sha256sum <"$parent" | cut -d' ' -f1)" = "$parent_sum" ] || fail "the parent image changed"
fi
echo "linux-root-$format: ok"
