#!/usr/bin/env bash
# Guest file copy end to end (docs/vmbus.md "Integration services",
# docs/qmp.md "Copying a file into the guest"): the Debian kernel's hv_utils
# with Debian's hv_fcopy_daemon (hyperv-daemons, in the default guest).
# Before the daemon runs, QMP x-guest-file-copy ends in "failed" (the
# kernel answers HV_E_FAIL). With it, a host file of 1 MiB and a bit lands
# in a directory the copy creates, byte for byte; a second copy without
# overwrite is refused as existing and leaves the file alone; a cancelled
# copy leaves no file; an overwrite goes through.
#
#   linux_fcopy_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built, or was built
# before it carried the daemons.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-fcopy "$guest"
require_in_guest usr/sbin/hv_fcopy_daemon
head -c 1048699 /dev/urandom >"$work/data.bin"
head -c 3000000 /dev/urandom >"$work/big.bin"
echo "overwritten" >"$work/small.txt"
want=$(sha256sum <"$work/data.bin" | cut -d' ' -f1)

run="modprobe hv_utils; echo fcopy-no-daemon; sleep 4;"
run+=" hv_fcopy_daemon -n & sleep 1; echo fcopy-ready;"
run+=" while [ ! -e /tmp/in/done ]; do sleep 0.2; done;"
run+=" echo data: \$(sha256sum </tmp/in/sub/data.bin); echo cancelled: \$([ -e /tmp/in/big.bin ] && echo present || echo gone);"
run+=" echo small: \$(cat /tmp/in/small.txt)"
start_guest_with_qmp 300 hv_vmbus "$run"
qmp_step() { # qmp_step PYTHON: runs it with `qmp`, `copy()` and `wait_copy()` defined
    python3 - "$(dirname "$0")" "$socket" "$work" "$1" >>"$work/qmp" 2>&1 <<'PY' ||
import sys, time
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[1])
from qmp_client import Qmp
qmp = Qmp(sys.argv[2])
work = sys.argv[3]

def copy(source, destination, **flags):
    args = {'source': work + '/' + source, 'destination': destination}
    args.update(flags)
    reply = qmp.execute('x-guest-file-copy', **args)
    if reply != {'return': {}}:
        sys.exit('x-guest-file-copy was refused: %s' % reply)

def wait_copy(*ends):
    deadline = time.time() + 120
    while True:
        status = qmp.execute('x-query-guest-file-copy')['return']
        if status['state'] in ends:
            print(status)
            return status
        if status['state'] in ('completed', 'failed', 'cancelled') or time.time() > deadline:
            sys.exit('the copy ended %s, not %s' % (status, ends))
        time.sleep(0.1)

exec(sys.argv[4])
PY
        { cat "$work/out" "$work/qmp"; fail "QMP step failed: $1"; }
}
wait_for "^fcopy-no-daemon"
qmp_step "
status = (copy('data.bin', '/tmp/in/sub/data.bin', **{'create-full-path': True}), wait_copy('failed'))[1]
if 'hv_fcopy_daemon' not in status['error']: sys.exit('no word of the daemon: %s' % status)
reply = qmp.execute('x-guest-file-copy', source=work + '/data.bin', destination='relative')
if 'absolute' not in reply.get('error', {}).get('desc', ''): sys.exit('a relative path was taken: %s' % reply)
reply = qmp.execute('x-guest-file-copy', source=work + '/missing', destination='/tmp/x')
if 'missing' not in reply.get('error', {}).get('desc', ''): sys.exit('a missing file was taken: %s' % reply)"
wait_for "^fcopy-ready"
qmp_step "
copy('data.bin', '/tmp/in/sub/data.bin', **{'create-full-path': True})
status = wait_copy('completed')
if status['written'] != 1048699 or status['size'] != 1048699: sys.exit('wrong counts: %s' % status)
copy('small.txt', '/tmp/in/sub/data.bin')
status = wait_copy('failed')
if 'exists' not in status['error']: sys.exit('not refused as existing: %s' % status)
copy('big.bin', '/tmp/in/big.bin')
reply = qmp.execute('x-guest-file-copy-cancel')
if reply != {'return': {}}: sys.exit('the cancel was refused: %s' % reply)
wait_copy('cancelled')
if 'error' not in qmp.execute('x-guest-file-copy-cancel'): sys.exit('a second cancel was taken')
copy('small.txt', '/tmp/in/small.txt', overwrite=True)
wait_copy('completed')
copy('small.txt', '/tmp/in/small.txt', overwrite=True)
wait_copy('completed')
copy('small.txt', '/tmp/in/done')
wait_copy('completed')"
finish_guest_with_qmp
has "viridian-guest: exit status 0" || fail "the guest's command failed"
has "^data: $want" || fail "the copied file's sha256 is not the host's ($want)"
has "^cancelled: gone" || fail "the cancelled copy left its file in the guest"
has "^small: overwritten" || fail "the overwrite did not land"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}" "hv_utils.*(invalid|error|fail|too small)" \
    "vmbus.*(error|fail|timed out|warn)" "FCP"
echo "linux-fcopy: ok"
