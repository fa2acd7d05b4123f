#!/usr/bin/env python3
"""Reverse execution on the Debian kernel (docs/replay.md, docs/gdb.md):
replays RECORDING (made by replay_test.sh: a shell session on two vCPUs)
with --gdb; gdb attaches at the start, continues, and the test sends it
SIGINT once the guest has printed hello-42; then gdb runs SCRIPT (reverse
steps and continues, back to the start, then on to the end). The replay's
serial output must be the recording's byte for byte (output already shown
is not shown again when the run passes it a second time), and it must end
as the recording did (status 0). Skipped (77) without gdb.

usage: linux_reverse_test.py VIRIDIAN RECORDING RECORDED_OUTPUT SCRIPT"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    viridian, recording, recorded_output, script = sys.argv[1:]
    if not shutil.which("gdb"):
        print("gdb is missing: skipped")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "gdb.sock")
        machine = subprocess.Popen([viridian, "--replay", recording, "--gdb", "unix:" + sock, "-S"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        output = bytearray()
        hello = threading.Event()

        def read_console():
            for chunk in iter(lambda: machine.stdout.read1(4096), b""):
                output.extend(chunk)
                if b"hello-42" in output:
                    hello.set()

        reader = threading.Thread(target=read_console, daemon=True)
        reader.start()
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        gdb = subprocess.Popen(
            ["gdb", "-q", "-n", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
             "-ex", "set architecture i386:x86-64", "-ex", "target remote " + sock,
             "-ex", "continue", "-x", script],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            hello.wait(timeout=600)
            time.sleep(0.2)
            gdb.send_signal(signal.SIGINT)
            lines = []
            for line in gdb.stdout:
                lines.append(line)
                sys.stdout.write(line)
            gdb.wait(timeout=600)
            status = machine.wait(timeout=600)
        finally:
            for process in (gdb, machine):
                if process.poll() is None:
                    process.kill()
                    process.wait()
        reader.join(timeout=10)
        errors = machine.stderr.read().decode(errors="replace")
        print(errors)
        same = bytes(output) == open(recorded_output, "rb").read()
        back_at_start = sum("No more reverse-execution history" in line for line in lines)
        ok = gdb.returncode == 0 and "PASS\n" in lines and status == 0 and same and back_at_start == 1
        print("%s (gdb %d, viridian %d, serial output %s the recording's, history's start reached %d time(s))" %
              ("ok" if ok else "FAIL", gdb.returncode, status, "identical to" if same else "DIFFERENT from",
               back_at_start))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
