# tests/guest/common.sh — sourced by the guest-boot tests. The sourcing
# script defines fail MESSAGE (print and exit 1), or begin_guest_test below
# defines it.

# require_guest DIR: exits 77 (skipped) when the default guest is not built.
require_guest() {
    [ -r "$1/vmlinuz" ] && [ -r "$1/initramfs.cpio.gz" ] || {
        echo "guest not built ($1); run scripts/fetch-guest.sh"
        exit 77
    }
}

# Boot-log complaints that would name a problem with our devices or CPU
# model; each test adds the ones its configuration rules out too.
DEVICE_COMPLAINTS=("TSC calibration failed" "IRQ 0 check failed" "APIC timer disabled"
    "clocksource.*unstable" "ACPI Error" "ACPI BIOS Error" "unchecked MSR access"
    "unknown CPU" "may be unstable" "Unable to init MCE")

# fail_on_complaints LOG PATTERN...: fails, showing the lines, if LOG
# matches any PATTERN (case-insensitive extended regular expressions).
fail_on_complaints() {
    local log=$1 bad
    shift
    for bad in "$@"; do
        if grep -qiE "$bad" "$log"; then
            grep -iE "$bad" "$log" | head -3
            fail "boot log contains '$bad'"
        fi
    done
}

# begin_guest_test NAME GUEST_DIR: what most guest tests start with. Skips
# (77) without the guest; makes $work, a folder removed at exit; defines
# fail MESSAGE ("NAME: MESSAGE", exit 1) and has PATTERN (an extended
# regular expression found in $work/out, where the tests keep a boot's log).
begin_guest_test() {
    test_name=$1
    require_guest "$2"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    fail() {
        echo "$test_name: $*"
        exit 1
    }
    has() { grep -qE -- "$1" "$work/out"; }
}

# check_replay SECONDS RECORDING RECORD_OUT RECORD_ERR [ARG...]: replays
# RECORDING with $viridian (--stats and ARG, no input, at most SECONDS) into
# $work/replay.out and $work/replay.err, and fails unless the replay exits
# 0, prints RECORD_OUT (the recorded run's serial output) byte for byte,
# ends at the instruction count in RECORD_ERR (the recorded run's --stats)
# and says it replayed to the recording's end (docs/replay.md). Sets
# replayed, the "instructions: N" line.
check_replay() {
    local seconds=$1 recording=$2 record_out=$3 record_err=$4 status recorded
    shift 4
    local what="the replay${*:+ ($*)}"
    timeout "$seconds" "$viridian" --replay "$recording" --stats "$@" >"$work/replay.out" 2>"$work/replay.err" </dev/null
    status=$?
    [ "$status" -eq 0 ] || { cat "$work/replay.err"; fail "$what exited $status"; }
    cmp -s "$record_out" "$work/replay.out" || {
        diff "$record_out" "$work/replay.out" | head -20
        fail "$what printed other serial output"
    }
    recorded=$(grep '^instructions:' "$record_err")
    replayed=$(grep '^instructions:' "$work/replay.err")
    [ -n "$recorded" ] && [ "$replayed" = "$recorded" ] || fail "$what ended at $replayed, the recording at $recorded"
    grep -q "replayed to the recording's end" "$work/replay.err" || fail "$what did not say it reached the end"
}

# start_net_helper [NIC_NAME]: the host side of the network tests
# (net_helper.py, set_link by NIC_NAME) on the loopback, and what they
# check. Sets port and hostfwd_port; data_sum, upload_sum and www_sum (the
# sha256 of the 3 MB download, the 2 MB upload and the 1 MB hostfwd file);
# dhcp, the guest's commands to wait for eth0, print its driver, bring it
# up and lease an address with busybox udhcpc (whose "bound" script
# configures it: the initramfs has none); and transfers, the guest's
# commands that move the data and flap the link. No double quotes: the
# kernel's command line cannot hold them inside viridian.run.
start_net_helper() {
    head -c 3000000 /dev/urandom >"$work/data"
    data_sum=$(sha256sum <"$work/data" | cut -d' ' -f1)
    upload_sum=$(yes viridian-net-upload | head -c 2000000 | sha256sum | cut -d' ' -f1)
    www_sum=$(yes viridian-net-www | head -c 1000000 | sha256sum | cut -d' ' -f1)
    hostfwd_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    python3 "$(dirname "${BASH_SOURCE[0]}")/net_helper.py" "$work/port" "$work/data" "$hostfwd_port" \
        "$work/qmp.sock" "${1:-e1000.0}" &
    helper_pid=$!
    trap 'kill $helper_pid 2>/dev/null; rm -rf "$work"' EXIT
    for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
    port=$(cat "$work/port" 2>/dev/null) || fail "the host server did not start"
    dhcp="echo '[ \$1 = bound ] || exit 0' >/tmp/s; echo 'ifconfig \$interface \$ip netmask \$subnet; route add default gw \$router' >>/tmp/s; chmod +x /tmp/s; \
for i in \$(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.2; done; \
echo driver: \$(basename \$(readlink /sys/class/net/eth0/device/driver)); \
ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 -s /tmp/s; ip addr show eth0"
    transfers="wget -q -O - http://10.0.2.2:$port/data | sha256sum; \
yes viridian-net-upload | head -c 2000000 >/tmp/up; wget -q -O - --post-file /tmp/up http://10.0.2.2:$port/upload; \
mkdir /tmp/www; yes viridian-net-www | head -c 1000000 >/tmp/www/f; httpd -p 8080 -h /tmp/www; \
wget -q -O - http://10.0.2.2:$port/hostfwd/f; wget -q -O - http://10.0.2.2:$port/rx-filter; \
carrier=/sys/class/net/eth0/carrier; wget -q -O - http://10.0.2.2:$port/flap; \
until grep -q 0 \$carrier; do sleep 0.2; done; echo link-went-down; \
until grep -q 1 \$carrier; do sleep 0.2; done; echo link-came-up; \
wget -q -O - http://10.0.2.2:$port/data | sha256sum"
}

# check_net_transfers DRIVER: what start_net_helper's commands must have
# printed in $work/out, with eth0 bound by DRIVER.
check_net_transfers() {
    has "viridian-guest: exit status 0" || fail "the guest's command failed"
    has "^driver: $1[[:space:]]*$" || fail "$1 did not bind the adapter"
    has "link/ether 52:54:00:12:34:56" || fail "eth0 does not have the adapter's MAC address"
    has "lease of 10.0.2.15 obtained" || fail "udhcpc got no lease of 10.0.2.15"
    has "inet 10.0.2.15/24" || fail "eth0 was not configured"
    has "^$data_sum " || fail "the download from the host was not the host's data"
    has "^upload-sha256 $upload_sum 2000000" || fail "the host did not receive the guest's upload"
    has "^hostfwd-sha256 $www_sum" || fail "the host did not fetch the guest's file through hostfwd"
    # The receive filter the guest's driver programmed: its own address and
    # broadcasts (ARP, DHCP), as QMP query-rx-filter reports it.
    local filter property
    filter=$(grep '^rx-filter ' "$work/out")
    for property in '"name": "[a-z0-9]+\.0"' '"promiscuous": false' '"unicast": "normal"' \
        '"broadcast-allowed": true' '"main-mac": "52:54:00:12:34:56"'; do
        grep -qE -- "$property" <<<"$filter" ||
            fail "query-rx-filter does not show the filter the guest's driver set ($property): $filter"
    done
    has "^link-went-down" && has "^link-came-up" || fail "the guest did not see set_link down and up"
    [ "$(grep -c "^$data_sum " "$work/out")" -eq 2 ] || fail "the download after the link came back failed"
}

# wait_for PATTERN: for a machine running in the background (its process
# $pid, its output in $work/out), until the guest prints a line matching
# PATTERN; fails, showing the output, when it ends first or after 300 s.
wait_for() {
    for _ in $(seq 3000); do
        grep -q "$1" "$work/out" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$work/out"
    fail "the guest did not print '$1'"
}

# start_guest_with_qmp TIMEOUT MODULES RUN [OPTIONS...]: starts $viridian
# on the default guest in $guest in the background, with OPTIONS, a QMP
# socket at $socket, the modules and the command for the guest's init, and
# its output in $work/out; $pid is its process, killed at exit.
start_guest_with_qmp() {
    local limit=$1 modules=$2 run=$3
    shift 3
    socket=$work/qmp.sock
    trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
    timeout "$limit" "$viridian" "$@" --qmp "unix:$socket,server,wait=off" \
        --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
        --append "console=ttyS0 panic=-1 viridian.modules=$modules viridian.run=\"$run\"" \
        >"$work/out" 2>&1 </dev/null &
    pid=$!
}

# finish_guest_with_qmp: waits for the machine start_guest_with_qmp began,
# shows its output and the QMP conversation in $work/qmp, and fails unless
# it exited with status 0.
finish_guest_with_qmp() {
    local status
    wait "$pid"
    status=$?
    pid=
    cat "$work/out"
    echo "--- QMP"
    cat "$work/qmp"
    [ "$status" -eq 0 ] || fail "viridian exited with status $status"
}

# require_in_guest PATH: after begin_guest_test, skips (77) when the default
# guest's initramfs has no PATH (a guest built by an older fetch-guest.sh).
require_in_guest() {
    zcat "$guest/initramfs.cpio.gz" | cpio -t 2>/dev/null | grep -qx "$1" || {
        echo "$test_name: the guest has no /$1 (run scripts/fetch-guest.sh again)"
        exit 77
    }
}
