#!/usr/bin/env bash
# Builds a bootable Debian 12 disk for viridian's firmware boot
# (docs/storage.md "A Debian disk"), from Debian's archive alone:
#   guest/debian.raw    an MBR disk: one ext4 partition at 1 MiB holding a
#                       minimal Debian (systemd, the stock kernel and its
#                       initramfs, fio), EXTLINUX as the boot loader, the
#                       serial console on ttyS0, root without a password
#   guest/debian.vhdx   the same disk as a dynamic VHDX (build/viridian-img)
#   guest/debian.stamp  what they were built from
# Idempotent: does nothing while the stamp matches this script.
#
# Usage: scripts/make-debian-disk.sh [--force]
# Needs root (a loop device to install EXTLINUX), mmdebstrap, extlinux,
# sfdisk and mke2fs; they are installed from Debian's archive when missing.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$self")/.."

force=0
for arg in "$@"; do
    case $arg in
    --force) force=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "make-debian-disk.sh: unknown argument '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

out=${VIRIDIAN_GUEST_DIR:-guest}
say() { echo "make-debian-disk.sh: $*"; }
die() {
    echo "make-debian-disk.sh: $*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap and a loop device for EXTLINUX)"
[ -x build/viridian-img ] || die "build/viridian-img is missing; run scripts/setup.sh first"

PACKAGES=(mmdebstrap extlinux syslinux-common e2fsprogs fdisk mount)
# shellcheck source=scripts/packages.sh
source scripts/packages.sh
install_packages make-debian-disk.sh "${PACKAGES[@]}"

# Debian's minimal system plus what a disk-booted test guest needs.
INCLUDE=linux-image-amd64,systemd-sysv,udev,kmod,procps,e2fsprogs,fio
DISK_SIZE_MIB=2048
PART_START_MIB=1

stamp=$(sha256sum "$self" | cut -d' ' -f1)
if [ $force -eq 0 ] && [ -f "$out/debian.stamp" ] && [ "$(cat "$out/debian.stamp")" = "$stamp" ] &&
    [ -f "$out/debian.raw" ] && [ -f "$out/debian.vhdx" ]; then
    say "guest/debian.raw and guest/debian.vhdx are up to date"
    exit 0
fi
mkdir -p "$out"

tmp=$(mktemp -d)
loop=""
cleanup() {
    mountpoint -q "$tmp/mnt" 2>/dev/null && umount "$tmp/mnt"
    [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

say "bootstrapping Debian bookworm ($INCLUDE)"
# The essential hook runs before the kernel is installed, so its initramfs
# is built once and small: initramfs-tools' MODULES=most (about 36 MB, a
# minute and a half through SeaBIOS's PIO reads) becomes MODULES=list plus
# what this machine's root needs: ata_piix on the PIIX IDE function, sd_mod
# and ext4 (and crc32c, ext4's soft dependency).
cat >"$tmp/initramfs-hook" <<'HOOK'
#!/bin/sh
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
manual_add_modules ata_piix ata_generic sd_mod ext4 crc32c_generic
HOOK
echo MODULES=list >"$tmp/initramfs-conf"
# The hooks set up what a fresh install would: the root filesystem in
# fstab, a host name, root without a password (the test logs in on the
# serial console), and no waiting for a network that is not there.
mmdebstrap --variant=minbase --include="$INCLUDE" \
    --essential-hook="install -D -m 644 $tmp/initramfs-conf \"\$1/etc/initramfs-tools/conf.d/viridian\"" \
    --essential-hook="install -D -m 755 $tmp/initramfs-hook \"\$1/etc/initramfs-tools/hooks/viridian\"" \
    --customize-hook='echo "LABEL=debian / ext4 errors=remount-ro 0 1" > "$1/etc/fstab"' \
    --customize-hook='echo viridian > "$1/etc/hostname"' \
    --customize-hook='chroot "$1" passwd -d root' \
    --customize-hook='rm -f "$1/etc/machine-id"; touch "$1/etc/machine-id"' \
    bookworm "$tmp/root" >"$tmp/mmdebstrap.log" 2>&1 ||
    { tail -20 "$tmp/mmdebstrap.log" >&2; die "mmdebstrap failed"; }

kernel=$(cd "$tmp/root/boot" && ls vmlinuz-* | sort -V | tail -1)
initrd=initrd.img-${kernel#vmlinuz-}
[ -f "$tmp/root/boot/$initrd" ] || die "the bootstrap made no $initrd"
mkdir -p "$tmp/root/boot/extlinux"
# The root is found by its label: with more disks beside it (bench/io-compare.sh)
# the kernel names them in the order their probes end, so the root disk is not
# always sda.
# EXTLINUX (syslinux.cfg syntax): no menu, the stock kernel with the serial
# console. No SERIAL line: SeaBIOS's serial console already copies the text
# screen to COM1, and EXTLINUX's own copy would print every line twice.
cat >"$tmp/root/boot/extlinux/extlinux.conf" <<CONF
DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
    KERNEL /boot/$kernel
    INITRD /boot/$initrd
    APPEND root=LABEL=debian ro console=ttyS0,115200
CONF

say "making the ext4 file system"
part_mib=$((DISK_SIZE_MIB - PART_START_MIB))
mkdir -p "$tmp/mnt"
truncate -s "${part_mib}M" "$tmp/part.img"
# 32-bit inode and block numbers and no 64bit feature: EXTLINUX 6.04 reads
# ext4 only without it.
mke2fs -q -t ext4 -O ^64bit,^metadata_csum -L debian -d "$tmp/root" "$tmp/part.img"

say "installing EXTLINUX"
loop=$(losetup -f --show "$tmp/part.img")
mount "$loop" "$tmp/mnt"
extlinux --install "$tmp/mnt/boot/extlinux" >/dev/null
umount "$tmp/mnt"
losetup -d "$loop"
loop=""

say "assembling the disk"
truncate -s "${DISK_SIZE_MIB}M" "$tmp/disk.raw"
echo "start=$((PART_START_MIB * 2048)), type=83, bootable" |
    sfdisk -q --label dos "$tmp/disk.raw" >/dev/null
dd if="$tmp/part.img" of="$tmp/disk.raw" bs=1M seek=$PART_START_MIB conv=notrunc,sparse status=none
dd if=/usr/lib/EXTLINUX/mbr.bin of="$tmp/disk.raw" bs=440 count=1 conv=notrunc status=none

rm -f "$out/debian.raw" "$out/debian.vhdx" "$out/debian.stamp"
build/viridian-img convert -f raw -O vhdx "$tmp/disk.raw" "$tmp/disk.vhdx" >/dev/null
mv "$tmp/disk.raw" "$out/debian.raw"
mv "$tmp/disk.vhdx" "$out/debian.vhdx"
echo "$stamp" >"$out/debian.stamp"
say "done: $out/debian.raw, $out/debian.vhdx ($kernel)"
