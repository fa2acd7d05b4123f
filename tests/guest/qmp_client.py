"""A QMP client for the guest tests on a unix socket: Qmp(path) reads the
greeting and negotiates; execute() sends a command and returns its reply;
every message read (events too) is printed as one JSON line, so a test's
log holds the whole conversation."""
import json
import socket


class Qmp:
    def __init__(self, path, timeout=120):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.sock.settimeout(timeout)
        self.stream = self.sock.makefile('rb')
        self.stream.readline()  # greeting
        self.execute('qmp_capabilities')

    def read(self):
        """The next message (an event, or a reply), printed."""
        message = json.loads(self.stream.readline())
        print(json.dumps(message), flush=True)
        return message

    def execute(self, command, **arguments):
        self.sock.sendall(json.dumps({'execute': command, 'arguments': arguments}).encode())
        while True:
            message = self.read()
            if 'return' in message or 'error' in message:
                return message
