#!/usr/bin/env bash
# Tap test (docs/network.md "Tap"): the guest's adapter on a tap interface
# of the host (--nic tap,ifname=NAME,script=no), which the test makes and
# gives 192.168.76.1/24, so the host's own TCP/IP stack is the other end:
# it answers the guest's pings, serves it 3 MB over HTTP and takes a 2 MB
# upload (both checked by sha256), and the host fetches a file from the
# guest's httpd at 192.168.76.2. Once with netvsc on 2 vCPUs (vRSS, and the
# upload as large sends the host cuts: the host's stack checks every
# segment's checksums), once with the e1000 (its TSO).
#
#   linux_tap_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) without the guest, or where this process cannot make a
# tap interface (no /dev/net/tun, no CAP_NET_ADMIN).
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-tap "$guest"
ifname=vrdtap$$
if ! ip tuntap add dev "$ifname" mode tap 2>/dev/null; then
    echo "linux-tap: cannot make a tap interface here (needs /dev/net/tun and CAP_NET_ADMIN)"
    exit 77
fi
trap 'kill $helper_pid 2>/dev/null; ip link del "$ifname" 2>/dev/null; rm -rf "$work"' EXIT
ip addr add 192.168.76.1/24 dev "$ifname" && ip link set "$ifname" up || fail "cannot configure $ifname"
head -c 3000000 /dev/urandom >"$work/data"
data_sum=$(sha256sum <"$work/data" | cut -d' ' -f1)
upload_sum=$(yes viridian-tap-upload | head -c 2000000 | sha256sum | cut -d' ' -f1)
www_sum=$(yes viridian-tap-www | head -c 1000000 | sha256sum | cut -d' ' -f1)
NET_HELPER_ADDRESS=192.168.76.1 python3 "$(dirname "$0")/net_helper.py" "$work/port" "$work/data" 1 none &
helper_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port" 2>/dev/null) || fail "the host server did not start"

run="for i in \$(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.2; done;"
run+=" echo driver: \$(basename \$(readlink /sys/class/net/eth0/device/driver));"
run+=" ip link set eth0 up; ip addr add 192.168.76.2/24 dev eth0; sleep 1;"
run+=" ping -c 3 -w 20 192.168.76.1 | grep -c 'bytes from' | sed 's/^/pings: /';"
run+=" wget -q -O - http://192.168.76.1:$port/data | sha256sum;"
run+=" yes viridian-tap-upload | head -c 2000000 >/tmp/up; wget -q -O - --post-file /tmp/up http://192.168.76.1:$port/upload;"
run+=" mkdir /tmp/www; yes viridian-tap-www | head -c 1000000 >/tmp/www/f; httpd -p 8080 -h /tmp/www;"
run+=" echo www-ready; sleep 15"
for model in netvsc e1000; do
    cpus=1
    [ "$model" = netvsc ] && cpus=2
    start_guest_with_qmp 300 hv_vmbus,hv_netvsc,e1000 "$run" --cpus "$cpus" --stats \
        --nic "tap,ifname=$ifname,script=no,downscript=no,model=$model"
    trap 'kill $pid $helper_pid 2>/dev/null; ip link del "$ifname" 2>/dev/null; rm -rf "$work"' EXIT
    wait_for "^www-ready"
    fetched=$(python3 -c 'import hashlib, urllib.request, sys; print(hashlib.sha256(urllib.request.urlopen(sys.argv[1], timeout=60).read()).hexdigest())' \
        http://192.168.76.2:8080/f 2>&1)
    wait "$pid"
    status=$?
    pid=
    cat "$work/out"
    [ "$status" -eq 0 ] || fail "$model: viridian exited with status $status"
    has "viridian-guest: exit status 0" || fail "$model: the guest's command failed"
    driver=$model
    [ "$model" = netvsc ] && driver=hv_netvsc
    has "^driver: $driver[[:space:]]*$" || fail "$model: $driver did not bind the adapter"
    has "^pings: 3" || fail "$model: the host did not answer three pings"
    has "^$data_sum " || fail "$model: the download from the host was not the host's data"
    has "^upload-sha256 $upload_sum 2000000" || fail "$model: the host did not receive the guest's upload"
    [ "$fetched" = "$www_sum" ] || fail "$model: the host did not fetch the guest's file ($fetched)"
    if [ "$model" = netvsc ]; then
        has "^netvsc rss: on" || fail "netvsc: RSS is off on 2 vCPUs"
        sends=$(sed -n 's/^netvsc large sends: \([0-9]*\)$/\1/p' "$work/out")
        [ "${sends:-0}" -gt 0 ] || fail "netvsc: the upload went without large sends"
    fi
    fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}"
done
echo "linux-tap: ok"
