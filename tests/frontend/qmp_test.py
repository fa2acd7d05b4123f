#!/usr/bin/env python3
"""QMP end to end (docs/qmp.md): one script of requests runs against viridian
(--qmp unix:...) and, when it is installed, against qemu-system-x86_64 with
the same tiny multiboot guest; the SHAPES of the replies and events (keys and
value types, not values) must match. viridian's own answers are checked for
their values too: stop/cont change query-status, system_reset sends RESET,
quit sends SHUTDOWN and ends the process with status 0. Bad JSON, unknown
commands and wrong arguments must get errors, never a crash or a hang.

Usage: qmp_test.py VIRIDIAN GUEST_ELF [--no-qemu]"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TIMEOUT = 20  # seconds for any one answer

# (name, bytes to send, events to wait for after the reply). Each request
# carries an id, so the reply can be told from errors for earlier bad input.
SCRIPT = [
    ('capabilities', {'execute': 'qmp_capabilities'}, []),
    ('bad JSON', '{"execute": }', []),
    ('not an object', '[1, 2]', []),
    ('unknown command', {'execute': 'no-such-command'}, []),
    ('unexpected argument', {'execute': 'stop', 'arguments': {'now': True}}, []),
    ('arguments not an object', {'execute': 'query-status', 'arguments': [1]}, []),
    ('execute not a string', {'execute': 42}, []),
    ('query-version', {'execute': 'query-version'}, []),
    ('query-status running', {'execute': 'query-status'}, []),
    ('stop', {'execute': 'stop'}, []),
    ('query-status paused', {'execute': 'query-status'}, []),
    ('cont', {'execute': 'cont'}, []),
    ('query-status resumed', {'execute': 'query-status'}, []),
    ('query-cpus-fast', {'execute': 'query-cpus-fast'}, []),
    # Block devices (docs/qmp.md "Block devices"): a raw disk (ide0-hd0) and
    # a CD-ROM drive (ide1-cd0) with a.iso; b.iso goes in and out. The
    # tray ends closed on a disc, as the migration below expects. They come
    # before system_reset: after it QEMU's SeaBIOS resets the machine again
    # at a time of its own, and a reset there closes an open tray silently
    # (a close-tray then sends no DEVICE_TRAY_MOVED).
    ('query-block', {'execute': 'query-block'}, []),
    ('eject a disk', {'execute': 'eject', 'arguments': {'device': 'ide0-hd0'}}, []),
    ('eject unknown', {'execute': 'eject', 'arguments': {'device': 'nope'}}, []),
    ('eject neither', {'execute': 'eject', 'arguments': {}}, []),
    ('blockdev-open-tray', {'execute': 'blockdev-open-tray', 'arguments': {'device': 'ide1-cd0'}},
     ['DEVICE_TRAY_MOVED']),
    ('query-block tray open', {'execute': 'query-block'}, []),
    ('blockdev-close-tray', {'execute': 'blockdev-close-tray', 'arguments': {'device': 'ide1-cd0'}},
     ['DEVICE_TRAY_MOVED']),
    ('blockdev-close-tray again', {'execute': 'blockdev-close-tray', 'arguments': {'device': 'ide1-cd0'}}, []),
    ('eject', {'execute': 'eject', 'arguments': {'device': 'ide1-cd0'}}, ['DEVICE_TRAY_MOVED']),
    ('query-block ejected', {'execute': 'query-block'}, []),
    ('change-medium missing file', {'execute': 'blockdev-change-medium',
                                    'arguments': {'device': 'ide1-cd0', 'filename': 'WORK/none.iso'}}, []),
    ('change-medium unknown format', {'execute': 'blockdev-change-medium',
                                      'arguments': {'device': 'ide1-cd0', 'filename': 'WORK/b.iso',
                                                    'format': 'foo'}}, []),
    ('change-medium into the open tray', {'execute': 'blockdev-change-medium',
                                          'arguments': {'device': 'ide1-cd0', 'filename': 'WORK/b.iso',
                                                        'format': 'raw'}}, ['DEVICE_TRAY_MOVED']),
    ('query-block changed', {'execute': 'query-block'}, []),
    ('change-medium a disk', {'execute': 'blockdev-change-medium',
                              'arguments': {'device': 'ide0-hd0', 'filename': 'WORK/b.iso', 'format': 'raw',
                                            'read-only-mode': 'read-only'}}, []),
    ('change-medium back', {'execute': 'blockdev-change-medium',
                            'arguments': {'id': 'QDEV', 'filename': 'WORK/a.iso', 'format': 'raw'}},
     ['DEVICE_TRAY_MOVED:false']),
    ('blockdev-remove-medium by device', {'execute': 'blockdev-remove-medium',
                                          'arguments': {'device': 'ide1-cd0'}}, []),
    ('blockdev-remove-medium tray shut', {'execute': 'blockdev-remove-medium', 'arguments': {'id': 'QDEV'}}, []),
    ('query-block at the end', {'execute': 'query-block'}, []),
    ('system_reset', {'execute': 'system_reset'}, ['RESET']),
    ('query-status after reset', {'execute': 'query-status'}, []),
    ('system_powerdown', {'execute': 'system_powerdown'}, ['POWERDOWN']),
    # Migration (docs/snapshots.md): QEMU 7.2 sends MIGRATION events only
    # with the "events" capability; its exec: URI is compared, file: (which
    # QEMU 7.2 does not have) is viridian's alone. WORK is the test's folder.
    ('query-migrate before', {'execute': 'query-migrate'}, []),
    ('migrate-set-capabilities', {'execute': 'migrate-set-capabilities',
                                  'arguments': {'capabilities': [{'capability': 'events', 'state': True}]}}, []),
    ('migrate bad uri', {'execute': 'migrate', 'arguments': {'uri': 'nfs:x'}}, []),
    ('migrate resume', {'execute': 'migrate', 'arguments': {'uri': 'exec:true', 'resume': True}}, []),
    ('migrate exec', {'execute': 'migrate', 'arguments': {'uri': 'exec:cat > WORK/exec.snap'}},
     ['MIGRATION:completed']),
    ('query-migrate completed', {'execute': 'query-migrate'}, []),
    ('query-status postmigrate', {'execute': 'query-status'}, []),
    # QEMU 7.2 sends "completed" before its migration thread has cleaned
    # up: a migrate right after it may start a new migration that fails
    # ("duplicate yank instance"), a cont may get "Migration is not
    # finalized yet". These three are viridian's alone.
    ('migrate again', {'execute': 'migrate', 'arguments': {'uri': 'exec:true'}}, [], 'viridian'),
    ('migrate_cancel after', {'execute': 'migrate_cancel'}, [], 'viridian'),
    ('cont after migrate', {'execute': 'cont'}, ['RESUME'], 'viridian'),
    ('migrate file', {'execute': 'migrate', 'arguments': {'uri': 'file:WORK/qmp.snap'}},
     ['MIGRATION:completed'], 'viridian'),
    ('cont after file', {'execute': 'cont'}, ['RESUME'], 'viridian'),
    ('quit', {'execute': 'quit'}, ['SHUTDOWN']),
]
# Steps whose events come in an order of their own (QEMU counts its passes
# differently): the distinct shapes are compared, not their sequence.
UNORDERED = {'migrate exec'}
# Steps whose error texts are QEMU's word for word.
SAME_ERROR_TEXT = {'eject a disk', 'eject unknown', 'eject neither', 'change-medium missing file',
                   'change-medium unknown format', 'change-medium a disk', 'blockdev-remove-medium by device'}
# QEMU prints a double that happens to be whole as an integer ("mbps": 0,
# which its statistics are right after "completed"): int and number are
# one type here.
LOOSE_NUMBERS = {'query-migrate completed'}


def shape(value):
    """Keys and value types; lists by the shapes of their distinct elements."""
    if isinstance(value, dict):
        return {key: shape(v) for key, v in sorted(value.items())}
    if isinstance(value, list):
        shapes = []
        for element in value:
            s = shape(element)
            if s not in shapes:
                shapes.append(s)
        return shapes
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, int):
        return 'int'
    if isinstance(value, float):
        return 'number'
    if isinstance(value, str):
        return 'string'
    return 'null'


class Client:
    def __init__(self, path):
        deadline = time.time() + TIMEOUT
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(TIMEOUT)
        self.buffer = b''

    def read(self):
        """One message, or None at the end of the stream."""
        while b'\n' not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b'\n', 1)
        return json.loads(line)

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)


def event_key(message):
    data = message.get('data', {})
    if 'tray-open' in data:
        return message.get('event', '') + ':' + ('true' if data['tray-open'] else 'false')
    return message.get('event', '') + (':' + data['status'] if 'status' in data else '')


def run_script(command, path, work, who, qdev=None):
    """Runs SCRIPT against the process `command` serving QMP on `path`.
    Returns (list of (step, messages)), exit status."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    steps = []
    try:
        client = Client(path)
        steps.append(('greeting', [client.read()]))
        for number, (name, request, events, *only) in enumerate(SCRIPT):
            if only and only[0] != who:
                continue
            sync_id = 'step-%d' % number
            if isinstance(request, dict):
                request = json.loads(json.dumps(request).replace('WORK', work).replace('QDEV', qdev or ''))
                client.send(json.dumps(dict(request, id=sync_id)))
                sync = None
            else:  # bad input: a well-formed request after it tells where its errors end
                client.send(request)
                sync = {'execute': 'query-version', 'id': sync_id}
                client.send(json.dumps(sync))
            messages = []
            while True:
                try:
                    message = client.read()
                except socket.timeout:
                    raise RuntimeError('%s: no reply in %d s (so far: %s)' % (name, TIMEOUT, messages))
                if message is None:
                    if who == 'qemu' and 'migrate exec' in dict(steps):
                        # QEMU 7.2 sometimes ends the process after a
                        # migration of this guest, with no message; the
                        # steps it answered are compared.
                        print('# QEMU closed the connection at %s, after the migration' % name)
                        process.kill()
                        return steps, None, ''
                    raise RuntimeError('%s: the connection closed before the reply' % name)
                if message.get('id') == sync_id:
                    if sync is None:
                        messages.append(message)
                    break
                messages.append(message)
            # QEMU 7.2 sends these events before the reply; wait for any
            # that have not come yet.
            def seen(event, message):
                return event in (message.get('event'), event_key(message))
            waiting = [e for e in events if not any(seen(e, m) for m in messages)]
            while waiting:
                try:
                    message = client.read()
                except socket.timeout:
                    raise RuntimeError('%s: no %s in %d s (so far: %s)' % (name, waiting, TIMEOUT, messages))
                if message is None:
                    if who == 'qemu' and 'migrate exec' in dict(steps):
                        print('# QEMU closed the connection at %s, after the migration' % name)
                        process.kill()
                        return steps, None, ''
                    raise RuntimeError('%s: the connection closed before %s' % (name, waiting))
                messages.append(message)
                waiting = [e for e in waiting if not seen(e, message)]
            steps.append((name, messages))
            if name == 'query-block' and qdev is None:
                # QDEV: the CD-ROM drive's QOM path, which QEMU's and
                # viridian's may number apart.
                blocks = [m for m in messages if 'return' in m][0]['return']
                qdev = [b['qdev'] for b in blocks if b['device'] == 'ide1-cd0'][0]
        # After quit the server closes the connection and the process ends.
        rest = client.read()
        steps.append(('end of stream', [] if rest is None else [rest]))
        status = process.wait(timeout=TIMEOUT)
    except Exception:
        if process.poll() is None:
            process.kill()
        print('# %s stderr: %s' % (who, process.stderr.read().decode(errors='replace')[-1000:]))
        raise
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return steps, status, process.stderr.read().decode(errors='replace')


def collapse(messages):
    """Shapes of the messages, consecutive repeats folded (QEMU's parser can
    answer one bad value with several errors, viridian with one). RESET
    events the guest caused are left out: QEMU's firmware (SeaBIOS) resets
    the machine itself while it starts, at times of its own; viridian has
    no firmware to do so."""
    shapes = []
    for message in messages:
        if 'QMP' in message:
            # viridian offers no capabilities (no "oob"; docs/qmp.md): only
            # that the list is there is compared.
            message = json.loads(json.dumps(message))
            message['QMP']['capabilities'] = []
        if message.get('event') == 'RESET' and message.get('data', {}).get('guest'):
            continue
        s = shape(message)
        if not shapes or shapes[-1] != s:
            shapes.append(s)
    return shapes


def main():
    viridian, guest = sys.argv[1], sys.argv[2]
    use_qemu = '--no-qemu' not in sys.argv[3:]
    work = tempfile.mkdtemp(prefix='viridian-qmp-')
    failures = []

    def check(what, condition):
        print('%s - %s' % ('ok' if condition else 'not ok', what))
        if not condition:
            failures.append(what)

    try:
        # The drives: a raw disk and two "discs" with a pattern of their own.
        for name, size, byte in (('disk.raw', 4 << 20, 0), ('a.iso', 1 << 20, 0xA5), ('b.iso', 2 << 20, 0xB6)):
            with open(os.path.join(work, name), 'wb') as f:
                f.write(bytes([byte]) * size)
        drives = ['file=%s/disk.raw,format=raw,index=0' % work,
                  'file=%s/a.iso,format=raw,index=2,media=cdrom' % work]
        path = os.path.join(work, 'viridian.sock')
        ours, status, stderr = run_script(
            [viridian, '--kernel', guest, '--qmp', 'unix:%s,server,wait=off' % path] +
            [arg for d in drives for arg in ('--drive', d)], path, work, 'viridian')
        by_step = dict(ours)
        check('viridian exits 0 after quit (status %d, stderr %r)' % (status, stderr[-300:]), status == 0)
        check('the greeting names viridian', 'viridian' in by_step['greeting'][0]['QMP']['version']['package'])

        def reply(step):
            return [m for m in by_step[step] if 'return' in m or 'error' in m][-1]

        def events(step):
            return [m['event'] for m in by_step[step] if 'event' in m]

        for step in ('bad JSON', 'not an object', 'unknown command', 'unexpected argument',
                     'arguments not an object', 'execute not a string'):
            errors = [m for m in by_step[step] if 'error' in m]
            check('%s gets an error' % step, len(errors) >= 1)
        check('an unknown command is CommandNotFound',
              reply('unknown command')['error']['class'] == 'CommandNotFound')
        check('query-status says running', reply('query-status running')['return']['status'] == 'running')
        check('stop sends STOP before its reply', [list(m)[0] for m in by_step['stop']] == ['timestamp', 'return']
              and events('stop') == ['STOP'])
        check('quit sends SHUTDOWN before its reply', [list(m)[0] for m in by_step['quit']] == ['timestamp', 'return'])
        check('query-status says paused after stop', reply('query-status paused')['return'] ==
              {'status': 'paused', 'singlestep': False, 'running': False})
        check('cont sends RESUME', events('cont') == ['RESUME'])
        check('query-status says running after cont', reply('query-status resumed')['return']['running'] is True)
        check('query-cpus-fast lists one x86_64 vCPU', len(reply('query-cpus-fast')['return']) == 1 and
              reply('query-cpus-fast')['return'][0]['target'] == 'x86_64')
        reset = [m for m in by_step['system_reset'] if m.get('event') == 'RESET']
        check('system_reset sends RESET (host-qmp-system-reset)',
              reset and reset[0]['data'] == {'guest': False, 'reason': 'host-qmp-system-reset'})
        check('system_powerdown sends POWERDOWN', events('system_powerdown') == ['POWERDOWN'])
        shutdown = [m for m in by_step['quit'] if m.get('event') == 'SHUTDOWN']
        check('quit sends SHUTDOWN (host-qmp-quit) once',
              len(shutdown) == 1 and
              shutdown[0]['data'] == {'guest': False, 'reason': 'host-qmp-quit'})
        check('the connection closes after quit', by_step['end of stream'] == [])
        blocks = reply('query-block')['return']
        check('query-block lists the disk and the CD-ROM drive',
              [(b['device'], b['removable'], b['inserted']['ro']) for b in blocks] ==
              [('ide0-hd0', False, False), ('ide1-cd0', True, True)] and blocks[1]['tray_open'] is False)
        check('eject refuses a disk', reply('eject a disk')['error']['desc'] == "Device 'ide0-hd0' is not removable")
        check('eject of an unknown device is DeviceNotFound',
              reply('eject unknown')['error']['class'] == 'DeviceNotFound')
        check('blockdev-open-tray sends DEVICE_TRAY_MOVED (open) before its reply',
              list(map(event_key, by_step['blockdev-open-tray'])) == ['DEVICE_TRAY_MOVED:true', ''])
        check('query-block shows the tray open', reply('query-block tray open')['return'][1]['tray_open'] is True)
        check('closing a closed tray sends nothing', events('blockdev-close-tray again') == [])
        ejected = reply('query-block ejected')['return'][1]
        check('after eject the tray is open and empty', ejected['tray_open'] is True and 'inserted' not in ejected)
        check('a missing file is one error, QEMU\'s text',
              reply('change-medium missing file')['error']['desc'].startswith("Could not open '%s/none.iso'" % work))
        changed = reply('query-block changed')['return'][1]
        check('blockdev-change-medium puts b.iso in and closes the tray',
              changed['tray_open'] is False and changed['inserted']['file'] == '%s/b.iso' % work and
              changed['inserted']['image']['virtual-size'] == 2 << 20)
        check('change-medium back opens and closes the tray',
              list(map(event_key, by_step['change-medium back'])) ==
              ['DEVICE_TRAY_MOVED:true', 'DEVICE_TRAY_MOVED:false', ''])
        check('blockdev-remove-medium wants the tray open',
              'is not open' in reply('blockdev-remove-medium tray shut')['error']['desc'])
        check('query-migrate is {} before a migration', reply('query-migrate before')['return'] == {})
        check('migrate sends MIGRATION setup, active, completed and STOP',
              [k for k in map(event_key, by_step['migrate exec']) if k.startswith(('MIGRATION:', 'STOP'))] ==
              ['MIGRATION:setup', 'MIGRATION:active', 'STOP', 'MIGRATION:completed'])
        done = reply('query-migrate completed')['return']
        check('query-migrate reports the completed migration',
              done['status'] == 'completed' and done['ram']['transferred'] == os.path.getsize(work + '/exec.snap'))
        check('the source is postmigrate', reply('query-status postmigrate')['return']['status'] == 'postmigrate')
        check('a postmigrate source refuses another migration',
              'previous migration' in reply('migrate again')['error']['desc'])
        check('migrate to file: completes', 'MIGRATION:completed' in map(event_key, by_step['migrate file']))
        # What QMP migrate wrote starts a machine that runs on.
        restored = subprocess.run([viridian, '--kernel', guest, '--incoming', 'file:%s/qmp.snap' % work,
                                   '--max-instructions', '2000000'] +
                                  [arg for d in drives for arg in ('--drive', d)], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=TIMEOUT)
        check('--incoming file: of the QMP migration runs on (%r)' % restored.stderr.decode()[:200],
              b'instruction limit' in restored.stderr)

        qemu = shutil.which('qemu-system-x86_64')
        if not use_qemu or not qemu:
            print('# qemu-system-x86_64 not found: the shapes are not compared with QEMU')
        else:
            path = os.path.join(work, 'qemu.sock')
            theirs, status, stderr = run_script(
                [qemu, '-machine', 'pc', '-accel', 'tcg', '-display', 'none', '-nodefaults', '-m', '128',
                 '-kernel', guest, '-qmp', 'unix:%s,server,wait=off' % path] +
                [arg for d in drives for arg in ('-drive', d + ',if=ide')], path, work, 'qemu')
            if status is not None:
                check('QEMU exits 0 after quit (status %d, stderr %r)' % (status, stderr[-300:]), status == 0)
            theirs = dict(theirs)
            for step, mine in ours:
                if step not in theirs:
                    continue  # viridian's alone
                qemus = theirs[step]
                if step in UNORDERED:
                    same = set(map(json.dumps, collapse(mine))) == set(map(json.dumps, collapse(qemus)))
                elif step in LOOSE_NUMBERS:
                    same = json.dumps(collapse(mine)).replace('"int"', '"number"') == \
                        json.dumps(collapse(qemus)).replace('"int"', '"number"')
                else:
                    same = collapse(mine) == collapse(qemus)
                check('%s: the same shapes as QEMU' % step, same)
                if step in SAME_ERROR_TEXT:
                    texts = [[m['error']['desc'] for m in messages if 'error' in m] for messages in (mine, qemus)]
                    check('%s: the same error text as QEMU (%r)' % (step, texts), texts[0] == texts[1])
                if not same:
                    print('#   viridian: %s' % json.dumps(mine))
                    print('#   QEMU:     %s' % json.dumps(qemus))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print('%d failure(s)' % len(failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
