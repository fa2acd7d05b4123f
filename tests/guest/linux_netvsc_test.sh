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
#
#   linux_netvsc_test.sh VIRIDIAN GUEST_DIR [CPUS]
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
cpus=${3:-1}
helper="$(dirname "$0")/net_helper.py"
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-netvsc "$guest"

head -c 3000000 /dev/urandom >"$work/data"
data_sum=$(sha256sum <"$work/data" | cut -d' ' -f1)
upload_sum=$(yes viridian-netvsc-upload | head -c 2000000 | sha256sum | cut -d' ' -f1)
www_sum=$(yes viridian-netvsc-www | head -c 1000000 | sha256sum | cut -d' ' -f1)
hostfwd_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

python3 "$helper" "$work/port" "$work/data" "$hostfwd_port" "$work/qmp.sock" netvsc.0 &
helper_pid=$!
trap 'kill $helper_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port" 2>/dev/null) || fail "the host server did not start"

# As in linux_e1000_test.sh: udhcpc's "bound" script configures the lease.
# hv_netvsc names the interface eth0 once the VMBus device is probed; the
# loop waits for it (the probe runs after the module loads).
dhcp="echo '[ \$1 = bound ] || exit 0' >/tmp/s; echo 'ifconfig \$interface \$ip netmask \$subnet; route add default gw \$router' >>/tmp/s; chmod +x /tmp/s; \
for i in \$(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.2; done; \
echo driver: \$(basename \$(readlink /sys/class/net/eth0/device/driver)); \
ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 -s /tmp/s; ip addr show eth0"

run="$dhcp; \
wget -q -O - http://10.0.2.2:$port/data | sha256sum; \
yes viridian-netvsc-upload | head -c 2000000 >/tmp/up; wget -q -O - --post-file /tmp/up http://10.0.2.2:$port/upload; \
mkdir /tmp/www; yes viridian-netvsc-www | head -c 1000000 >/tmp/www/f; httpd -p 8080 -h /tmp/www; \
wget -q -O - http://10.0.2.2:$port/hostfwd/f; \
carrier=/sys/class/net/eth0/carrier; wget -q -O - http://10.0.2.2:$port/flap; \
until grep -q 0 \$carrier; do sleep 0.2; done; echo link-went-down; \
until grep -q 1 \$carrier; do sleep 0.2; done; echo link-came-up; \
wget -q -O - http://10.0.2.2:$port/data | sha256sum"
timeout 600 "$viridian" --cpus "$cpus" --nic "user,model=netvsc,hostfwd=tcp:127.0.0.1:$hostfwd_port-:8080" \
    --qmp "unix:$work/qmp.sock,server,wait=off" \
    --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
    --append "console=ttyS0 panic=-1 viridian.modules=hv_vmbus,hv_netvsc viridian.run=\"$run\"" \
    >"$work/out" 2>&1 </dev/null
status=$?
cat "$work/out"
[ "$status" -eq 0 ] || fail "viridian exited with status $status"
has "viridian-guest: exit status 0" || fail "the guest's command failed"
has "^driver: hv_netvsc" || fail "hv_netvsc did not bind the adapter"
has "link/ether 52:54:00:12:34:56" || fail "eth0 does not have the adapter's MAC address"
has "lease of 10.0.2.15 obtained" || fail "udhcpc got no lease of 10.0.2.15"
has "inet 10.0.2.15/24" || fail "eth0 was not configured"
has "^$data_sum " || fail "the download from the host was not the host's data"
has "^upload-sha256 $upload_sum 2000000" || fail "the host did not receive the guest's upload"
has "^hostfwd-sha256 $www_sum" || fail "the host did not fetch the guest's file through hostfwd"
has "^link-went-down" && has "^link-came-up" || fail "the guest did not see set_link down and up"
[ "$(grep -c "^$data_sum " "$work/out")" -eq 2 ] || fail "the download after the link came back failed"
has "hv_netvsc.*(rndis|nvsp|Invalid|unable|Unable|fail)" && fail "hv_netvsc reported a problem"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}"
echo "linux-netvsc: ok"
