#!/usr/bin/env bash
# VMBus test: the Debian kernel's hv_vmbus finds the VMBus device in the
# DSDT, makes contact over the SynIC and negotiates the newest version
# (5.3) on a 2-vCPU machine; a second boot caps it with
# hv_vmbus.max_version=0x40001 and gets 4.1 (the pre-5.0 path: contact on
# connection 1, messages on SINT 2). The bus holds the channels every
# machine offers (the shutdown, heartbeat, time sync, KVP and backup
# services and the synthetic SCSI controller), and the driver must not
# complain.
#
#   linux_vmbus_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-vmbus "$guest"

boot() { # boot KERNEL_ARGS VIRIDIAN_OPTIONS...
    local args=$1
    shift
    timeout 300 "$viridian" "$@" --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
        --append "console=ttyS0 panic=-1 $args viridian.modules=hv_vmbus viridian.run=\"dmesg | grep -i vmbus; echo devices: \$(ls /sys/bus/vmbus/devices | wc -l)\"" \
        >"$work/out" 2>&1 </dev/null
    status=$?
    cat "$work/out"
    [ "$status" -eq 0 ] || fail "viridian exited with status $status"
    has "viridian-guest: exit status 0" || fail "the guest's command failed"
    has "modprobe hv_vmbus failed" && fail "hv_vmbus did not load"
    has "^devices: 7" ||
        fail "the bus is not there, or does not hold the six integration services and the SCSI controller alone"
    fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}" "vmbus.*(error|fail|timed out|warn)" \
        "unknown msgtype"
}

boot "" --cpus 2 --stats
has "hv_vmbus: Vmbus version:5\.3" || fail "hv_vmbus did not negotiate 5.3"
# Contact, version response, offers request, all-offers-delivered at least.
messages=$(sed -n 's/^vmbus messages: //p' "$work/out")
[ "${messages:-0}" -ge 4 ] || fail "--stats counted ${messages:-no} VMBus messages"
boot "hv_vmbus.max_version=0x40001" --deterministic
has "hv_vmbus: Vmbus version:4\.1" || fail "hv_vmbus.max_version=0x40001 did not give 4.1"
echo "linux-vmbus: ok"
