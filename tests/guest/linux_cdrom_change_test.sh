#!/usr/bin/env bash
# The disc changes under a running Linux (docs/qmp.md "Block devices"): the
# Debian guest mounts disc A on the ATAPI drive, so sr_mod locks the tray,
# and QMP eject is refused with QEMU's text; once the guest has unmounted,
# eject opens the tray and blockdev-change-medium puts disc B in. The guest
# sees the new disc (its size, its bytes, a file on it) without a reboot,
# and every tray move comes as DEVICE_TRAY_MOVED, also the guest's own
# (Linux closes an open tray when a program opens the drive). Then the same
# change recorded (--record) and replayed: the same serial output and
# instruction count.
#
#   linux_cdrom_change_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built or xorriso is missing.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test linux-cdrom-change "$guest"
command -v xorriso >/dev/null || { echo "linux-cdrom-change: no xorriso (scripts/setup.sh)"; exit 77; }

for disc in a b; do
    mkdir "$work/$disc"
    head -c $([ $disc = a ] && echo 512K || echo 1200K) /dev/urandom >"$work/$disc/data.bin"
    xorriso -as mkisofs -quiet -o "$work/$disc.iso" -V "DISC_${disc^^}" "$work/$disc" ||
        fail "xorriso could not make disc $disc"
done
b_sectors=$(($(stat -c %s "$work/b.iso") / 512))
a_sum=$(sha256sum <"$work/a/data.bin" | cut -d' ' -f1)
b_sum=$(sha256sum <"$work/b/data.bin" | cut -d' ' -f1)
b_iso_sum=$(sha256sum <"$work/b.iso" | cut -d' ' -f1)
[ "$b_sectors" -ne $(($(stat -c %s "$work/a.iso") / 512)) ] || fail "the two discs are the same size"

# The guest holds disc A mounted (the tray locked) until the host has tried
# to eject it, then lets go and opens the drive now and then (which
# revalidates the disc) until it is B's size.
run="mount -t iso9660 -o ro /dev/sr0 /mnt && sha256sum /mnt/data.bin; echo cd-locked;"
run+=" sleep 10;"
run+=" umount /mnt; echo cd-unlocked; i=0; while [ \$i -lt 600 ]; do"
run+=" dd if=/dev/sr0 of=/dev/null bs=2k count=1 2>/dev/null; [ \$(cat /sys/block/sr0/size) = $b_sectors ] && break;"
run+=" sleep 0.5; i=\$((i+1)); done; echo size: \$(cat /sys/block/sr0/size);"
run+=" dd if=/dev/sr0 bs=64k 2>/dev/null | sha256sum; mount -t iso9660 -o ro /dev/sr0 /mnt && sha256sum /mnt/data.bin; echo cd-changed;"
# Then the host opens the tray, and the guest's next open of the drive
# closes it (the cdrom driver's autoclose: START STOP UNIT), which QMP hears of.
run+=" umount /mnt; echo cd-wait-open; sleep 5; dd if=/dev/sr0 bs=64k 2>/dev/null | sha256sum; echo cd-reopened"
start_guest_with_qmp 300 ata_piix,sr_mod,isofs "$run" --enlightenments off \
    --drive file="$work/a.iso,media=cdrom,index=2"
wait_for "^cd-locked"
python3 - "$(dirname "$0")" "$socket" "$work" >"$work/qmp" 2>&1 <<'PY' || { cat "$work/out" "$work/qmp"; fail "QMP failed"; }
import sys, time
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[1])
from qmp_client import Qmp
qmp = Qmp(sys.argv[2])
execute = qmp.execute
work = sys.argv[3]
def printed(line):
    """Whether the guest printed `line` (the kernel's command line names it too)."""
    with open(work + '/out', errors='replace') as f:
        return any(l.strip() == line for l in f)
refused = execute('eject', device='ide1-cd0')
if refused.get('error', {}).get('desc') != ("Device 'ide1-cd0' is locked and force was not specified, "
                                            "wait for tray to open and try again"):
    sys.exit('eject of the mounted disc was not refused as locked: %s' % refused)
print('refused-locked', flush=True)
for _ in range(600):
    if printed('cd-unlocked'):
        break
    time.sleep(0.1)
# The guest opens the drive now and then (and locks it meanwhile): try again.
for _ in range(100):
    reply = execute('eject', device='ide1-cd0')
    if 'return' in reply:
        break
    time.sleep(0.05)
else:
    sys.exit('eject never went through')
reply = execute('blockdev-change-medium', device='ide1-cd0', filename=work + '/b.iso', format='raw')
if 'return' not in reply:
    sys.exit('blockdev-change-medium failed: %s' % reply)
block = execute('query-block')['return'][0]
print('inserted:', block.get('inserted', {}).get('file'), flush=True)
for _ in range(1200):
    if printed('cd-wait-open'):
        break
    time.sleep(0.1)
execute('blockdev-open-tray', device='ide1-cd0')
print('host-opened', flush=True)
qmp.sock.settimeout(60)
while True:  # the guest's own close
    message = qmp.read()
    if message.get('event') == 'DEVICE_TRAY_MOVED' and not message['data']['tray-open']:
        break
for _ in range(600):
    if printed('cd-reopened'):
        break
    time.sleep(0.1)
PY
finish_guest_with_qmp
has "^$a_sum  /mnt/data.bin" || fail "the guest did not read disc A"
grep -q "^refused-locked" "$work/qmp" || fail "eject of the locked tray was not refused"
grep -q '"event": "DEVICE_TRAY_MOVED".*"tray-open": true' "$work/qmp" ||
    fail "no DEVICE_TRAY_MOVED for the opened tray"
grep -q '"event": "DEVICE_TRAY_MOVED".*"tray-open": false' "$work/qmp" ||
    fail "no DEVICE_TRAY_MOVED for the closed tray"
grep -q "^inserted: $work/b.iso" "$work/qmp" || fail "query-block does not show disc B"
has "^size: $b_sectors" || fail "the guest did not see disc B's size ($b_sectors sectors)"
has "^$b_iso_sum " || fail "the guest's /dev/sr0 does not hold disc B's bytes"
has "^$b_sum  /mnt/data.bin" || fail "the file on disc B does not match"
sed -n '/^host-opened/,$p' "$work/qmp" | grep -q '"event": "DEVICE_TRAY_MOVED".*"tray-open": false' ||
    fail "no DEVICE_TRAY_MOVED when the guest closed the tray"
[ "$(grep -c "^$b_iso_sum " "$work/out")" -eq 2 ] || fail "the guest did not read disc B again after closing the tray"
has "viridian-guest: exit status 0" || fail "the guest's command failed"
has "ata.*(failed|timeout)" && fail "libata reported an error"
fail_on_complaints "$work/out" "${DEVICE_COMPLAINTS[@]}"

# Recorded (docs/replay.md): the guest reads disc A and waits for a line on
# its console; the host ejects A and puts B in over QMP, then types the line;
# the guest reads B. The replay (no QMP, no input) prints the same serial
# output byte for byte and ends at the same instruction count: the disc
# changed at the recorded point, opened again by the replaying machine.
run="dd if=/dev/sr0 bs=64k 2>/dev/null | sha256sum; echo cd-ready; read line;"
run+=" i=0; while [ \$i -lt 600 ]; do dd if=/dev/sr0 of=/dev/null bs=2k count=1 2>/dev/null;"
run+=" [ \$(cat /sys/block/sr0/size) = $b_sectors ] && break; sleep 0.5; i=\$((i+1)); done;"
run+=" echo size: \$(cat /sys/block/sr0/size); dd if=/dev/sr0 bs=64k 2>/dev/null | sha256sum"
a_iso_sum=$(sha256sum <"$work/a.iso" | cut -d' ' -f1)
rm -f "$socket"
python3 - "$(dirname "$0")" "$work" "$socket" "$viridian" --enlightenments off --drive file="$work/a.iso,media=cdrom,index=2" \
    --qmp "unix:$socket,server,wait=off" --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
    --append "console=ttyS0 panic=-1 viridian.modules=ata_piix,sr_mod viridian.run=\"$run\"" \
    --stats --record "$work/cd.vrr" >"$work/record.qmp" 2>&1 <<'PY' || { cat "$work/record.qmp" "$work/record.err"; fail "the recorded disc change failed"; }
import os, sys, time
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[1])
from qmp_client import Qmp
from serial_console import SerialConsole
work, path, argv = sys.argv[2], sys.argv[3], sys.argv[4:]
console = SerialConsole(argv, os.path.join(work, 'record.out'), os.path.join(work, 'record.err'))
console.expect(r'\ncd-ready', 300)
execute = Qmp(path).execute
for _ in range(100):  # the guest may hold the drive open (the tray locked) a moment longer
    if 'return' in execute('eject', device='ide1-cd0'):
        break
    time.sleep(0.05)
else:
    sys.exit('eject never went through')
if 'return' not in execute('blockdev-change-medium', device='ide1-cd0', filename=work + '/b.iso', format='raw'):
    sys.exit('blockdev-change-medium failed')
print('inserted:', execute('query-block')['return'][0].get('inserted', {}).get('file'), flush=True)
console.send('go\n')
console.process.stdin.close()
sys.exit(console.wait(300))
PY
grep -q "recorded [0-9]* inputs" "$work/record.err" || { cat "$work/record.err"; fail "no recording summary"; }
grep -q "^inserted: $work/b.iso" "$work/record.qmp" || fail "query-block does not show disc B while recording"
grep -q '"event": "DEVICE_TRAY_MOVED".*"tray-open": false' "$work/record.qmp" ||
    fail "no DEVICE_TRAY_MOVED while recording"
grep -q "^$a_iso_sum " "$work/record.out" || fail "the recorded guest did not read disc A"
grep -q "^$b_iso_sum " "$work/record.out" || fail "the recorded guest did not read disc B"
recorded=$(grep '^instructions:' "$work/record.err")
echo "linux-cdrom-change: recorded the disc change: $(grep -o 'recorded [0-9]* inputs' "$work/record.err"), $recorded"
check_replay 300 "$work/cd.vrr" "$work/record.out" "$work/record.err"
echo "linux-cdrom-change: the recorded disc change replays identically ($replayed)"
echo "linux-cdrom-change: ok"
