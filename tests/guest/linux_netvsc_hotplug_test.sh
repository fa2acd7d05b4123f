#!/usr/bin/env bash
# Network adapters added and removed while Linux runs (docs/qmp.md
# "Hot-plugged network adapters"): the Debian guest boots on 2 vCPUs with
# no adapter. QMP netdev_add + device_add put a netvsc adapter on a
# user-mode network; VMBus offers it, hv_netvsc binds it without a reboot,
# the guest leases an address and downloads 3 MB from the host by sha256.
# device_del rescinds the channel (DEVICE_DELETED): the guest's eth0 goes
# and its driver releases the channel. A second adapter with a MAC of its
# own comes next (a new VMBus instance), and the guest downloads through it.
# QMP's refusals are QEMU 7.2's texts for its e1000.
#
#   linux_netvsc_hotplug_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-netvsc-hotplug "$guest"
start_net_helper

# The guest: an adapter comes (wait for eth0), is used, goes, and the next one comes.
wait_for_eth0() { # $1 = !: until there; '': until gone; at most 120 s
    echo "i=0; while [ $1 -e /sys/class/net/eth0 ] && [ \$i -lt 600 ]; do sleep 0.2; i=\$((i+1)); done;"
}
use_eth0="echo driver: \$(basename \$(readlink /sys/class/net/eth0/device/driver)); ip link set eth0 up;\
 udhcpc -i eth0 -n -q -t 10 -s /tmp/s; ip addr show eth0; wget -q -O - http://10.0.2.2:$port/data | sha256sum;"
run="echo '[ \$1 = bound ] || exit 0' >/tmp/s; echo 'ifconfig \$interface \$ip netmask \$subnet; route add default gw \$router' >>/tmp/s; chmod +x /tmp/s;"
run+=" echo hpn-ready; $(wait_for_eth0 '!') $use_eth0 echo hpn-used;"
run+=" $(wait_for_eth0 '') echo hpn-gone; ls /sys/class/net;"
run+=" $(wait_for_eth0 '!') $use_eth0 echo hpn-done"
start_guest_with_qmp 400 hv_vmbus,hv_netvsc "$run" --cpus 2 --stats
trap 'kill $pid $helper_pid 2>/dev/null; rm -rf "$work"' EXIT # both the machine and the host server
wait_for "^hpn-ready"
qmp() { # qmp STEP: runs tests/guest/qmp_nic_hotplug_steps.py's step against the machine
    python3 "$(dirname "$0")/qmp_nic_hotplug_steps.py" "$(dirname "$0")" "$socket" "$1" >>"$work/qmp" 2>&1 ||
        { cat "$work/out" "$work/qmp"; fail "QMP step '$1' failed"; }
}
qmp add-1
wait_for "^hpn-used"
qmp remove-1
wait_for "^hpn-gone"
qmp add-2
wait_for "^hpn-done"
finish_guest_with_qmp
has "viridian-guest: exit status 0" || fail "the guest's command failed"
[ "$(grep -c "^driver: hv_netvsc" "$work/out")" -eq 2 ] || fail "hv_netvsc did not bind both adapters"
has "link/ether 52:54:00:12:34:56" || fail "the first adapter does not have QEMU's first default MAC"
has "link/ether 52:54:00:ab:cd:ef" || fail "the second adapter does not have the MAC device_add gave"
[ "$(grep -c "lease of 10.0.2.15 obtained" "$work/out")" -eq 2 ] || fail "udhcpc did not get a lease on both adapters"
[ "$(grep -c "^$data_sum " "$work/out")" -eq 2 ] || fail "a download through the added adapters was not the host's data"
grep -A1 "^hpn-gone" "$work/out" | grep -q "eth0" && fail "eth0 was still there after device_del"
# The guest's driver let go of each removed channel as the protocol asks
# (CLOSE, RELID_RELEASED): nothing it sent was refused.
has "^vmbus requests refused: 0$" || fail "the VMBus host refused some of the guest's requests"
has "hv_netvsc.*(rndis|nvsp|Invalid|unable|Unable|fail)" && fail "hv_netvsc reported a problem"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}" "vmbus.*(error|fail|timed out|warn)"
echo "linux-netvsc-hotplug: ok"
