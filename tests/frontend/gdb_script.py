# Run inside gdb (gdb -batch -x gdb_script.py) by gdb_test.py against
# viridian's gdb stub and the guest gdb_guest.asm. Every check prints "ok
# ..." or "FAIL: ..." and a failure exits gdb with status 1.
import json
import os
import socket
import sys

import gdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gdb_checks import MASK, check, read, value  # noqa: E402

env = os.environ
CPUS = int(env["GDB_CPUS"])
START, WORK = int(env["ADDR__start"], 16), int(env["ADDR_work"], 16)
COUNTER, COUNT_LOOP = int(env["ADDR_counter"], 16), int(env["ADDR_count_loop"], 16)
AFTER_INC = int(env["ADDR_after_inc"], 16)
RBX = 0x1122334455667788
WARM = 10000
PATTERN = [0x0706050403020100, 0x0F0E0D0C0B0A0908, 0x1716151413121110, 0x1F1E1D1C1B1A1918]


def pc():
    return value("$pc")


class Qmp:
    """A QMP client on viridian's --qmp socket (when the test gives one)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile("r")
        self.events = []
        json.loads(self.file.readline())  # the greeting
        self.execute("qmp_capabilities")

    def execute(self, command):
        self.sock.sendall(json.dumps({"execute": command}).encode() + b"\n")
        while True:
            message = json.loads(self.file.readline())
            if "event" in message:
                self.events.append(message["event"])
            else:
                return message.get("return")


def counter():
    return int.from_bytes(read(COUNTER, 8), "little")


check(pc() == START, "-S stops the machine before its first instruction (pc %#x)" % pc())
threads = gdb.selected_inferior().threads()
check(len(threads) == CPUS, "one thread per vCPU (%d)" % len(threads))
check(gdb.selected_thread().num == 1, "thread 1 is selected")

# A breakpoint the warm-up loop never reaches: the code runs (translated
# with the JIT) until the count loop starts.
gdb.execute("tbreak *%#x" % COUNT_LOOP)
gdb.execute("continue")
check(pc() == COUNT_LOOP, "a temporary breakpoint stops at the count loop")
check(value("$rbx") == RBX + WARM, "rbx counts the warm-up calls")

qmp = Qmp(env["QMP_SOCK"]) if env.get("QMP_SOCK") else None
if qmp:
    # gdb and QMP agree on the run state: a debug stop is a pause.
    check(qmp.execute("query-status")["status"] == "paused", "QMP sees the machine paused at a breakpoint")

# A breakpoint in code that ran thousands of times (translated, chained).
gdb.execute("break *%#x" % WORK)
gdb.execute("continue")
check(pc() == WORK, "a breakpoint in hot code stops before its instruction")
check(counter() == 1, "the loop ran once before the breakpoint")
check(value("$rbx") == RBX + WARM, "rbx is read from the stopped vCPU")
ymm = gdb.parse_and_eval("$ymm3.v4_int64")
check([int(ymm[i]) & MASK for i in range(4)] == PATTERN, "ymm3 holds the pattern the guest loaded")
xmm = gdb.parse_and_eval("$xmm3.v2_int64")
check([int(xmm[i]) & MASK for i in range(2)] == PATTERN[:2], "xmm3 is ymm3's lower half")
gdb.execute("continue")
check(pc() == WORK and counter() == 2, "continuing stops at the breakpoint again, one round later")
check(value("$rbx") == RBX + WARM + 1, "the breakpointed instruction ran once in between")
gdb.execute("delete")
if qmp:
    qmp.execute("query-status")
    check(qmp.events.count("RESUME") >= 2 and qmp.events.count("STOP") >= 2,
          "QMP got RESUME and STOP for gdb's continues and stops (%s)" % qmp.events)

# A watchpoint on the variable the loop writes: stops after the write.
gdb.execute("watch *(long long *)%#x" % COUNTER)
gdb.execute("continue")
check(pc() == AFTER_INC, "a write watchpoint stops after the writing instruction (pc %#x)" % pc())
check(counter() == 3, "the write happened")
gdb.execute("delete")

# stepi: one instruction at a time (the call, then the add).
gdb.execute("stepi")
check(pc() == WORK, "stepi over a call lands at its target")
gdb.execute("stepi")
check(pc() == WORK + 4, "stepi runs exactly one instruction")
check(value("$rbx") == RBX + WARM + 3, "the stepped add ran")

# Registers and memory written from gdb reach the guest.
gdb.execute("set $rbx = 42")
check(value("$rbx") == 42, "a register write reads back")
gdb.selected_inferior().write_memory(COUNTER, (4).to_bytes(8, "little"))
check(counter() == 4, "a memory write reads back")
check(read(WORK, 1) == b"\x48", "code memory reads as the guest's bytes")
try:
    gdb.selected_inferior().read_memory(0x7FFF00000000, 8)
    check(False, "unmapped memory reads fail")
except gdb.MemoryError:
    check(True, "unmapped memory reads fail with an error, not a fault")

out = gdb.execute("monitor info registers", to_string=True)
check("cr3" in out and "efer" in out, "monitor info registers shows the system registers")
out = gdb.execute("monitor help", to_string=True)
check("phys" in out, "monitor help lists the physical-memory mode")

if CPUS > 1:
    threads_text = gdb.execute("info threads", to_string=True)
    check("CPU#1 [waiting for SIPI]" in threads_text, "thread 2's extra info says the AP waits for its SIPI")
    gdb.execute("thread 2")
    check(value("$pc") == 0xFFF0, "thread 2 is the AP, waiting for its start-up IPI at its reset RIP")
    gdb.execute("thread 1")

# The guest finishes the loop (counter 4 -> 5) and exits; gdb hears of it.
gdb.execute("continue")
check(len(gdb.selected_inferior().threads()) == 0, "the guest's exit ends the debugging session")
print("PASS", flush=True)
