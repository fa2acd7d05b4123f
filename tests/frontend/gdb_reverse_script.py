# Run inside gdb (gdb -batch -x gdb_reverse_script.py) by gdb_test.py
# against viridian replaying a recording of gdb_guest.asm with --gdb:
# reverse-stepi comes back through the very states stepi went through,
# reverse-continue to earlier breakpoint and watchpoint hits, and the start
# of the recorded history (gdb prints "No more reverse-execution history"
# there, on its own output: gdb_test.py counts the two). Every check
# prints "ok ..." or "FAIL: ...".
import os
import sys

import gdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gdb_checks import check, read, value  # noqa: E402

env = os.environ
START = int(env["ADDR__start"], 16)
COUNTER, AFTER_INC = int(env["ADDR_counter"], 16), int(env["ADDR_after_inc"], 16)
COUNT_LOOP = int(env["ADDR_count_loop"], 16)


def counter():
    return int.from_bytes(read(COUNTER, 8), "little")


def run(command):
    return gdb.execute(command, to_string=True)


def registers():
    return [value(r) for r in ("$pc", "$rsp", "$rbx", "$rcx", "$eflags")]


check(value("$pc") == START, "the replay starts paused at _start")
run("reverse-stepi")
check(value("$pc") == START, "reverse-stepi at the start stays at _start (no history)")

info = run("monitor info replay")
check(info.startswith("Replaying execution '") and "instruction count = 0" in info,
      "monitor info replay names the replay and the count (%r)" % info)
run("break *%#x" % AFTER_INC)
for _ in range(3):
    run("continue")
check(value("$pc") == AFTER_INC and counter() == 3, "forward to the third pass of after_inc (counter 3)")

seen = [registers()]
for _ in range(6):
    run("stepi")
    seen.append(registers())
for back in range(5, -1, -1):
    run("reverse-stepi")
    check(registers() == seen[back], "reverse-stepi %d: the registers stepi saw there" % (6 - back))
check(counter() == 3, "the counter is 3 again")

run("reverse-continue")
check(value("$pc") == AFTER_INC and counter() == 2, "reverse-continue: the previous breakpoint hit (counter 2)")
run("reverse-continue")
check(value("$pc") == AFTER_INC and counter() == 1, "reverse-continue: the one before (counter 1)")

# A watchpoint going backwards stops before the write that changed the
# value (gdb: "Old value = 1, New value = 0" is the earlier write undone).
run("delete")
run("watch *(long *)%#x" % COUNTER)
run("reverse-continue")
check(value("$pc") == COUNT_LOOP and counter() == 0, "reverse-continue with a watchpoint: before the first "
      "increment, the counter 0 (pc %#x, counter %d)" % (value("$pc"), counter()))
run("delete")
run("reverse-continue")
check(value("$pc") == START, "reverse-continue without breakpoints: back at the start (no history)")

run("break *%#x" % AFTER_INC)
run("continue")
check(counter() == 1, "forward again: the first hit (counter 1)")
run("delete")
print("PASS", flush=True)
gdb.execute("continue")
