#!/usr/bin/env bash
# Synthetic SCSI test: the Debian kernel's hv_storvsc finds a raw disk on
# viridian's storvsp over VMBus (--drive ...,if=scsi) on 2 vCPUs, reads
# what the host put there, writes a pattern with O_DIRECT (GPA-direct
# pages), reads it back and powers off; the host then finds the pattern in
# the image file. With 2 vCPUs hv_storvsc asks for a sub-channel
# (CREATE_SUB_CHANNELS) and opens it: reads pinned to each CPU, then the
# guest's own per-channel counters must show both channels carried
# requests (events) and completions (interrupts). A second boot,
# --deterministic, with a second disk at LUN 3, reads the pattern again
# and sees both disks.
#
#   linux_scsi_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-scsi "$guest"

truncate -s 32M "$work/disk.img"
truncate -s 8M "$work/second.img"
head -c 1M /dev/urandom >"$work/host-data"
dd if="$work/host-data" of="$work/disk.img" bs=1M seek=1 conv=notrunc status=none
host_sum=$(sha256sum <"$work/host-data" | cut -d' ' -f1)
yes viridian-scsi-pattern | head -c 2097152 >"$work/pattern"
pattern_sum=$(sha256sum <"$work/pattern" | cut -d' ' -f1)

controller=f8b3781b-1e82-4818-a1c3-63d806ec15bb # storvsp's instance GUID (platform/machine/machine.cpp)

boot() { # boot COMMAND [OPTIONS...]
    local run=$1
    shift
    timeout 300 "$viridian" --drive file="$work/disk.img,format=raw,if=scsi" "$@" \
        --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
        --append "console=ttyS0 panic=-1 viridian.modules=hv_vmbus,hv_storvsc,sd_mod viridian.run=\"$run\"" \
        >"$work/out" 2>&1 </dev/null
    status=$?
    cat "$work/out"
    [ "$status" -eq 0 ] || fail "viridian exited with status $status"
    has "viridian-guest: exit status 0" || fail "the guest's command failed"
    fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}" "storvsc.*(error|fail|timed out)" \
        "vmbus.*(error|fail|timed out|warn)" "I/O error" "Buffer I/O"
}

boot "cat /sys/block/sda/size; dd if=/dev/sda bs=1M skip=1 count=1 iflag=direct | sha256sum; yes viridian-scsi-pattern | head -c 2097152 >/tmp/p; dd if=/tmp/p of=/dev/sda bs=1M seek=4 oflag=direct; sync; dd if=/dev/sda bs=1M skip=4 count=2 iflag=direct | sha256sum; taskset -c 0 dd if=/dev/sda of=/dev/null bs=4k count=512 iflag=direct; taskset -c 1 dd if=/dev/sda of=/dev/null bs=4k count=512 iflag=direct; cd /sys/bus/vmbus/devices/$controller/channels; grep -H . */events */interrupts */subchannel_id" --cpus 2
has "scsi host[0-9]+: storvsc_host_t" || fail "hv_storvsc did not register its host"
has "sd [0-9]+:0:0:0: \[sda\]" || fail "no disk at LUN 0"
has "^65536\s*$" || fail "/sys/block/sda/size is not 65536 sectors"
has "^$host_sum " || fail "the guest did not read the host's data"
[ "$(grep -c "^$pattern_sum " "$work/out")" -eq 1 ] || fail "the guest did not read its pattern back"
image_sum=$(dd if="$work/disk.img" bs=1M skip=4 count=2 status=none | sha256sum | cut -d' ' -f1)
[ "$image_sum" = "$pattern_sum" ] || fail "the image file does not hold the guest's pattern"
# The guest's counters (drivers/hv/vmbus_drv.c): events are its signals to
# the host, interrupts the host's to it; one line per channel each.
[ "$(grep -cE '^[0-9]+/subchannel_id:' "$work/out")" -eq 2 ] ||
    fail "hv_storvsc did not open exactly one sub-channel beside the primary"
grep -qE '^[0-9]+/subchannel_id:1\s*$' "$work/out" || fail "no channel is sub-channel 1"
[ "$(grep -cE '^[0-9]+/events:[1-9]' "$work/out")" -eq 2 ] ||
    fail "a channel carried no requests (events 0)"
[ "$(grep -cE '^[0-9]+/interrupts:[1-9]' "$work/out")" -eq 2 ] ||
    fail "a channel carried no completions (interrupts 0)"

boot "dd if=/dev/sda bs=1M skip=4 count=2 iflag=direct | sha256sum; cat /sys/block/sdb/size" \
    --deterministic --drive file="$work/second.img,format=raw,if=scsi,index=3"
has "^$pattern_sum " || fail "the second (deterministic) boot did not read the pattern back"
has "sd [0-9]+:0:0:3: \[sdb\]" || fail "no disk at LUN 3"
has "^16384\s*$" || fail "/sys/block/sdb/size is not 16384 sectors"
echo "linux-scsi: ok"
