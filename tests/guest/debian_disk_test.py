#!/usr/bin/env python3
"""The Debian disk through the firmware path (docs/storage.md "A Debian
disk"): viridian without --kernel boots guest/debian.vhdx (made by
scripts/make-debian-disk.sh) through SeaBIOS and EXTLINUX into Debian's
stock kernel and systemd, to a login prompt on the serial console. The test
logs in as root, writes a file and records its SHA-256, syncs, reboots from
inside (viridian restarts the machine), logs in again and checks the file,
then powers off from inside: viridian must exit 0 and the image must pass
`viridian-img check` (and `qemu-img check` where installed and QEMU reads
the image: not the differencing VHDX).

Twice: on a copy of the VHDX, and on a differencing VHDX whose parent is
guest/debian.vhdx itself (the parent must come out unchanged).

Usage: debian_disk_test.py VIRIDIAN VIRIDIAN_IMG GUEST_DIR [vhdx|child ...]
Exits 77 (skipped) when guest/debian.vhdx has not been built."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serial_console import ConsoleError, SerialConsole  # noqa: E402

BOOT_SECONDS = 900  # to the login prompt; a few minutes on a loaded machine
WRITE = 'dd if=/dev/urandom of=/root/data bs=1M count=16 status=none && sha256sum /root/data && sync'


def sha256(output):
    match = re.search(r'^([0-9a-f]{64})  /root/data$', output, re.M)
    return match.group(1) if match else None


def boot_and_check(viridian, image, work, name, failures):
    def check(what, condition):
        print('%s - %s: %s' % ('ok' if condition else 'not ok', name, what), flush=True)
        if not condition:
            failures.append('%s: %s' % (name, what))
        return condition

    console = SerialConsole([viridian, '--drive', 'file=' + image, '--memory', '1G', '--stats'],
                            os.path.join(work, name + '.console'), os.path.join(work, name + '.stderr'))
    try:
        start = time.monotonic()
        console.login(BOOT_SECONDS)
        print('%s: logged in after %.0f s' % (name, time.monotonic() - start), flush=True)
        output, status = console.run(WRITE)
        written = sha256(output)
        if not check('the guest wrote /root/data', status == 0 and written):
            return
        console.send('reboot\n')
        start = time.monotonic()
        console.login(BOOT_SECONDS)
        print('%s: logged in again after %.0f s' % (name, time.monotonic() - start), flush=True)
        output, status = console.run('sha256sum /root/data')
        check('/root/data survived the reboot', status == 0 and sha256(output) == written)
        console.send('poweroff\n')
        status = console.wait(300)
        check('poweroff from inside ends viridian with status 0 (got %d)' % status, status == 0)
    except ConsoleError as error:
        check(str(error), False)
    finally:
        console.kill()
        with open(os.path.join(work, name + '.stderr'), errors='replace') as f:
            stats = f.read()
        match = re.search(r'instructions: (\d+)', stats)
        if match:
            print('%s: %s instructions in all' % (name, match.group(1)), flush=True)
        log = console.text
        check('no I/O errors in the boot log', not re.search(r'(ata\d.*(failed|timeout|error)|I/O error|EXT4-fs error)',
                                                             log))


def image_checks(viridian_img, image, name, failures, qemu_reads_it=True):
    def check(what, condition):
        print('%s - %s: %s' % ('ok' if condition else 'not ok', name, what), flush=True)
        if not condition:
            failures.append('%s: %s' % (name, what))

    result = subprocess.run([viridian_img, 'check', image], capture_output=True, text=True)
    check('viridian-img check passes', result.returncode == 0)
    if result.returncode != 0:
        print(result.stdout + result.stderr)
    if qemu_reads_it and shutil.which('qemu-img'):
        result = subprocess.run(['qemu-img', 'check', image], capture_output=True, text=True)
        check('qemu-img check passes', result.returncode == 0)
        if result.returncode != 0:
            print(result.stdout + result.stderr)


def main():
    viridian, viridian_img, guest = sys.argv[1:4]
    cases = sys.argv[4:] or ['vhdx', 'child']
    parent = os.path.abspath(os.path.join(guest, 'debian.vhdx'))
    if not os.access(parent, os.R_OK):
        print('no Debian disk (%s); run scripts/make-debian-disk.sh' % parent)
        return 77
    work = tempfile.mkdtemp(prefix='viridian-debian-disk-')
    failures = []
    try:
        if 'vhdx' in cases:
            image = os.path.join(work, 'debian.vhdx')
            subprocess.run(['cp', '--sparse=always', parent, image], check=True)
            boot_and_check(viridian, image, work, 'vhdx', failures)
            image_checks(viridian_img, image, 'vhdx', failures)
        if 'child' in cases:
            before = os.stat(parent)
            image = os.path.join(work, 'child.vhdx')
            subprocess.run([viridian_img, 'create', '-f', 'vhdx', '-b', parent, image], check=True,
                           stdout=subprocess.DEVNULL)
            boot_and_check(viridian, image, work, 'child', failures)
            # QEMU's vhdx driver refuses differencing images (ENOTSUP).
            image_checks(viridian_img, image, 'child', failures, qemu_reads_it=False)
            after = os.stat(parent)
            unchanged = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
            print('%s - child: the parent is unchanged' % ('ok' if unchanged else 'not ok'))
            if not unchanged:
                failures.append('child: the parent changed')
    finally:
        if failures:
            print('the consoles are in %s' % work)
        else:
            shutil.rmtree(work)
    if failures:
        print('debian-disk-boot: %d failed: %s' % (len(failures), '; '.join(failures)))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
