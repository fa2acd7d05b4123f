#!/usr/bin/env python3
"""gdb against the Debian kernel on two vCPUs (docs/gdb.md): viridian boots
guest/vmlinuz with --gdb on a Unix socket; after a few seconds gdb attaches
and runs linux_gdb_script.py; once the script says it is continuing, the
test sends SIGINT to gdb (Ctrl-C). Skipped (77) without gdb or the guest.

usage: linux_gdb_test.py VIRIDIAN GUEST_DIR GDB_SCRIPT"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    viridian, guest, script = sys.argv[1:]
    if not shutil.which("gdb") or not os.path.exists(os.path.join(guest, "vmlinuz")):
        print("gdb or the guest is missing: skipped")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "gdb.sock")
        machine = subprocess.Popen(
            [viridian, "--kernel", os.path.join(guest, "vmlinuz"), "--initrd",
             os.path.join(guest, "initramfs.cpio.gz"), "--append", "console=ttyS0 panic=-1",
             "--cpus", "2", "--memory", "256M", "--gdb", "unix:" + sock],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        gdb = None
        try:
            # Into the kernel proper (past the decompressor, in its high
            # mapping): a few lines after its banner.
            lines = 0
            for line in machine.stdout:
                lines += "Linux version" in line or lines > 0
                if lines > 5:
                    break
            threading.Thread(target=machine.stdout.read, daemon=True).start()
            gdb = subprocess.Popen(
                ["gdb", "-q", "-n", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
                 "-ex", "set architecture i386:x86-64", "-ex", "target remote " + sock, "-x", script],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            output = []
            deadline = time.monotonic() + 180
            for line in gdb.stdout:
                output.append(line)
                sys.stdout.write(line)
                if "continuing until interrupted" in line:
                    time.sleep(2)
                    gdb.send_signal(signal.SIGINT)
                if time.monotonic() > deadline:
                    break
            gdb.wait(timeout=60)
            ok = gdb.returncode == 0 and "PASS\n" in output and machine.poll() is None
            print("%s (gdb %d)" % ("ok" if ok else "FAIL", gdb.returncode))
            return 0 if ok else 1
        finally:
            if gdb and gdb.poll() is None:
                gdb.kill()
            machine.kill()
            machine.wait()


if __name__ == "__main__":
    sys.exit(main())
