#!/usr/bin/env bash
# Disks added and removed while Linux runs (docs/qmp.md "Hot-plugged
# disks"): the Debian guest boots on 2 vCPUs with an empty synthetic SCSI
# controller. QMP blockdev-add + device_add put a raw disk at LUN 2; the
# guest finds it without a reboot (storvsp's ENUMERATE_BUS makes
# hv_storvsc scan), reads the host's data and writes a pattern. device_del
# takes it away (DEVICE_DELETED) and the guest's sd device goes; the image
# holds the pattern. Then a VHDX disk comes at the first free LUN and the
# guest reads it, and the guest reboots: the machine of the reboot has the
# VHDX disk and not the removed one. QMP's refusals are QEMU 7.2's texts.
#
#   linux_scsi_hotplug_test.sh VIRIDIAN VIRIDIAN_IMG GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
img=$2
guest=$3
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-scsi-hotplug "$guest"

truncate -s 16M "$work/a.img"
head -c 1M /dev/urandom >"$work/a-data"
dd if="$work/a-data" of="$work/a.img" conv=notrunc status=none
a_sum=$(sha256sum <"$work/a-data" | cut -d' ' -f1)
truncate -s 8M "$work/b.raw"
head -c 1M /dev/urandom >"$work/b-data"
dd if="$work/b-data" of="$work/b.raw" conv=notrunc status=none
b_sum=$(sha256sum <"$work/b-data" | cut -d' ' -f1)
"$img" convert -f raw -O vhdx "$work/b.raw" "$work/b.vhdx" || fail "viridian-img could not make the VHDX disk"
yes viridian-hotplug | head -c 1048576 >"$work/pattern"
pattern_sum=$(sha256sum <"$work/pattern" | cut -d' ' -f1)

# The guest: give the controller's first scan 5 s; a disk found then means
# this is the boot after the reboot (the VHDX disk), which lists its disks
# and ends. Otherwise: wait for sda, read and write it, wait for it to go,
# wait for the next disk and read it, and reboot.
wait_for_block() { # the guest-side loop: while /sys/block/sda is ($1 = !: is not) there, at most 120 s
    echo "i=0; while [ $1 -e /sys/block/sda ] && [ \$i -lt 600 ]; do sleep 0.2; i=\$((i+1)); done;"
}
run="i=0; while [ ! -e /sys/block/sda ] && [ \$i -lt 25 ]; do sleep 0.2; i=\$((i+1)); done;"
run+=" if [ -e /sys/block/sda ]; then echo hp-second-boot; cat /sys/block/sda/size;"
run+=" dd if=/dev/sda bs=1M count=1 iflag=direct 2>/dev/null | sha256sum; ls /sys/block; exit 0; fi;"
run+=" echo hp-ready; $(wait_for_block '!') echo hp-found; cat /sys/block/sda/size;"
run+=" dd if=/dev/sda bs=1M count=1 iflag=direct 2>/dev/null | sha256sum;"
run+=" yes viridian-hotplug | head -c 1048576 >/tmp/p; dd if=/tmp/p of=/dev/sda bs=1M seek=4 oflag=direct 2>/dev/null; sync; echo hp-written;"
run+=" $(wait_for_block '') echo hp-gone; ls /sys/block;"
run+=" $(wait_for_block '!') echo hp-found-again; cat /sys/block/sda/size;"
run+=" dd if=/dev/sda bs=1M count=1 iflag=direct 2>/dev/null | sha256sum; echo hp-rebooting; reboot -f"
start_guest_with_qmp 400 hv_vmbus,hv_storvsc,sd_mod "$run" --cpus 2
wait_for "^hp-ready"
qmp() { # qmp STEP: runs tests/guest/qmp_hotplug_steps.py's step against the machine
    python3 "$(dirname "$0")/qmp_hotplug_steps.py" "$(dirname "$0")" "$socket" "$work" "$1" >>"$work/qmp" 2>&1 ||
        { cat "$work/out" "$work/qmp"; fail "QMP step '$1' failed"; }
}
qmp add-a
wait_for "^hp-written"
qmp remove-a
wait_for "^hp-gone"
qmp add-b
wait_for "^hp-second-boot"
finish_guest_with_qmp
has "^$a_sum " || fail "the guest did not read the host's data on the hot-added disk"
has "^32768\s*$" || fail "the hot-added raw disk is not 32768 sectors"
image_sum=$(dd if="$work/a.img" bs=1M skip=4 count=1 status=none | sha256sum | cut -d' ' -f1)
[ "$image_sum" = "$pattern_sum" ] || fail "the removed disk's image does not hold the guest's pattern"
[ "$(grep -c "^$b_sum " "$work/out")" -eq 2 ] || fail "the VHDX disk was not read in both boots"
has "sd [0-9]+:0:0:2: \[sda\]" || fail "the first disk was not at LUN 2"
has "sd [0-9]+:0:0:0: \[sda\]" || fail "the second disk was not at the first free LUN (0)"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}" "storvsc.*(timed out)" \
    "vmbus.*(error|fail|timed out|warn)" "Buffer I/O"
echo "linux-scsi-hotplug: ok"
