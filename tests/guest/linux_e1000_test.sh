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
helper="$(dirname "$0")/net_helper.py"
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-e1000 "$guest"

head -c 3000000 /dev/urandom >"$work/data"
data_sum=$(sha256sum <"$work/data" | cut -d' ' -f1)
upload_sum=$(yes viridian-e1000-upload | head -c 2000000 | sha256sum | cut -d' ' -f1)
www_sum=$(yes viridian-e1000-www | head -c 1000000 | sha256sum | cut -d' ' -f1)
hostfwd_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

python3 "$helper" "$work/port" "$work/data" "$hostfwd_port" "$work/qmp.sock" &
helper_pid=$!
trap 'kill $helper_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port" 2>/dev/null) || fail "the host server did not start"

# udhcpc runs a script on "bound" to configure what it leased (busybox has
# no default script in the initramfs). No double quotes: the kernel's
# command line cannot hold them inside viridian.run.
dhcp="echo '[ \$1 = bound ] || exit 0' >/tmp/s; echo 'ifconfig \$interface \$ip netmask \$subnet; route add default gw \$router' >>/tmp/s; chmod +x /tmp/s; ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 -s /tmp/s; ip addr show eth0"

boot() { # boot NIC COMMAND
    timeout 600 "$viridian" --enlightenments off --cpus "$cpus" --nic "$1" --qmp "unix:$work/qmp.sock,server,wait=off" \
        --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
        --append "console=ttyS0 panic=-1 viridian.modules=e1000 viridian.run=\"$2\"" \
        >"$work/out" 2>&1 </dev/null
    status=$?
    cat "$work/out"
    [ "$status" -eq 0 ] || fail "viridian exited with status $status"
}

boot "user,model=e1000,hostfwd=tcp:127.0.0.1:$hostfwd_port-:8080" "$dhcp; \
wget -q -O - http://10.0.2.2:$port/data | sha256sum; \
yes viridian-e1000-upload | head -c 2000000 >/tmp/up; wget -q -O - --post-file /tmp/up http://10.0.2.2:$port/upload; \
mkdir /tmp/www; yes viridian-e1000-www | head -c 1000000 >/tmp/www/f; httpd -p 8080 -h /tmp/www; \
wget -q -O - http://10.0.2.2:$port/hostfwd/f; \
carrier=/sys/class/net/eth0/carrier; wget -q -O - http://10.0.2.2:$port/flap; \
until grep -q 0 \$carrier; do sleep 0.2; done; echo link-went-down; \
until grep -q 1 \$carrier; do sleep 0.2; done; echo link-came-up; \
wget -q -O - http://10.0.2.2:$port/data | sha256sum"
has "viridian-guest: exit status 0" || fail "the guest's command failed"
has "e1000 0000:00:03.0 eth0: \(PCI:33MHz:32-bit\) 52:54:00:12:34:56" || fail "e1000 did not find the adapter"
has "eth0 NIC Link is Up 1000 Mbps Full Duplex" || fail "the link did not come up"
has "lease of 10.0.2.15 obtained" || fail "udhcpc got no lease of 10.0.2.15"
has "inet 10.0.2.15/24" || fail "eth0 was not configured"
has "^$data_sum " || fail "the download from the host was not the host's data"
has "^upload-sha256 $upload_sum 2000000" || fail "the host did not receive the guest's upload"
has "^hostfwd-sha256 $www_sum" || fail "the host did not fetch the guest's file through hostfwd"
has "^link-went-down" && has "^link-came-up" || fail "the guest did not see set_link down and up"
has "eth0 NIC Link is Down" || fail "e1000 did not report the link down"
[ "$(grep -c "^$data_sum " "$work/out")" -eq 2 ] || fail "the download after the link came back failed"
has "e1000.*(Detected Tx Unit Hang|EEPROM Checksum Is Not Valid)" && fail "e1000 reported a problem"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}"

# restrict=on: DHCP still answers, the host does not.
boot "user,model=e1000,restrict=on" "$dhcp; wget -q -T 5 -O - http://10.0.2.2:$port/data | sha256sum"
has "lease of 10.0.2.15 obtained" || fail "udhcpc got no lease with restrict=on"
has "^$data_sum " && fail "the guest reached the host with restrict=on"
echo "linux-e1000: ok"
