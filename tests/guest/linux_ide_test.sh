#!/usr/bin/env bash
# IDE test: the Debian kernel's ata_piix finds a raw disk on the PIIX IDE
# controller (--drive), reads what the host put there, writes a pattern
# with O_DIRECT (bus-master DMA), reads it back and powers off; the host
# then finds the pattern in the image file. A second boot, with
# --deterministic (completions at a fixed virtual time), reads it again.
#
#   linux_ide_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-ide "$guest"

# 32 MiB; 1 MiB of the host's data at 1 MiB; the guest writes 2 MiB at 4 MiB.
truncate -s 32M "$work/disk.img"
head -c 1M /dev/urandom >"$work/host-data"
dd if="$work/host-data" of="$work/disk.img" bs=1M seek=1 conv=notrunc status=none
host_sum=$(sha256sum <"$work/host-data" | cut -d' ' -f1)
yes viridian-ide-pattern | head -c 2097152 >"$work/pattern"
pattern_sum=$(sha256sum <"$work/pattern" | cut -d' ' -f1)

boot() { # boot COMMAND [OPTIONS...]
    local run=$1
    shift
    # With --drive and no --kernel, viridian boots the firmware (SeaBIOS):
    # name the default guest's kernel and initramfs.
    timeout 300 "$viridian" --enlightenments off --drive file="$work/disk.img,format=raw" "$@" \
        --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
        --append "console=ttyS0 panic=-1 viridian.modules=ata_piix,sd_mod viridian.run=\"$run\"" \
        >"$work/out" 2>&1 </dev/null
    status=$?
    cat "$work/out"
    [ "$status" -eq 0 ] || fail "viridian exited with status $status"
    has "viridian-guest: exit status 0" || fail "the guest's command failed"
}

boot "cat /sys/block/sda/size; dd if=/dev/sda bs=1M skip=1 count=1 iflag=direct | sha256sum; yes viridian-ide-pattern | head -c 2097152 >/tmp/p; dd if=/tmp/p of=/dev/sda bs=1M seek=4 oflag=direct; sync; dd if=/dev/sda bs=1M skip=4 count=2 iflag=direct | sha256sum"
has "ata1.00: ATA-[0-9]+: VIRIDIAN HARDDISK" || fail "ata_piix did not find the disk"
has "^65536\s*$" || fail "/sys/block/sda/size is not 65536 sectors"
has "^$host_sum " || fail "the guest did not read the host's data"
[ "$(grep -c "^$pattern_sum " "$work/out")" -eq 1 ] || fail "the guest did not read its pattern back"
has "ata.*(failed|timeout|error)" && fail "libata reported an error"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}"
image_sum=$(dd if="$work/disk.img" bs=1M skip=4 count=2 status=none | sha256sum | cut -d' ' -f1)
[ "$image_sum" = "$pattern_sum" ] || fail "the image file does not hold the guest's pattern"
if command -v qemu-img >/dev/null; then
    qemu-img compare -f raw -F raw "$work/disk.img" "$work/disk.img" >/dev/null ||
        fail "qemu-img cannot read the image"
fi

boot "dd if=/dev/sda bs=1M skip=4 count=2 iflag=direct | sha256sum" --deterministic
has "^$pattern_sum " || fail "the second (deterministic) boot did not read the pattern back"

# snapshot=on, recorded: the guest overwrites its pattern and reads the new
# bytes back, the image file keeps the old ones, and the replay (whose
# command line has snapshot=on too) prints the same.
cp "$work/disk.img" "$work/before.img"
run="dd if=/dev/urandom of=/dev/sda bs=1M seek=4 count=2 oflag=direct; sync; dd if=/dev/sda bs=1M skip=4 count=2 iflag=direct | sha256sum"
timeout 300 "$viridian" --enlightenments off --drive file="$work/disk.img,format=raw,snapshot=on" \
    --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" --record "$work/run.vrr" \
    --append "console=ttyS0 panic=-1 viridian.modules=ata_piix,sd_mod viridian.run=\"$run\"" \
    >"$work/out" 2>"$work/err" </dev/null || { cat "$work/err"; fail "the recorded snapshot=on boot failed"; }
has "viridian-guest: exit status 0" || fail "the snapshot=on guest's command failed"
has "^$pattern_sum " && fail "the snapshot=on guest read its old pattern after overwriting it"
cmp -s "$work/disk.img" "$work/before.img" || fail "snapshot=on changed the image file"
timeout 300 "$viridian" --replay "$work/run.vrr" >"$work/replayed" 2>"$work/err" </dev/null ||
    { cat "$work/err"; fail "the snapshot=on replay failed"; }
cmp -s "$work/out" "$work/replayed" || fail "the snapshot=on replay printed other output"
echo "linux-ide: snapshot=on keeps the file, and its recording replays"
echo "linux-ide: ok"
