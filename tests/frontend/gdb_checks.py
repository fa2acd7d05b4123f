# Helpers for the Python scripts gdb runs in the gdb stub's tests
# (gdb_script.py here, tests/guest/linux_gdb_script.py): every check prints
# "ok ..." or "FAIL: ..." and a failure ends gdb at once with status 1.
import os

import gdb

MASK = (1 << 64) - 1


def check(condition, what):
    if not condition:
        print("FAIL: " + what, flush=True)
        os._exit(1)
    print("ok " + what, flush=True)


def value(expression):
    """A register or expression as an unsigned 64-bit number."""
    return int(gdb.parse_and_eval(expression)) & MASK


def read(address, length):
    return bytes(gdb.selected_inferior().read_memory(address, length))


def interrupt_entries():
    """The kernel's interrupt entries (vectors 32-255 with a present gate),
    read from the IDT that `monitor info registers` names."""
    regs = gdb.execute("monitor info registers", to_string=True)
    idt = int([line.split()[1] for line in regs.splitlines() if line.startswith("idt ")][0], 16)
    table = read(idt + 32 * 16, 224 * 16)
    handlers = set()
    for vector in range(224):
        gate = table[vector * 16:vector * 16 + 16]
        if gate[5] & 0x80:  # P
            handlers.add(int.from_bytes(gate[0:2], "little") | int.from_bytes(gate[6:8], "little") << 16 |
                         int.from_bytes(gate[8:12], "little") << 32)
    return handlers
