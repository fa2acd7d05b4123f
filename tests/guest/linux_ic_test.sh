#!/usr/bin/env bash
# Integration services test: the Debian kernel's hv_utils binds the
# shutdown, heartbeat, time sync and KVP channels every enlightened machine
# offers and negotiates the newest versions (dmesg: Shutdown 3.2, Heartbeat
# 3.0, TimeSync 4.0, and KVP 4.0 once a stand-in for hv_kvp_daemon has
# registered; linux-kvp runs the real daemon and the exchanges). The guest sets its clock to 2000
# before it loads hv_utils; the time sync's SYNC must bring it back to the
# host's time.
# --stats must show the heartbeat answered ("heartbeat: ok"). Then twice
# with --deterministic: the clock comes back to the deterministic start
# (2026-01-01) and the two runs print the same bytes. Last, a host-time
# machine is saved (QMP migrate to a file) and restored 20 s later: its
# clock stood still meanwhile, and the SYNC sent after the restore must put
# it right.
#
#   linux_ic_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-ic "$guest"

# What hv_kvp_daemon does first, by hand: it registers on /dev/vmbus/hv_kvp
# (operation KVP_OP_REGISTER1 = 100 = 'd', one write at least the size of
# struct hv_kvp_msg) and reads the kernel's reply; only then does hv_kvp
# read its channel and answer the host's NEGOTIATE.
kvp_daemon="printf d >/tmp/reg; head -c 16383 /dev/zero >>/tmp/reg; exec 3<>/dev/vmbus/hv_kvp;"
kvp_daemon+=" dd if=/tmp/reg bs=16384 count=1 >&3 2>/dev/null; dd of=/dev/null bs=16384 count=1 <&3 2>/dev/null;"
run="date -s '2000-01-01 00:00:00' >/dev/null; modprobe hv_utils; $kvp_daemon sleep 5; dmesg | grep hv_utils;"
run+=" for d in /sys/bus/vmbus/devices/*; do echo device \$(cat \$d/class_id) \$(basename \$(readlink \$d/driver)); done;"
run+=" ls -1 /dev/vmbus; echo guest-time: \$(date +%s)"

boot() { # boot LOG VIRIDIAN_OPTIONS...
    local log=$1
    shift
    timeout 300 "$viridian" --stats "$@" --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
        --append "console=ttyS0 panic=-1 viridian.modules=hv_vmbus viridian.run=\"$run\"" \
        >"$log" 2>&1 </dev/null
    status=$?
    cp "$log" "$work/out"
    cat "$work/out"
    [ "$status" -eq 0 ] || fail "viridian exited with status $status"
    has "viridian-guest: exit status 0" || fail "the guest's command failed"
    has "hv_utils: Shutdown IC version 3\.2" || fail "the shutdown service did not negotiate 3.2"
    has "hv_utils: Heartbeat IC version 3\.0" || fail "the heartbeat did not negotiate 3.0"
    has "hv_utils: TimeSync IC version 4\.0" || fail "time sync did not negotiate 4.0"
    has "hv_utils: KVP IC version 4\.0" || fail "KVP did not negotiate 4.0 once the daemon registered"
    for class in 0e0b6031-5213-4934-818b-38d90ced39db 57164f39-9115-4e78-ab55-382f3bd5422d \
        9527e630-d0ae-497b-adce-e80ab0175caf a9a0f4e7-5a45-4d96-b827-8a841e8c03e6; do
        has "^device \{$class\} hv_utils" || fail "hv_utils did not bind the channel of class $class"
    done
    has "^hv_kvp" || fail "hv_kvp's device for its daemon is missing"
    has "^heartbeat: ok" || fail "the host did not see the heartbeat"
    answered=$(sed -n 's/^heartbeats answered: //p' "$work/out")
    [ "${answered:-0}" -ge 1 ] || fail "no heartbeat answered"
    synced=$(sed -n 's/^time sync messages: //p' "$work/out")
    [ "${synced:-0}" -ge 1 ] || fail "no time sync message sent"
    fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}" "hv_utils.*(invalid|error|fail|too small)" \
        "vmbus.*(error|fail|timed out|warn)"
    guest_time=$(sed -n 's/^guest-time: \([0-9]*\).*/\1/p' "$work/out")
}

before=$(date +%s)
boot "$work/host.log"
after=$(date +%s)
[ "${guest_time:-0}" -ge "$before" ] && [ "$guest_time" -le "$after" ] ||
    fail "the guest's clock ($guest_time) is not the host's ($before..$after) after the SYNC"

boot "$work/det1.log" --deterministic
# 2026-01-01 00:00:00 UTC plus the virtual minutes of the boot.
[ "$guest_time" -ge 1767225600 ] && [ "$guest_time" -le $((1767225600 + 600)) ] ||
    fail "the deterministic guest's clock ($guest_time) is not the deterministic start's"
boot "$work/det2.log" --deterministic
cmp -s "$work/det1.log" "$work/det2.log" || {
    diff "$work/det1.log" "$work/det2.log" | head -20
    fail "two deterministic runs differ"
}
# Saved and restored with host time.
socket=$work/qmp.sock
pid=
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
saved_run="modprobe hv_utils; sleep 1; echo ic-ready; sleep 20; echo guest-time: \$(date +%s)"
args=(--kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz"
    --append "console=ttyS0 panic=-1 viridian.modules=hv_vmbus viridian.run=\"$saved_run\"")
"$viridian" "${args[@]}" --qmp "unix:$socket,server,wait=off" >"$work/out" 2>&1 </dev/null &
pid=$!
for _ in $(seq 3000); do
    grep -q "^ic-ready" "$work/out" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
grep -q "^ic-ready" "$work/out" || { cat "$work/out"; fail "the guest to save did not get ready"; }
python3 - "$socket" "$work/ic.snap" >"$work/qmp" 2>&1 <<'PY' || { cat "$work/out" "$work/qmp"; fail "the save failed"; }
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(120)
stream = s.makefile('rb')
def execute(command, **arguments):
    s.sendall(json.dumps({'execute': command, 'arguments': arguments}).encode())
    while True:
        message = json.loads(stream.readline())
        if 'return' in message or 'error' in message:
            print(json.dumps(message))
            return message
stream.readline()  # greeting
execute('qmp_capabilities')
execute('migrate', uri='file:' + sys.argv[2])
for _ in range(600):
    if execute('query-migrate')['return'].get('status') in ('completed', 'failed'):
        break
    time.sleep(0.2)
if execute('query-migrate')['return'].get('status') != 'completed':
    sys.exit('the migration to a file did not complete')
execute('quit')
PY
wait $pid
pid=
sleep 20
timeout 300 "$viridian" "${args[@]}" --incoming "file:$work/ic.snap" >"$work/out" 2>&1 </dev/null
status=$?
after=$(date +%s)
cat "$work/out"
[ "$status" -eq 0 ] || fail "the restored machine exited with status $status"
guest_time=$(sed -n 's/^guest-time: \([0-9]*\).*/\1/p' "$work/out")
# Without the SYNC it would be about 20 s behind.
[ "${guest_time:-0}" -ge $((after - 8)) ] && [ "$guest_time" -le "$after" ] ||
    fail "the restored guest's clock ($guest_time) is not the host's ($after) after the SYNC"
echo "linux-ic: ok"
