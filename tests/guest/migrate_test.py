#!/usr/bin/env python3
"""Live migration of a Linux guest (docs/snapshots.md "Live migration"): the
Debian guest computes md5sums of `seq` output in a loop; while it does,
QMP migrate sends it over tcp:127.0.0.1 to a second viridian started with
--incoming tcp:..., which finishes the loop. The sums the target prints
must be the ones the host computes for the same input, the source must end
up "postmigrate" and the target must power off with status 0.

Usage: migrate_test.py VIRIDIAN GUEST_DIR. Exits 77 when the guest is not built."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROUNDS = 12
COUNT = 30000
WORKLOAD = ('echo migrate-now; i=1; while [ $i -le %d ]; do echo round $i $(seq 1 %d | md5sum); '
            'i=$((i+1)); done' % (ROUNDS, COUNT))


class Qmp:
    def __init__(self, path, timeout=120):
        deadline = time.time() + 20
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.stream = self.sock.makefile('rb')
        self.events = []
        self.read()  # greeting
        self.execute('qmp_capabilities')

    def read(self):
        line = self.stream.readline()
        if not line:
            raise RuntimeError('the QMP connection closed')
        message = json.loads(line)
        if 'event' in message:
            self.events.append(message)
        return message

    def execute(self, name, **arguments):
        request = {'execute': name}
        if arguments:
            request['arguments'] = arguments
        self.sock.sendall(json.dumps(request).encode())
        while True:
            message = self.read()
            if 'return' in message or 'error' in message:
                return message

    def wait_event(self, name, data):
        while not any(e['event'] == name and e.get('data') == data for e in self.events):
            self.read()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(path, text, process, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        with open(path, errors='replace') as f:
            if text in f.read():
                return True
        if process.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def main():
    viridian, guest = sys.argv[1], sys.argv[2]
    if not (os.access(guest + '/vmlinuz', os.R_OK) and os.access(guest + '/initramfs.cpio.gz', os.R_OK)):
        print('guest not built (%s); run scripts/fetch-guest.sh' % guest)
        return 77
    work = tempfile.mkdtemp(prefix='viridian-migrate-')
    processes = []
    failures = []

    def check(what, condition):
        print('%s - %s' % ('ok' if condition else 'not ok', what))
        if not condition:
            failures.append(what)

    try:
        common = [viridian, '--kernel', guest + '/vmlinuz', '--initrd', guest + '/initramfs.cpio.gz',
                  '--append', 'console=ttyS0 panic=-1 viridian.run="%s"' % WORKLOAD]
        port = free_port()
        target_out = os.path.join(work, 'target.out')
        target = subprocess.Popen(common + ['--incoming', 'tcp:127.0.0.1:%d' % port,
                                            '--qmp', 'unix:%s/target.sock,server,wait=off' % work],
                                  stdin=subprocess.DEVNULL, stdout=open(target_out, 'w'), stderr=subprocess.STDOUT)
        processes.append(target)
        target_qmp = Qmp(work + '/target.sock')
        check('the target waits in "inmigrate"',
              target_qmp.execute('query-status')['return']['status'] == 'inmigrate')

        source_out = os.path.join(work, 'source.out')
        start = time.time()
        source = subprocess.Popen(common + ['--qmp', 'unix:%s/source.sock,server,wait=off' % work],
                                  stdin=subprocess.DEVNULL, stdout=open(source_out, 'w'), stderr=subprocess.STDOUT)
        processes.append(source)
        if not wait_for(source_out, 'migrate-now', source, 150):
            print(open(source_out, errors='replace').read()[-2000:])
            raise RuntimeError('the source guest did not start its workload')
        booted = time.time()
        qmp = Qmp(work + '/source.sock')
        qmp.execute('migrate-set-capabilities', capabilities=[{'capability': 'events', 'state': True}])
        check('migrate replies {}', qmp.execute('migrate', uri='tcp:127.0.0.1:%d' % port) == {'return': {}})
        active = qmp.execute('query-migrate')['return']
        print('# during: %s' % json.dumps(active))
        check('query-migrate reports the migration while it runs',
              active['status'] in ('setup', 'active', 'completed'))
        qmp.wait_event('MIGRATION', {'status': 'completed'})
        info = qmp.execute('query-migrate')['return']
        print('# after: %s' % json.dumps(info))
        check('query-migrate says completed, with transferred bytes and downtime',
              info['status'] == 'completed' and info['ram']['transferred'] > 0 and 'downtime' in info)
        check('the source is left paused (postmigrate)',
              qmp.execute('query-status')['return']['status'] == 'postmigrate')
        rounds_on_source = sum(line.startswith('round ') for line in open(source_out, errors='replace'))
        qmp.execute('quit')
        source.wait(timeout=30)

        status = target.wait(timeout=150)
        output = open(target_out, errors='replace').read()
        check('the target powers off with status 0 (status %d)' % status, status == 0)
        expected = hashlib.md5(''.join('%d\n' % i for i in range(1, COUNT + 1)).encode()).hexdigest()
        sums = [line.split()[2] for line in output.splitlines() if line.startswith('round ')]
        check('the target finishes the loop (%d rounds there, %d on the source)' % (len(sums), rounds_on_source),
              len(sums) + rounds_on_source >= ROUNDS and len(sums) >= 1)
        check('every sum on the target is the host\'s', sums and all(s == expected for s in sums))
        check('the workload ends with status 0', 'viridian-guest: exit status 0' in output)
        print('# boot %.0f s, migration and the rest %.0f s' % (booted - start, time.time() - booted))

        # A stream cut short is refused in one line with status 2.
        saved = os.path.join(work, 'early.snap')
        subprocess.run(common + ['--save-at', '1000000,file:' + saved], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        port = free_port()
        cut = subprocess.Popen(common + ['--incoming', 'tcp:127.0.0.1:%d' % port], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        processes.append(cut)
        for _ in range(100):
            try:
                with socket.create_connection(('127.0.0.1', port)) as s:
                    data = open(saved, 'rb').read()
                    s.sendall(data[:len(data) // 2])
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
        out = cut.communicate(timeout=60)[0].decode(errors='replace')
        check('a truncated stream is refused in one line with status 2 (%d, %r)' % (cut.returncode, out),
              cut.returncode == 2 and out.count('\n') == 1 and 'truncated' in out)
        if failures:
            print(output[-2000:])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        shutil.rmtree(work, ignore_errors=True)
    print('%d failure(s)' % len(failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
