#!/usr/bin/env bash
# Save/restore with SCSI I/O in flight: a deterministic guest writes 16 MiB
# to a disk on the synthetic SCSI controller in 4 KiB O_DIRECT requests and
# reads it back; the machine is saved halfway through the writing
# (--save-at, measured from an uninterrupted run) and restored
# (--incoming). The disks are drained at the save, so no request is lost:
# the restored guest reads back what it wrote and the image file holds
# every byte. (The output is not compared line by line with the
# uninterrupted run: a drained request completes at the save, earlier than
# it would have.)
#
#   linux_scsi_snapshot_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-scsi-snapshot "$guest"

yes viridian-scsi-snapshot | head -c 16777216 >"$work/pattern"
pattern_sum=$(sha256sum <"$work/pattern" | cut -d' ' -f1)
write="yes viridian-scsi-snapshot | head -c 16777216 | dd of=/dev/sda bs=4k oflag=direct"
check="dd if=/dev/sda bs=4k count=4096 iflag=direct | sha256sum"

boot() { # OUT RUN [OPTIONS...]
    local out=$1 run=$2
    shift 2
    timeout 600 "$viridian" --deterministic --stats --drive file="$work/disk.img,format=raw,if=scsi" "$@" \
        --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
        --append "console=ttyS0 panic=-1 viridian.modules=hv_vmbus,hv_storvsc,sd_mod viridian.run=\"$run\"" \
        >"$work/$out" 2>&1 </dev/null || fail "$out: viridian exited with status $? ($(tail -1 "$work/$out"))"
}
instructions() { sed -n 's/^instructions: //p' "$work/$1"; }

truncate -s 32M "$work/disk.img"
boot ready.txt "true"
boot full.txt "$write; $check"
grep -q "^$pattern_sum " "$work/full.txt" || fail "the uninterrupted run did not read its pattern back"
ready=$(instructions ready.txt)
full=$(instructions full.txt)
save_at=$(((ready + full) / 2))
echo "linux-scsi-snapshot: ready at $ready, done at $full instructions; saving at $save_at"

rm "$work/disk.img"
truncate -s 32M "$work/disk.img"
boot first.txt "$write; $check" --save-at "$save_at,file:$work/machine.snap"
grep -q "^viridian: saved the machine after" "$work/first.txt" || fail "no save message"
grep -q "^$pattern_sum " "$work/first.txt" && fail "the save came after the writing"
boot second.txt "$write; $check" --incoming "file:$work/machine.snap"
cat "$work/second.txt"
grep -q "^$pattern_sum " "$work/second.txt" || fail "the restored guest did not read back what it wrote"
image_sum=$(head -c 16777216 "$work/disk.img" | sha256sum | cut -d' ' -f1)
[ "$image_sum" = "$pattern_sum" ] || fail "the image file does not hold the guest's 16 MiB"
echo "linux-scsi-snapshot: ok"
