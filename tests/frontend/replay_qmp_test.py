#!/usr/bin/env python3
"""Record and replay with QMP (docs/replay.md): the spinning test guest is
recorded while a client sends stop/cont, system_reset (a new machine: the
recording spans it), system_powerdown and quit; the replay, with no client,
stops at the same instruction count with the same status. A replay with a
client refuses system_reset, system_powerdown and migrate with an error.
QEMU's replay commands: a replay started with --replay-goto stops there;
query-replay, replay-break (a break in the past refused), replay-seek back
and forward within the last machine (before its reboot refused), and the
replay still ends as recorded.

Usage: replay_qmp_test.py VIRIDIAN SPIN_GUEST_ELF"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time


def fail(message):
    print('replay-qmp: ' + message)
    sys.exit(1)


class Client:
    def __init__(self, path):
        for _ in range(200):
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        else:
            fail('no QMP socket at ' + path)
        self.sock.settimeout(20)
        self.buffer = b''
        self.read()  # the greeting
        self.command('qmp_capabilities')

    def read(self):
        while b'\n' not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                fail('the QMP connection closed')
            self.buffer += data
        line, self.buffer = self.buffer.split(b'\n', 1)
        return json.loads(line)

    def command(self, name, arguments=None):
        request = {'execute': name}
        if arguments:
            request['arguments'] = arguments
        self.sock.sendall(json.dumps(request).encode() + b'\n')
        while True:
            reply = self.read()
            if 'event' not in reply:
                return reply


def instructions(text):
    found = re.search(r'^instructions: (\d+)$', text, re.M)
    return int(found.group(1)) if found else None


def main():
    viridian, guest = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp()
    sock = os.path.join(work, 'qmp.sock')
    recording = os.path.join(work, 'run.vrr')
    process = subprocess.Popen([viridian, '--kernel', guest, '--stats', '--record', recording,
                                '--qmp', 'unix:%s,server,wait=off' % sock],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client = Client(sock)
    for name in ['stop', 'cont', 'system_reset', 'system_powerdown']:
        time.sleep(0.2)
        if 'return' not in client.command(name):
            fail(name + ' failed while recording')
    migrate = client.command('migrate', {'uri': 'exec:cat > /dev/null'})
    if 'error' not in migrate:
        fail('migrate was not refused while recording')
    time.sleep(0.2)
    client.command('quit')
    out, err = process.communicate(timeout=60)
    recorded = instructions(err.decode())
    if process.returncode != 0 or recorded is None or b'recorded 2 inputs' not in err:
        fail('the recording: status %d, %s' % (process.returncode, err.decode()))
    print('recorded: %d instructions, 2 inputs, status 0' % recorded)

    replay = subprocess.run([viridian, '--replay', recording, '--stats'], stdin=subprocess.DEVNULL,
                            capture_output=True, timeout=120)
    text = replay.stderr.decode()
    if replay.returncode != 0 or instructions(text) != recorded or 'replayed to the recording' not in text:
        fail('the replay: status %d, %s' % (replay.returncode, text))
    if replay.stdout != out:
        fail('the replay printed other serial output')
    print('replayed: %d instructions, status 0, the same output' % recorded)

    os.unlink(sock) if os.path.exists(sock) else None
    process = subprocess.Popen([viridian, '--replay', recording, '--qmp', 'unix:%s,server,wait=on' % sock],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = Client(sock)
    for name, arguments in [('system_reset', None), ('system_powerdown', None),
                            ('migrate', {'uri': 'exec:cat > /dev/null'})]:
        reply = client.command(name, arguments)
        if 'error' not in reply:
            fail(name + ' was not refused during a replay: %s' % reply)
    print('during a replay: %s' % reply['error']['desc'])
    _, err = process.communicate(timeout=120)
    if process.returncode != 0:
        fail('the replay with a client: status %d, %s' % (process.returncode, err.decode()))
    replay_commands(viridian, recording, recorded, sock)
    print('replay-qmp: all checks passed')


def wait_for_icount(client, icount):
    for _ in range(600):
        reply = client.command('query-replay')['return']
        if reply['icount'] == icount:
            return reply
        time.sleep(0.05)
    fail('the replay never got to instruction %d (at %s)' % (icount, reply))


def replay_commands(viridian, recording, recorded, sock):
    os.unlink(sock) if os.path.exists(sock) else None
    goto = recorded // 3
    process = subprocess.Popen([viridian, '--replay', recording, '--stats', '--replay-goto', str(goto),
                                '--qmp', 'unix:%s,server,wait=on' % sock],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = Client(sock)
    info = wait_for_icount(client, goto)
    if info['mode'] != 'play' or info['filename'] != recording:
        fail('query-replay: %s' % info)
    if client.command('query-status')['return']['status'] != 'paused':
        fail('--replay-goto did not leave the replay paused')
    print('--replay-goto %d: paused there, query-replay %s' % (goto, info))
    target = recorded - 1000
    if 'error' not in client.command('replay-break', {'icount': goto - 1}):
        fail('a replay-break in the past was not refused')
    if 'return' not in client.command('replay-break', {'icount': target}):
        fail('replay-break failed')
    client.command('cont')
    wait_for_icount(client, target)
    print('replay-break %d: stopped there' % target)
    for seek in (recorded - 50000, recorded - 20000):
        reply = client.command('replay-seek', {'icount': seek})
        if 'return' not in reply:
            fail('replay-seek %d: %s' % (seek, reply))
        wait_for_icount(client, seek)
        print('replay-seek %d: there' % seek)
    reply = client.command('replay-seek', {'icount': 10})
    if 'error' not in reply:
        fail('a seek to before the reboot was not refused')
    print('replay-seek before the reboot: %s' % reply['error']['desc'])
    client.command('cont')
    _, err = process.communicate(timeout=120)
    text = err.decode()
    if process.returncode != 0 or instructions(text) != recorded or 'replayed to the recording' not in text:
        fail('the replay that went back and forth: status %d, %s' % (process.returncode, text))
    print('after seeking back and forth the replay ends as recorded (%d instructions)' % recorded)


main()
