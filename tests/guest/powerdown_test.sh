#!/usr/bin/env bash
# Guest-boot test: QMP system_powerdown powers the Debian guest off, twice.
# Without the enlightenments it presses the ACPI power button: Linux's
# button driver sees PWRBTN_STS through the SCI and reports a key press,
# which the guest's /init watches for (scripts/guest-init/init). With them
# and hv_utils loaded it goes through the Hyper-V shutdown integration
# service (as Stop-VM does): the kernel's orderly power-off signals /init.
# Checked each time: the QMP replies, the POWERDOWN event, then SHUTDOWN
# (guest-shutdown), "reboot: Power down" on the console and exit status 0;
# before, x-query-integration-services says "not offered", then the
# shutdown service ready at 3.2 and the heartbeat at 3.0.
#
#   powerdown_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built, or was built before
# its initramfs had the power-button modules (run scripts/fetch-guest.sh).
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
require_guest "$guest"
grep -q '/button.ko' "$guest/modules.txt" 2>/dev/null || {
    echo "the guest's initramfs has no power-button driver; run scripts/fetch-guest.sh"
    exit 77
}
fail() {
    echo "powerdown: $*"
    exit 1
}
work=$(mktemp -d)
pid=
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
socket=$work/qmp.sock

powerdown() { # ENLIGHTENMENTS MODULES
start=$(date +%s)
rm -f "$socket"
"$viridian" --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" --enlightenments "$1" \
    --append "console=ttyS0 panic=-1 viridian.modules=$2 viridian.run=\"sleep 600\"" \
    --qmp "unix:$socket,server,wait=off" >"$work/out" 2>&1 </dev/null &
pid=$!
for _ in $(seq 6000); do
    grep -q "viridian-guest: ready" "$work/out" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
grep -q "viridian-guest: ready" "$work/out" || { cat "$work/out"; fail "the guest did not get ready"; }
python3 - "$socket" >"$work/qmp" 2>&1 <<'PY' || { cat "$work/out" "$work/qmp"; fail "the QMP exchange failed"; }
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(120)
stream = s.makefile('rb')
def read():
    line = stream.readline()
    if not line:
        sys.exit('the connection closed')
    message = json.loads(line)
    print(json.dumps(message))
    return message
read()  # greeting
s.sendall(b'{"execute": "qmp_capabilities"}')
read()
s.sendall(b'{"execute": "x-query-integration-services", "id": 0}')
while read().get('id') != 0:
    pass
s.sendall(b'{"execute": "system_powerdown", "id": 1}')
seen = []
while 'SHUTDOWN' not in seen:
    message = read()
    seen.append(message.get('event') or ('reply' if message.get('id') == 1 else 'other'))
    if message.get('event') == 'SHUTDOWN' and message['data'] != {'guest': True, 'reason': 'guest-shutdown'}:
        sys.exit('SHUTDOWN says %s' % message['data'])
if seen[:2] != ['POWERDOWN', 'reply']:
    sys.exit('expected POWERDOWN, then the reply; got %s' % seen)
PY
wait $pid
status=$?
cat "$work/out"
cat "$work/qmp"
echo "powerdown: $(($(date +%s) - start)) s"
[ "$status" -eq 0 ] || fail "viridian exited with status $status, expected 0"
grep -q "reboot: Power down" "$work/out" || fail "Linux did not power off"
}

powerdown off loop
grep -q "viridian-guest: power button pressed" "$work/out" || fail "the guest did not see the power button"
grep -q '{"name": "shutdown", "state": "not offered", "version": null}' "$work/qmp" ||
    fail "x-query-integration-services does not say the services are not offered"
powerdown on hv_vmbus,hv_utils
grep -q "hv_utils: Shutdown IC version 3.2" "$work/out" || fail "hv_utils did not negotiate the shutdown service"
grep -q '{"name": "shutdown", "state": "ready", "version": "3.2"}' "$work/qmp" ||
    fail "x-query-integration-services does not show the shutdown service ready"
grep -qE '\{"name": "heartbeat", "state": "(waiting|ok)", "version": "3.0"\}' "$work/qmp" ||
    fail "x-query-integration-services does not show the heartbeat"
grep -q "Shutdown request received - graceful shutdown initiated" "$work/out" ||
    fail "the shutdown service did not reach the guest"
grep -q "viridian-guest: shutdown requested" "$work/out" || fail "the kernel's orderly power-off did not reach /init"
grep -q "power button pressed" "$work/out" && fail "the power button was pressed although the service was there"
echo "powerdown: ok"
