# Run inside gdb by bench/replay.sh against `viridian --replay ... --gdb`
# stopped by --replay-goto: times reverse-stepi, reverse-continue to the
# previous interrupt entry (breakpoints on every present IDT gate) and
# reverse-continue to the start of the history, and prints one line each.
import os
import sys
import time

import gdb

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "frontend"))
from gdb_checks import interrupt_entries  # noqa: E402


def timed(what, command, times=1):
    start = time.monotonic()
    for _ in range(times):
        gdb.execute(command, to_string=True)
    print("latency %s: %.3f s" % (what, (time.monotonic() - start) / times), flush=True)


timed("reverse-stepi (mean of 5)", "reverse-stepi", 5)
timed("stepi (mean of 5)", "stepi", 5)
handlers = sorted(interrupt_entries())
for handler in handlers:
    gdb.execute("break *%#x" % handler, to_string=True)
gdb.execute("continue", to_string=True)
timed("reverse-continue to the previous interrupt", "reverse-continue")
gdb.execute("delete")
timed("reverse-continue to the start", "reverse-continue")
gdb.execute("kill")
