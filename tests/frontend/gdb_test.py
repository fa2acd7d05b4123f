#!/usr/bin/env python3
"""The gdb stub end to end with Debian's gdb (docs/gdb.md): viridian boots
gdb_guest.elf paused (-S) with --gdb on a Unix socket; gdb runs
gdb_script.py in batch mode against it. Cases: two vCPUs with the JIT on
and a QMP socket (the script checks that QMP sees gdb's stops), one vCPU
with the JIT off. Skipped (status 77) when gdb is not installed.

A third case records the guest on two vCPUs and debugs its replay
(--replay --gdb) with GDB_REVERSE_SCRIPT: reverse-stepi and
reverse-continue, JIT on and off.

usage: gdb_test.py VIRIDIAN GUEST_ELF GDB_SCRIPT GDB_REVERSE_SCRIPT"""
import os
import shutil
import subprocess
import sys
import tempfile

from stub_machine import start_machine, symbols


def run_case(viridian, elf, script, cpus, jit, qmp, replay=False):
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "gdb.sock")
        machine_args = ["--kernel", elf, "--memory", "64M", "--cpus", str(cpus)]
        args = [viridian] + machine_args + ["--jit", jit, "--gdb", "unix:" + sock, "-S"]
        if replay:
            recording = os.path.join(tmp, "run.vrr")
            recorded = subprocess.run([viridian] + machine_args + ["--record", recording, "--sync-interval", "5000"],
                                      stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
            print(recorded.stderr)
            if recorded.returncode != 1:
                print("FAIL: the recording's run ended with status %d" % recorded.returncode)
                return False
            args = [viridian, "--replay", recording, "--jit", jit, "--gdb", "unix:" + sock, "-S"]
        qmp_sock = os.path.join(tmp, "qmp.sock")
        if qmp:
            args += ["--qmp", "unix:%s,server,wait=off" % qmp_sock]
        machine = start_machine(args, sock)
        try:
            env = dict(os.environ, GDB_CPUS=str(cpus), QMP_SOCK=qmp_sock if qmp else "")
            for name, address in symbols(elf).items():
                env["ADDR_" + name] = address
            gdb = subprocess.run(
                ["gdb", "-q", "-n", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
                 "-ex", "set architecture i386:x86-64", "-ex", "target remote " + sock, "-x", script],
                env=env, capture_output=True, text=True, timeout=120)
            print(gdb.stdout)
            print(gdb.stderr, file=sys.stderr)
            status = machine.wait(timeout=30)
        finally:
            if machine.poll() is None:
                machine.kill()
                machine.wait()
        print(machine.stdout.read())
        ok = gdb.returncode == 0 and "PASS" in gdb.stdout.splitlines() and status == 1
        if replay:  # the start of the history, reached twice
            ok = ok and gdb.stdout.count("No more reverse-execution history") == 2
        print("%s: %s--cpus %d --jit %s (gdb %d, viridian %d)" % ("ok" if ok else "FAIL", "replay " if replay else "",
                                                                 cpus, jit, gdb.returncode, status))
        return ok


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    if not shutil.which("gdb"):
        print("gdb is not installed: skipped")
        return 77
    viridian, elf, script, reverse_script = sys.argv[1:]
    results = [run_case(viridian, elf, script, 2, "on", True), run_case(viridian, elf, script, 1, "off", False)]
    for jit in ("on", "off"):
        results.append(run_case(viridian, elf, reverse_script, 2, jit, False, replay=True))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
