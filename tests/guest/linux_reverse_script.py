# Run inside gdb by linux_reverse_test.py against viridian replaying a
# recorded session of the Debian kernel on two vCPUs (--replay --gdb): the
# test stopped the replay with Ctrl-C after the guest printed hello-42.
# reverse-stepi comes back through the states stepi went through;
# reverse-continue comes back to earlier interrupts (breakpoints on the
# kernel's interrupt entries) on the vCPU and with the registers they had;
# with no breakpoints it goes back to the start of the history. Then the
# replay runs on to its end.
import os
import sys

import gdb

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "frontend"))
from gdb_checks import check, interrupt_entries, value  # noqa: E402

REGISTERS = ("$pc", "$rsp", "$rax", "$rbx", "$rcx", "$rdx", "$rsi", "$rdi", "$eflags", "$cr3")


def state():
    return (gdb.selected_thread().num, [value(r) for r in REGISTERS])


check(len(gdb.selected_inferior().threads()) == 2, "two vCPUs, two threads")
seen = [state()]
for _ in range(5):
    gdb.execute("stepi", to_string=True)
    seen.append(state())
for back in range(4, -1, -1):
    gdb.execute("reverse-stepi", to_string=True)
    check(state() == seen[back], "reverse-stepi %d: vCPU %d with the registers stepi saw" % (5 - back, seen[back][0]))

handlers = interrupt_entries()
for handler in sorted(handlers):
    gdb.execute("break *%#x" % handler, to_string=True)
hits = []
for _ in range(4):
    gdb.execute("continue", to_string=True)
    check(value("$pc") in handlers, "continue: an interrupt entry (vCPU %d, pc %#x)" %
          (gdb.selected_thread().num, value("$pc")))
    hits.append(state())
for back in (2, 1, 0):
    gdb.execute("reverse-continue", to_string=True)
    check(state() == hits[back], "reverse-continue: interrupt %d again, on vCPU %d with its registers" %
          (back + 1, hits[back][0]))
gdb.execute("delete")
gdb.execute("reverse-continue")
check(value("$pc") < 0xFFFFFFFF80000000, "reverse-continue with no breakpoints: the start, before the kernel's "
      "high mapping (pc %#x)" % value("$pc"))
print("PASS", flush=True)
gdb.execute("continue")
