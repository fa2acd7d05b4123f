"""A QMP client for the guest tests on a unix socket: Qmp(path) reads the
greeting and negotiates; execute() sends a command and returns its reply;
every message read (events too) is printed as one JSON line, so a test's
log holds the whole conversation, and the events are kept in `events`.
ok() and refused() are a test step's checks: the command succeeds with {},
or fails with exactly this text; either ends the script with a message."""
import json
import socket
import sys


class Qmp:
    def __init__(self, path, timeout=120):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.sock.settimeout(timeout)
        self.stream = self.sock.makefile('rb')
        self.events = []
        self.stream.readline()  # greeting
        self.execute('qmp_capabilities')

    def read(self):
        """The next message (an event, or a reply), printed."""
        message = json.loads(self.stream.readline())
        print(json.dumps(message), flush=True)
        if 'event' in message:
            self.events.append(message)
        return message

    def execute(self, command, **arguments):
        self.sock.sendall(json.dumps({'execute': command, 'arguments': arguments}).encode())
        while True:
            message = self.read()
            if 'return' in message or 'error' in message:
                return message

    def ok(self, command, **arguments):
        reply = self.execute(command, **arguments)
        if reply.get('return') != {}:
            sys.exit('%s %s: expected {}, got %s' % (command, arguments, reply))

    def refused(self, text, command, **arguments):
        """The error's class, when the command failed with `text`."""
        reply = self.execute(command, **arguments)
        desc = reply.get('error', {}).get('desc')
        if desc != text:
            sys.exit('%s %s: expected the error %r, got %s' % (command, arguments, text, reply))
        return reply['error']['class']
