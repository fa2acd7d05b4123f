#!/usr/bin/env bash
# Virtual switch test (docs/network.md "Virtual switch"): two viridian
# machines, each booting the Debian kernel, on one private switch
# (--nic switch,name=NAME), one with the synthetic netvsc and one with the
# emulated e1000. Machine A serves a 3 MB file over HTTP and waits for an
# upload; machine B pings A, downloads the file and uploads 2 MB back with
# nc. Both print the sha256 of what they received, which must equal the
# host's; afterwards the switch's directory holds no port of theirs.
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

# The switch lives under $XDG_RUNTIME_DIR: the test's own folder.
export XDG_RUNTIME_DIR=$work
switch=test-$$
served_sum=$(yes viridian-switch-served | head -c 3000000 | sha256sum | cut -d' ' -f1)
upload_sum=$(yes viridian-switch-upload | head -c 2000000 | sha256sum | cut -d' ' -f1)

up="for i in \$(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.2; done; \
echo driver: \$(basename \$(readlink /sys/class/net/eth0/device/driver)); ip link set eth0 up"
machine_a="$up; ip addr add 192.168.76.1/24 dev eth0; mkdir /tmp/www; \
yes viridian-switch-served | head -c 3000000 >/tmp/www/f; httpd -p 8080 -h /tmp/www; \
nc -l -p 9000 >/tmp/got; echo received: \$(sha256sum </tmp/got)"
machine_b="$up; ip addr add 192.168.76.2/24 dev eth0; \
for i in \$(seq 120); do ping -c 1 -W 1 192.168.76.1 >/dev/null && break; done; ping -c 3 192.168.76.1; \
echo downloaded: \$(wget -q -O - http://192.168.76.1:8080/f | sha256sum); \
yes viridian-switch-upload | head -c 2000000 >/tmp/up; nc 192.168.76.1 9000 </tmp/up"

boot() { # NAME MODEL MAC MODULES RUN
    timeout 300 "$viridian" --nic "switch,name=$switch,model=$2,mac=$3" \
        --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
        --append "console=ttyS0 panic=-1 viridian.modules=$4 viridian.run=\"$5\"" \
        >"$work/$1.out" 2>&1 </dev/null
    echo $? >"$work/$1.status"
}
boot a netvsc 52:54:00:00:76:01 hv_vmbus,hv_netvsc "$machine_a" &
boot b e1000 52:54:00:00:76:02 e1000 "$machine_b" &
wait

for m in a b; do
    echo "=== machine $m"
    cat "$work/$m.out"
    [ "$(cat "$work/$m.status")" -eq 0 ] || fail "machine $m exited with status $(cat "$work/$m.status")"
    fail_on_complaints "$work/$m.out" "${DEVICE_COMPLAINTS[@]}"
done
grep -q "driver: hv_netvsc" "$work/a.out" || fail "machine A's eth0 is not hv_netvsc"
grep -q "driver: e1000" "$work/b.out" || fail "machine B's eth0 is not e1000"
grep -q "3 packets transmitted, 3 packets received" "$work/b.out" || fail "B's pings to A were lost"
grep -q "downloaded: $served_sum" "$work/b.out" || fail "B did not download A's file intact"
grep -q "received: $upload_sum" "$work/a.out" || fail "A did not receive B's upload intact"
left=$(find "$work/viridian/switch/$switch" -name 'port-*' 2>/dev/null)
[ -z "$left" ] || fail "ports left on the switch: $left"
echo "linux-switch: ok"
