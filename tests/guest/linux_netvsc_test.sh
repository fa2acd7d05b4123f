#!/usr/bin/env bash
# netvsc test: the Debian kernel's hv_netvsc binds the synthetic network
# adapter netvsp offers on VMBus (--nic user,model=netvsc), negotiates NVSP and
# RNDIS, brings eth0 up, gets 10.0.2.15 from slirp's DHCP with busybox
# udhcpc, then moves data both ways through user-mode networking and checks
# every byte:
#   - an HTTP download of 3 MB from a server on the host's loopback (10.0.2.2),
#   - an HTTP upload of 2 MB to it (the server answers with the body's sha256),
#   - a connection from the host into the guest through hostfwd,
#   - QMP set_link down and up (the host server asks for it): the guest sees
#     its carrier go and come back (RNDIS media indications), and downloads
#     again.
# On 2 vCPUs the adapter offers a vRSS sub-channel: the guest opens it (its
# eth0 has two receive queues), turns RSS on, and --stats counts frames on
# both channels.
#
#   linux_netvsc_test.sh VIRIDIAN GUEST_DIR [CPUS]
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
cpus=${3:-1}
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-netvsc "$guest"

start_net_helper netvsc.0

timeout 600 "$viridian" --cpus "$cpus" --stats --nic "user,model=netvsc,hostfwd=tcp:127.0.0.1:$hostfwd_port-:8080" \
    --qmp "unix:$work/qmp.sock,server,wait=off" \
    --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
    --append "console=ttyS0 panic=-1 viridian.modules=hv_vmbus,hv_netvsc viridian.run=\"$dhcp; $transfers; echo queues: \$(ls /sys/class/net/eth0/queues)\"" \
    >"$work/out" 2>&1 </dev/null
status=$?
cat "$work/out"
[ "$status" -eq 0 ] || fail "viridian exited with status $status"
check_net_transfers hv_netvsc
# The uploads go as large sends the host cuts (LSO v2).
sends=$(sed -n 's/^netvsc large sends: \([0-9]*\)$/\1/p' "$work/out")
[ "${sends:-0}" -gt 0 ] || fail "the guest made no large send"
if [ "$cpus" -ge 2 ]; then
    has "^queues: rx-0 rx-1 tx-0 tx-1" || fail "the guest did not open the vRSS sub-channel"
    has "^netvsc rss: on" || fail "the guest did not turn RSS on"
    has "^netvsc frames by channel: [0-9]* [0-9]*\$" || fail "--stats does not show two channels"
else
    has "^queues: rx-0 tx-0" || fail "one channel, one queue each way"
    has "^netvsc rss: off" || fail "RSS on without sub-channels"
fi
has "hv_netvsc.*(rndis|nvsp|Invalid|unable|Unable|fail)" && fail "hv_netvsc reported a problem"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}"
echo "linux-netvsc: ok"
