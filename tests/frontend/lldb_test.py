#!/usr/bin/env python3
"""The gdb stub under LLDB (docs/gdb.md "LLDB"): a second, independent client
of the remote protocol. LLDB asks for other packets than gdb does (its own
qHostInfo/qProcessInfo probes, register numbers from the target XML,
stop-reason parsing of watchpoints), so it checks that the stub is not
shaped to one client.

viridian boots gdb_guest.elf paused (-S) with --gdb on a Unix socket; LLDB
runs a fixed command list in batch mode (Debian's lldb has no working Python
module, so the checks read its printed output here). Cases: two vCPUs with
the JIT on, one vCPU with the JIT off. Skipped (status 77) without lldb.

usage: lldb_test.py VIRIDIAN GUEST_ELF"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

from stub_machine import start_machine, symbols

RBX = 0x1122334455667788
WARM = 10000
YMM3 = "{" + " ".join("0x%02x" % byte for byte in range(32)) + "}"


def find_lldb():
    for name in ["lldb"] + ["lldb-%d" % version for version in range(20, 13, -1)]:
        if shutil.which(name):
            return name
    return None


def commands(cpus, sym):
    """(LLDB command, what its output must contain) in order; a check is a
    regular expression searched in the output that follows the command."""
    steps = [
        ("register read rip", r"rip = 0x%016x" % sym["_start"]),
        ("thread list", r"thread #%d: tid = 0x%04x" % (cpus, cpus)),
        ("breakpoint set -a %#x" % sym["count_loop"], r"Breakpoint 1: address = 0x%016x" % sym["count_loop"]),
        ("continue", r"stop reason = breakpoint 1\.1\s+frame #0: 0x%016x" % sym["count_loop"]),
        ("register read rbx ymm3", r"rbx = 0x%016x\s+ymm3 = %s" % (RBX + WARM, re.escape(YMM3))),
        ("memory read -s8 -fx -c1 %#x" % sym["counter"], r"0x%08x: 0x0{16}" % sym["counter"]),
        ("breakpoint delete -f", r"All breakpoints removed"),
        ("watchpoint set expression -w write -s 8 -- %#x" % sym["counter"], r"Watchpoint created"),
        ("continue", r"old value: 0\s+new value: 1[\s\S]*stop reason = watchpoint 1\s+frame #0: 0x%016x"
         % sym["after_inc"]),
        ("watchpoint delete -f", r"All watchpoints removed"),
        ("si", r"stop reason = instruction step into\s+frame #0: 0x%016x" % sym["work"]),
        ("register write rax 0x1234", r""),
        ("register read rax", r"rax = 0x0000000000001234"),
    ]
    if cpus > 1:  # the application processor still waits for its SIPI
        steps += [("thread select 2", r""), ("register read rip", r"rip = 0x000000000000fff0")]
    # The guest counts to its limit and leaves through the debug-exit port.
    steps.append(("continue", r"Process 1 exited with status = 1"))
    return steps


def check_output(output, steps):
    """Splits LLDB's transcript at each echoed command and checks each part."""
    parts = output.split("(lldb) ")
    ok = True
    for command, expected in steps:
        part = next((p for p in parts if p.startswith(command + "\n")), None)
        if part is None:
            print("FAIL: no output for %r" % command)
            ok = False
            continue
        parts = parts[parts.index(part) + 1:]  # in order: a repeated command takes the next
        if not re.search(expected, part):
            print("FAIL: %r printed:\n%s\nexpected /%s/" % (command, part, expected))
            ok = False
        else:
            print("ok: %s" % command)
    return ok


def run_case(lldb, viridian, elf, cpus, jit):
    sym = {name: int(address, 16) for name, address in symbols(elf).items()}
    steps = commands(cpus, sym)
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "gdb.sock")
        args = [viridian, "--kernel", elf, "--memory", "64M", "--cpus", str(cpus), "--jit", jit,
                "--gdb", "unix:" + sock, "-S"]
        machine = start_machine(args, sock)
        try:
            argv = [lldb, "--batch", "--no-use-colors", "-o", "process connect unix-connect://" + sock]
            for command, _ in steps:
                argv += ["-o", command]
            run = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
            status = machine.wait(timeout=30)
        finally:
            if machine.poll() is None:
                machine.kill()
                machine.wait()
        print(run.stdout)
        ok = check_output(run.stdout, steps) and status == 1
        print("%s: --cpus %d --jit %s (lldb %d, viridian %d)" % ("ok" if ok else "FAIL", cpus, jit,
                                                                run.returncode, status))
        return ok


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    lldb = find_lldb()
    if not lldb:
        print("lldb is not installed: skipped")
        return 77
    viridian, elf = sys.argv[1:]
    results = [run_case(lldb, viridian, elf, 2, "on"), run_case(lldb, viridian, elf, 1, "off")]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
