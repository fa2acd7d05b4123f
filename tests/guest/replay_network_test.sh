#!/usr/bin/env bash
# Record and replay of network input (docs/replay.md): the Debian guest on
# 2 vCPUs gets a DHCP lease from libslirp and downloads a file from a host
# HTTP server while recorded; every frame it received is in the recording.
# The replay has no network (its frames come from the file, the guest's go
# nowhere) and prints the same output byte for byte, the same checksum of
# the download among it, at the same instruction count.
#
#   replay_network_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test replay-network "$guest"
head -c 300000 /dev/urandom >"$work/data"
data_sum=$(sha256sum <"$work/data" | cut -d' ' -f1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break
    sleep 0.1
done

dhcp="echo '[ \$1 = bound ] || exit 0' >/tmp/s; echo 'ifconfig \$interface \$ip netmask \$subnet; route add default gw \$router' >>/tmp/s; chmod +x /tmp/s; ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 -s /tmp/s"
timeout 900 "$viridian" --enlightenments off --cpus 2 --nic user,model=e1000 --stats --record "$work/net.vrr" \
    --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
    --append "console=ttyS0 panic=-1 viridian.modules=e1000 viridian.run=\"$dhcp; wget -q -O - http://10.0.2.2:$port/data | sha256sum\"" \
    >"$work/out" 2>"$work/record.err" </dev/null
status=$?
[ "$status" -eq 0 ] || { cat "$work/out" "$work/record.err"; fail "the recording exited $status"; }
has "^$data_sum " || { cat "$work/out"; fail "the recorded guest did not download the host's data"; }
grep "recorded" "$work/record.err"
kill $server

check_replay 900 "$work/net.vrr" "$work/out" "$work/record.err"
grep "replayed" "$work/replay.err"
echo "replay-network: the download replayed without a network"
