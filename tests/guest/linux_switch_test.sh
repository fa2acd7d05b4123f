#!/usr/bin/env bash
# Virtual switch test (docs/network.md "Virtual switch"): two viridian
# machines, each booting the Debian kernel, on one switch
# (--nic switch,name=NAME), one with the synthetic netvsc and one with the
# emulated e1000. Machine A asks for an internal switch, so its process also
# plugs the switch's host port (user-mode networking) in. Machine A serves a
# 3 MB file over HTTP and waits for an upload; machine B leases an address
# from the host port's DHCP and downloads a file from a server on the host's
# loopback through 10.0.2.2, then pings A, downloads A's file, runs iperf3
# against A for 3 s (Debian's iperf3 in the default guest) and uploads 2 MB
# back with nc. Everything received is checked by sha256; afterwards the
# switch's folder holds no port.
#
#   linux_switch_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-switch "$guest"
require_in_guest usr/bin/iperf3

# The switch lives under $XDG_RUNTIME_DIR: the test's own folder.
export XDG_RUNTIME_DIR=$work
switch=test-$$
served_sum=$(yes viridian-switch-served | head -c 3000000 | sha256sum | cut -d' ' -f1)
upload_sum=$(yes viridian-switch-upload | head -c 2000000 | sha256sum | cut -d' ' -f1)

# The host's server, reached through the internal switch's host port.
mkdir "$work/www"
head -c 1000000 /dev/urandom >"$work/www/host-file"
host_sum=$(sha256sum <"$work/www/host-file" | cut -d' ' -f1)
host_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$host_port" >/dev/null 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; rm -rf "$work"' EXIT

up="for i in \$(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.2; done; \
echo driver: \$(basename \$(readlink /sys/class/net/eth0/device/driver)); ip link set eth0 up"
machine_a="$up; ip addr add 192.168.76.1/24 dev eth0; mkdir /tmp/www; \
yes viridian-switch-served | head -c 3000000 >/tmp/www/f; httpd -p 8080 -h /tmp/www; \
iperf3 -s -1 -D; nc -l -p 9000 >/tmp/got; echo received: \$(sha256sum </tmp/got)"
lease="echo '[ \$1 = bound ] || exit 0' >/tmp/s; echo 'ifconfig \$interface \$ip netmask \$subnet' >>/tmp/s; chmod +x /tmp/s; \
udhcpc -i eth0 -n -q -t 10 -s /tmp/s"
machine_b="$up; $lease; echo from-host: \$(wget -q -O - http://10.0.2.2:$host_port/host-file | sha256sum); \
ip addr add 192.168.76.2/24 dev eth0; \
for i in \$(seq 120); do ping -c 1 -W 1 192.168.76.1 >/dev/null && break; done; ping -c 3 192.168.76.1; \
echo downloaded: \$(wget -q -O - http://192.168.76.1:8080/f | sha256sum); \
iperf3 -c 192.168.76.1 -t 3 -f m | grep -E 'sender|receiver' | sed 's/^/iperf3: /'; \
yes viridian-switch-upload | head -c 2000000 >/tmp/up; nc 192.168.76.1 9000 </tmp/up"

boot() { # NAME NIC MODULES RUN
    timeout 300 "$viridian" --nic "switch,name=$switch,$2" \
        --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
        --append "console=ttyS0 panic=-1 viridian.modules=$3 viridian.run=\"$4\"" \
        >"$work/$1.out" 2>&1 </dev/null
    echo $? >"$work/$1.status"
}
boot a type=internal,model=netvsc,mac=52:54:00:00:76:01 hv_vmbus,hv_netvsc "$machine_a" &
boot_a=$!
boot b model=e1000,mac=52:54:00:00:76:02 e1000 "$machine_b" &
wait $boot_a $!

for m in a b; do
    echo "=== machine $m"
    cat "$work/$m.out"
    [ "$(cat "$work/$m.status")" -eq 0 ] || fail "machine $m exited with status $(cat "$work/$m.status")"
    fail_on_complaints "$work/$m.out" "${DEVICE_COMPLAINTS[@]}"
done
grep -q "driver: hv_netvsc" "$work/a.out" || fail "machine A's eth0 is not hv_netvsc"
grep -q "driver: e1000" "$work/b.out" || fail "machine B's eth0 is not e1000"
grep -q "from-host: $host_sum" "$work/b.out" || fail "B did not download the host's file through the host port"
grep -q "3 packets transmitted, 3 packets received" "$work/b.out" || fail "B's pings to A were lost"
grep -q "downloaded: $served_sum" "$work/b.out" || fail "B did not download A's file intact"
grep -q "received: $upload_sum" "$work/a.out" || fail "A did not receive B's upload intact"
# iperf3 (Debian's, in the default guest) from B to A: its two summary lines.
grep -qE "^iperf3: .* [0-9.]+ Mbits/sec .*receiver" "$work/b.out" || fail "iperf3 from B to A did not complete"
left=$(find "$work/viridian/switch/$switch" -name 'port-*' 2>/dev/null)
[ -z "$left" ] || fail "ports left on the switch: $left"
echo "linux-switch: ok"
