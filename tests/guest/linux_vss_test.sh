#!/usr/bin/env bash
# The backup service end to end (docs/vmbus.md "Integration services",
# docs/qmp.md): the Debian kernel's hv_utils with Debian's hv_vss_daemon
# (hyperv-daemons, in the default guest) and an ext2 filesystem on a
# synthetic SCSI disk. Before the daemon runs, QMP x-vss-freeze ends in
# "failed" (the kernel answers HV_E_FAIL). With it, x-vss-freeze freezes
# the filesystem (FIFREEZE): a write the guest starts then waits until
# x-vss-thaw, and lands once thawed. A copy of the disk image taken while
# frozen is a backup as Hyper-V makes one: e2fsck finds it clean, and it
# holds what the guest wrote just before the freeze (not synced: the
# freeze flushed it) and not the write that waited for the thaw.
#
#   linux_vss_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built, or was built
# before it carried the daemons.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-vss "$guest"
require_in_guest usr/sbin/hv_vss_daemon
truncate -s 16M "$work/disk.img"

run="modprobe hv_utils; i=0; while [ ! -e /sys/block/sda ] && [ \$i -lt 300 ]; do sleep 0.2; i=\$((i+1)); done;"
run+=" mke2fs -q /dev/sda && mount /dev/sda /mnt && echo vss-no-daemon; sleep 4;"
run+=" hv_vss_daemon -n & sleep 1; echo written-before-the-freeze >/mnt/before; echo vss-ready; sleep 5;"
run+=" t0=\$(date +%s); echo written-while-frozen >/mnt/f; sync; t1=\$(date +%s);"
run+=" echo write-took: \$((t1 - t0)); cat /mnt/f; umount /mnt; sleep 3"
start_guest_with_qmp 300 hv_vmbus,hv_storvsc,sd_mod,ext4 "$run" --drive file="$work/disk.img,format=raw,if=scsi"
qmp_step() { # qmp_step PYTHON: runs it with `qmp` connected and `vss_state()` defined
    python3 - "$(dirname "$0")" "$socket" "$1" >>"$work/qmp" 2>&1 <<'PY' ||
import shutil, sys, time
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[1])
from qmp_client import Qmp
qmp = Qmp(sys.argv[2])

def vss_state():
    for service in qmp.execute('x-query-integration-services')['return']:
        if service['name'] == 'vss':
            return service['state']

def wait_state(wanted):
    deadline = time.time() + 60
    while vss_state() != wanted:
        if time.time() > deadline:
            sys.exit('the backup service never became %s (%s)' % (wanted, vss_state()))
        time.sleep(0.2)

exec(sys.argv[3])
PY
        { cat "$work/out" "$work/qmp"; fail "QMP step failed: $1"; }
}
wait_for "^vss-no-daemon"
qmp_step "
if qmp.execute('x-vss-freeze') != {'return': {}}: sys.exit('x-vss-freeze was refused')
wait_state('failed')"
wait_for "^vss-ready"
qmp_step "
if qmp.execute('x-vss-freeze') != {'return': {}}: sys.exit('x-vss-freeze was refused')
wait_state('frozen')
shutil.copyfile('$work/disk.img', '$work/backup.img')
time.sleep(10)
if qmp.execute('x-vss-thaw') != {'return': {}}: sys.exit('x-vss-thaw was refused')
wait_state('thawed')"
finish_guest_with_qmp
has "viridian-guest: exit status 0" || fail "the guest's command failed"
has "^written-while-frozen" || fail "the write did not land after the thaw"
e2fsck -fn "$work/backup.img" >"$work/fsck" 2>&1 || { cat "$work/fsck"; fail "the backup taken while frozen is not clean"; }
[ "$(debugfs -R 'cat /before' "$work/backup.img" 2>/dev/null)" = written-before-the-freeze ] ||
    fail "the backup does not hold what the guest wrote before the freeze"
debugfs -R 'stat /f' "$work/backup.img" 2>&1 | grep -q "not found" ||
    fail "the backup holds a write made while frozen"
took=$(sed -n 's/^write-took: \([0-9]*\).*/\1/p' "$work/out")
[ "${took:-0}" -ge 3 ] || fail "the write was not held while the filesystem was frozen (took ${took:-?} s)"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}" "hv_utils.*(invalid|error|fail|too small)" \
    "vmbus.*(error|fail|timed out|warn)" "VSS: timeout"
echo "linux-vss: ok"
