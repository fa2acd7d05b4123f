"""What the debugger tests (gdb_test.py, lldb_test.py) share: the guest's
symbols and a viridian started paused with its stub on a Unix socket."""
import os
import subprocess
import time


def symbols(elf):
    """The guest's global text, data and bss symbols: name -> address text."""
    out = subprocess.run(["nm", elf], check=True, capture_output=True, text=True).stdout
    return {name: address for address, kind, name in (line.split() for line in out.splitlines()) if kind in "TDB"}


def start_machine(args, sock):
    """Starts viridian with ARGS (which give --gdb unix:SOCK) and waits up to
    10 s for the socket to appear."""
    machine = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    return machine
