#!/usr/bin/env python3
"""Save, restore and live-migration benchmark (issue 13, "Measured";
docs/benchmarks.md "Save, restore and migration"): viridian and QEMU TCG side
by side, each driven through QMP the same way.

The default guest (guest/vmlinuz + guest/initramfs.cpio.gz) boots with a
viridian.run= command that prints a marker once the guest is where the
scenario wants it; then

  save      QMP migrate to a file: viridian `file:PATH`, QEMU `exec:cat > PATH`
            (QEMU 7.2 has no file: URI); time: see below
  restore   a new process with --incoming file:PATH / -incoming "exec:cat PATH";
            time = process start until query-status says "running"
  live      a target waiting on --incoming / -incoming tcp:127.0.0.1:PORT and
            QMP migrate tcp:... on the source, the guest idle (a sleep loop)
            or busy (a dd loop rewriting 200 MiB of tmpfs); total time,
            downtime, transferred bytes and rounds (dirty-sync-count) from
            query-migrate.
Save and live total times are the script's wall clock from the migrate
command until query-migrate (polled every 20 ms) says completed.

QEMU's migration is throttled to 32 MiB/s by default (max-bandwidth); the
script raises it to 10 GiB/s so that neither emulator is rate-limited.
Both keep their default 300 ms downtime limit.

  bench/snapshot.py [BUILD_DIR] [SCENARIO...]
      scenarios: small (512M save/restore), big (8G with 1 GiB filled,
      save/restore), live-idle, live-busy; default all four.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'guest'))
from migrate_test import Qmp, free_port, wait_for  # noqa: E402  (one QMP client for tests and benches)

KERNEL = os.path.join(ROOT, 'guest', 'vmlinuz')
INITRD = os.path.join(ROOT, 'guest', 'initramfs.cpio.gz')

# The marker is quoted apart so that the kernel's echo of its command line
# does not match it.
READY = "echo bench-rea''dy; "
IDLE = 'while :; do sleep 1; done'
BUSY = 'while :; do dd if=/dev/zero of=/dev/shm/x bs=1M count=200 2>/dev/null; done'


def fill(mib):
    """Guest shell that writes MIB MiB of incompressible data to tmpfs: 16 MiB
    from /dev/urandom repeated (zlib's 32 KiB window never sees the repeat)."""
    if not mib:
        return ''
    return ('dd if=/dev/urandom of=/dev/shm/seed bs=1M count=16 2>/dev/null; i=0; '
            'while [ $i -lt %d ]; do cat /dev/shm/seed; i=$((i+1)); done > /dev/shm/fill; ' % (mib // 16))


def append(run):
    return 'console=ttyS0 panic=-1 viridian.run="%s"' % run


class Emulator:
    """How one emulator is started: `command(memory, run, log, qmp, incoming)`."""

    def __init__(self, name, command, save_uri, restore_uri):
        self.name, self.command, self.save_uri, self.restore_uri = name, command, save_uri, restore_uri


def viridian_command(build):
    def command(memory, run, log, qmp, incoming=None):
        args = [os.path.join(build, 'viridian'), '--memory', memory, '--kernel', KERNEL, '--initrd', INITRD,
                '--append', append(run), '--qmp', 'unix:%s,server,wait=off' % qmp]
        if incoming:
            args += ['--incoming', incoming]
        return args, log  # the console is stdout
    return command


def qemu_command(memory, run, log, qmp, incoming=None):
    args = ['qemu-system-x86_64', '-machine', 'pc', '-accel', 'tcg', '-m', memory, '-smp', '1',
            '-display', 'none', '-kernel', KERNEL, '-initrd', INITRD, '-append', append(run),
            '-serial', 'file:' + log, '-qmp', 'unix:%s,server=on,wait=off' % qmp]
    if incoming:
        args += ['-incoming', incoming]
    return args, log + '.stdout'


class Run:
    def __init__(self, work):
        self.work = work
        self.processes = []

    def start(self, emulator, memory, run, tag, incoming=None):
        log = os.path.join(self.work, tag + '.log')
        qmp = os.path.join(self.work, tag + '.qmp')
        open(log, 'w').close()
        args, out = emulator.command(memory, run, log, qmp, incoming)
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=open(out, 'a'), stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process, Qmp(qmp, timeout=600), log

    def boot(self, emulator, memory, run, tag, marker='bench-ready'):
        process, qmp, log = self.start(emulator, memory, run, tag)
        if not wait_for(log, marker, process, 1800):
            sys.exit('snapshot.py: %s (%s) did not reach %r:\n%s'
                     % (emulator.name, tag, marker, open(log, errors='replace').read()[-1500:]))
        if emulator.name != 'viridian':
            qmp.execute('migrate-set-parameters', **{'max-bandwidth': 10 << 30})
        qmp.execute('migrate-set-capabilities', capabilities=[{'capability': 'events', 'state': True}])
        return process, qmp

    def stop(self, process):
        if process.poll() is None:
            process.kill()
        process.wait()


def migrate(qmp, uri):
    """Runs a migration to its end; returns query-migrate's last reply with
    'wall', the seconds from the command to the completed status as polled
    here (QEMU 7.2 sometimes reports a total-time of 0 for a file)."""
    start = time.time()
    reply = qmp.execute('migrate', uri=uri)
    if 'error' in reply:
        sys.exit('snapshot.py: migrate %s: %s' % (uri, reply['error']))
    while True:
        info = qmp.execute('query-migrate')['return']
        if info.get('status') in ('completed', 'failed', 'cancelled'):
            break
        time.sleep(0.02)
    info['wall'] = time.time() - start
    if info['status'] != 'completed':
        sys.exit('snapshot.py: migrate %s ended %s: %s' % (uri, info['status'], info.get('error-desc')))
    return info


def settled_size(path):
    # QEMU's exec: child may still be writing when the migration completes.
    size = -1
    while size != os.path.getsize(path):
        size = os.path.getsize(path)
        time.sleep(0.3)
    return size


def wait_running(qmp, process, seconds=600):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if qmp.execute('query-status')['return']['status'] == 'running':
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def save_restore(run, emulator, memory, fill_mib, tag):
    guest = fill(fill_mib) + READY + IDLE
    source, qmp = run.boot(emulator, memory, guest, tag + '-src')
    path = os.path.join(run.work, tag + '.snap')
    info = migrate(qmp, emulator.save_uri(path))
    run.stop(source)
    size = settled_size(path)
    start = time.time()
    target, qmp, log = run.start(emulator, memory, guest, tag + '-dst', emulator.restore_uri(path))
    if not wait_running(qmp, target):
        sys.exit('snapshot.py: %s did not run again after the restore:\n%s'
                 % (emulator.name, open(log, errors='replace').read()[-1500:]))
    restore = time.time() - start
    run.stop(target)
    os.unlink(path)
    return {'save': info['wall'], 'size': size / 1e6, 'restore': restore,
            'rounds': info['ram']['dirty-sync-count']}


def live(run, emulator, workload, tag):
    guest = READY + workload
    port = free_port()
    target, target_qmp, target_log = run.start(emulator, '512M', guest, tag + '-dst', 'tcp:127.0.0.1:%d' % port)
    source, qmp = run.boot(emulator, '512M', guest, tag + '-src')
    time.sleep(3)  # the workload under way
    info = migrate(qmp, 'tcp:127.0.0.1:%d' % port)
    if not wait_running(target_qmp, target):
        sys.exit('snapshot.py: %s\'s target did not run after the migration:\n%s'
                 % (emulator.name, open(target_log, errors='replace').read()[-1500:]))
    run.stop(source)
    run.stop(target)
    return {'total': info['wall'], 'downtime': info['downtime'],
            'transferred': info['ram']['transferred'] / 1e6, 'rounds': info['ram']['dirty-sync-count']}


def main():
    args = sys.argv[1:]
    build = args.pop(0) if args and not args[0].startswith(('small', 'big', 'live')) else 'build'
    scenarios = args or ['small', 'big', 'live-idle', 'live-busy']
    for f in (os.path.join(build, 'viridian'), KERNEL, INITRD):
        if not os.path.exists(f):
            sys.exit('snapshot.py: %s is missing (build, and run scripts/fetch-guest.sh)' % f)
    emulators = [Emulator('viridian', viridian_command(build), lambda p: 'file:' + p, lambda p: 'file:' + p),
                 Emulator('QEMU TCG', qemu_command, lambda p: 'exec:cat > ' + p, lambda p: 'exec:cat ' + p)]
    work = tempfile.mkdtemp(prefix='viridian-snapbench-')
    run = Run(work)
    print('save, restore and live migration, %s, %d host CPUs, load average %.1f'
          % (time.strftime('%F'), os.cpu_count(), os.getloadavg()[0]))
    try:
        for scenario in scenarios:
            results = {}
            for e in emulators:
                if scenario == 'small':
                    results[e.name] = save_restore(run, e, '512M', 0, 'small-' + e.name[:4])
                elif scenario == 'big':
                    results[e.name] = save_restore(run, e, '8G', 1024, 'big-' + e.name[:4])
                elif scenario in ('live-idle', 'live-busy'):
                    results[e.name] = live(run, e, IDLE if scenario == 'live-idle' else BUSY,
                                           scenario + '-' + e.name[:4])
                else:
                    sys.exit('snapshot.py: unknown scenario ' + scenario)
                print('# %s %s: %s' % (scenario, e.name, results[e.name]), flush=True)
            v, q = results['viridian'], results['QEMU TCG']
            if scenario in ('small', 'big'):
                title = {'small': 'booted 512 MiB guest', 'big': '8 GiB guest, 1 GiB of tmpfs filled'}[scenario]
                columns = [('save (s)', 'save', '%.2f'), ('file (MB)', 'size', '%.1f'),
                           ('restore (s)', 'restore', '%.2f'), ('rounds', 'rounds', '%d')]
            else:
                title = '512 MiB guest, live over tcp:127.0.0.1, ' + scenario[5:]
                columns = [('total (s)', 'total', '%.2f'), ('downtime (ms)', 'downtime', '%d'),
                           ('sent (MB)', 'transferred', '%.1f'), ('rounds', 'rounds', '%d')]
            print('\n%s' % title)
            print('%-16s' % '' + ''.join('%14s' % c[0] for c in columns))
            for name, r in (('viridian', v), ('QEMU TCG', q), ('viridian/QEMU', None)):
                cells = []
                for _, key, fmt in columns:
                    if r is not None:
                        cells.append(fmt % r[key])
                    else:
                        cells.append('%.2f' % (v[key] / q[key]) if q[key] else '-')
                print('%-16s' % name + ''.join('%14s' % c for c in cells))
            sys.stdout.flush()
    finally:
        for process in run.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
