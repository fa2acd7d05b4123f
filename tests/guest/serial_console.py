"""Drives a guest through its serial console: a process (viridian or QEMU)
whose stdout is COM1's output and whose stdin is COM1's input, read and
written through pipes the way expect(1) would. Used by the Debian disk test
(tests/guest/debian_disk_test.py) and bench/disk.sh.

viridian feeds stdin into the 16550's receive FIFO only while the FIFO has
room, so a whole command line can be written at once; but getty flushes its
input when it starts, so nothing is typed before the prompt it answers."""
import os
import re
import select
import subprocess
import time

# Debian's bash prompt for root on the disk's host name (make-debian-disk.sh).
PROMPT = r'root@viridian:[^\r\n]*# '


class ConsoleError(Exception):
    pass


class SerialConsole:
    def __init__(self, argv, log_path, stderr_path=None):
        self.log = open(log_path, 'wb')
        self.stderr = open(stderr_path, 'wb') if stderr_path else subprocess.STDOUT
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr)
        os.set_blocking(self.process.stdout.fileno(), False)
        self.text = ''  # everything read, as Latin-1 so every byte survives
        self.pos = 0    # where the next expect() starts looking

    def _read(self, seconds):
        ready, _, _ = select.select([self.process.stdout], [], [], seconds)
        if not ready:
            return True
        data = self.process.stdout.read()
        if data is None:
            return True  # a wakeup without data
        if not data:
            return False  # the process closed its output: it is ending
        self.log.write(data)
        self.log.flush()
        self.text += data.decode('latin-1')
        return True

    def expect(self, pattern, seconds):
        """Waits for PATTERN (a regular expression) after what the previous
        expect matched; returns the match, or raises ConsoleError."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + seconds
        while True:
            match = regex.search(self.text, self.pos)
            if match:
                self.pos = match.end()
                return match
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConsoleError('no %r within %d s; the console ends with:\n%s' %
                                   (pattern, seconds, self.text[-1500:]))
            if not self._read(min(left, 1.0)):
                raise ConsoleError('the process ended (status %s) before %r; the console ends with:\n%s'
                                   % (self.process.wait(), pattern, self.text[-1500:]))

    def send(self, text):
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

    def login(self, seconds):
        """Waits for getty's prompt and logs in as root (no password)."""
        self.expect(r'login: $', seconds)
        self.send('root\n')
        self.expect(PROMPT, 120)

    def run(self, command, seconds=300):
        """Runs COMMAND in the logged-in shell; returns (output, status).
        The end marker is typed split by quotes so that the echoed command
        line never matches it."""
        self.send('%s; echo "@@do""ne $?@@"\n' % command)
        match = self.expect(r'@@done (\d+)@@', seconds)
        output = self.text[:match.start()]
        # Only what the command printed: after the echoed command line.
        echoed = output.rfind('@@do""ne')
        if echoed >= 0:
            output = output[output.find('\n', echoed) + 1:]
        self.expect(PROMPT, 60)
        # Without the terminal's escape sequences (bash's bracketed-paste
        # switches end up on the output's first line) and with a bare CR as
        # a line break.
        output = re.sub(r'\x1b\[[0-9;?]*[A-Za-z]', '', output)
        return output.replace('\r\n', '\n').replace('\r', '\n'), int(match.group(1))

    def wait(self, seconds):
        """Waits for the process to exit, reading its output; returns its status."""
        deadline = time.monotonic() + seconds
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise ConsoleError('the process did not exit within %d s; the console ends with:\n%s'
                                   % (seconds, self.text[-1500:]))
            self._read(0.5)
        while select.select([self.process.stdout], [], [], 0)[0] and self._read(0):
            pass  # what it printed last
        return self.process.returncode

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
