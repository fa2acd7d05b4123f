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
