# Run inside gdb by linux_gdb_test.py against viridian booting the Debian
# kernel on two vCPUs: gdb attaches mid-boot (the machine stops), reads the
# registers and the code at RIP through the kernel's page tables, steps,
# breaks in the kernel's interrupt entries found through the IDT, continues
# until Ctrl-C (the test sends SIGINT to gdb) and detaches.
import os
import sys

import gdb

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "frontend"))
from gdb_checks import check, interrupt_entries, read, value  # noqa: E402


check(len(gdb.selected_inferior().threads()) == 2, "two vCPUs, two threads")
pc = value("$pc")
check(pc >= 0xFFFFFFFF80000000, "the kernel runs in its high mapping (pc %#x)" % pc)
check(len(read(pc, 16)) == 16, "the code at pc reads through the kernel's page tables")
check(value("$cr3") != 0 and value("$efer") & (1 << 10), "long mode: cr3 and EFER.LMA")

gdb.execute("stepi")
print("after stepi: pc %#x" % value("$pc"), flush=True)

# Breakpoints on the kernel's interrupt entries, found through the IDT
# (vectors 32-255 with a present gate): whichever timer the kernel uses,
# its next interrupt stops the machine there.
handlers = interrupt_entries()
check(handlers and min(handlers) >= 0xFFFFFFFF80000000,
      "%d interrupt entries, all in the kernel" % len(handlers))
for handler in sorted(handlers):
    gdb.execute("break *%#x" % handler, to_string=True)
gdb.execute("continue")
check(value("$pc") in handlers, "an interrupt stops the machine at a breakpoint on its entry (pc %#x)" % value("$pc"))
print(gdb.execute("info threads", to_string=True), flush=True)
gdb.execute("delete")

# Runs until the test sends SIGINT to gdb, which sends Ctrl-C to the stub.
print("continuing until interrupted", flush=True)
signals = []
gdb.events.stop.connect(lambda event: signals.append(getattr(event, "stop_signal", None)))
gdb.execute("continue")
check(signals == ["SIGINT"] and value("$pc") != 0, "Ctrl-C stops the machine (%s, pc %#x)" % (signals, value("$pc")))
gdb.execute("detach")
print("PASS", flush=True)
