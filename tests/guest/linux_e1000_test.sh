#!/usr/bin/env bash
# e1000 test: the Debian kernel's e1000 driver finds the 82540EM (--nic user,model=e1000),
# brings eth0 up, gets 10.0.2.15 from slirp's DHCP with busybox udhcpc, then
# moves data both ways through user-mode networking and checks every byte:
#   - an HTTP download from a server on the host's loopback (10.0.2.2),
#   - an HTTP upload to it (the server answers with the body's sha256),
#   - a connection from the host into the guest through hostfwd (the host
#     server fetches a file from the guest's busybox httpd),
#   - QMP set_link down and up (the host server asks for it): the guest
#     sees its carrier go and come back, and downloads again.
# A second boot with restrict=on gets its lease but cannot reach the host.
#
#   linux_e1000_test.sh VIRIDIAN GUEST_DIR [CPUS]
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
cpus=${3:-1}
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-e1000 "$guest"

start_net_helper e1000.0

boot() { # boot NIC COMMAND
    timeout 600 "$viridian" --enlightenments off --cpus "$cpus" --nic "$1" --qmp "unix:$work/qmp.sock,server,wait=off" \
        --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
        --append "console=ttyS0 panic=-1 viridian.modules=e1000 viridian.run=\"$2\"" \
        >"$work/out" 2>&1 </dev/null
    status=$?
    cat "$work/out"
    [ "$status" -eq 0 ] || fail "viridian exited with status $status"
}

boot "user,model=e1000,hostfwd=tcp:127.0.0.1:$hostfwd_port-:8080" "$dhcp; $transfers"
check_net_transfers e1000
has "e1000 0000:00:03.0 eth0: \(PCI:33MHz:32-bit\) 52:54:00:12:34:56" || fail "e1000 did not find the adapter"
has "eth0 NIC Link is Up 1000 Mbps Full Duplex" || fail "the link did not come up"
has "eth0 NIC Link is Down" || fail "e1000 did not report the link down"
has "e1000.*(Detected Tx Unit Hang|EEPROM Checksum Is Not Valid)" && fail "e1000 reported a problem"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}"

# restrict=on: DHCP still answers, the host does not.
boot "user,model=e1000,restrict=on" "$dhcp; wget -q -T 5 -O - http://10.0.2.2:$port/data | sha256sum"
has "lease of 10.0.2.15 obtained" || fail "udhcpc got no lease with restrict=on"
has "^$data_sum " && fail "the guest reached the host with restrict=on"
echo "linux-e1000: ok"
