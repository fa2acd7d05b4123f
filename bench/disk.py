#!/usr/bin/env python3
"""Disk I/O benchmark (docs/benchmarks.md "Disk I/O"), run by bench/disk.sh.

1. fio inside the Debian disk guest (guest/debian.raw from
   scripts/make-debian-disk.sh), on viridian's PIIX IDE and on QEMU TCG's
   (`-accel tcg`, its default i440FX/PIIX3 machine, `if=ide`), one after the
   other: each boots a copy of the root disk through SeaBIOS, with a second,
   raw 256 MiB data disk as /dev/sdb, logs in on the serial console and runs
   sequential 1 MiB writes and reads and random 4 KiB reads at queue depth 1
   and 32 (libaio, direct=1) on /dev/sdb. Per job: MiB/s, IOPS, the
   emulator's host CPU time per MiB (/proc/PID/stat, all its threads), and
   for viridian the port and MMIO accesses and interrupts per MiB (--stats
   counters read with SIGUSR1 before and after the job).
2. viridian-img convert against qemu-img convert: a 1 GiB raw image full of
   data to a dynamic VHDX and back, wall and CPU seconds.

Usage: disk.py BUILD_DIR GUEST_DIR [fio|convert ...]"""
import datetime
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'guest'))
from serial_console import SerialConsole  # noqa: E402

DATA_MIB = 256
# name, fio options; sizes keep each job to some seconds on the emulators.
JOBS = [
    ('seq write 1M qd1', '--rw=write --bs=1M --iodepth=1 --io_size=128M'),
    ('seq write 1M qd32', '--rw=write --bs=1M --iodepth=32 --io_size=128M'),
    ('seq read 1M qd1', '--rw=read --bs=1M --iodepth=1 --io_size=128M'),
    ('seq read 1M qd32', '--rw=read --bs=1M --iodepth=32 --io_size=128M'),
    ('rand read 4K qd1', '--rw=randread --bs=4k --iodepth=1 --io_size=16M'),
    ('rand read 4K qd32', '--rw=randread --bs=4k --iodepth=32 --io_size=16M'),
]
FIO = ('fio --name=bench --filename=/dev/sdb --direct=1 --ioengine=libaio --size=%dM --runtime=60 '
       '--output-format=terse --terse-version=3 %s')


def cpu_seconds(pid):
    """utime + stime of PID and all its threads (fields 14 and 15)."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class Viridian:
    name = 'viridian'

    def __init__(self, build, root, data, work):
        self.stderr_path = os.path.join(work, 'viridian.stderr')
        self.console = SerialConsole([os.path.join(build, 'viridian'), '--memory', '1G', '--stats',
                                      '--drive', 'file=%s,format=raw,index=0' % root,
                                      '--drive', 'file=%s,format=raw,index=1' % data],
                                     os.path.join(work, 'viridian.console'), self.stderr_path)

    def counters(self):
        """The --stats counters now: SIGUSR1, then the block it prints."""
        with open(self.stderr_path) as f:
            seen = f.read().count('interrupts:')
        self.console.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(self.stderr_path) as f:
                text = f.read()
            if text.count('interrupts:') > seen:
                block = text[text.rfind('instructions:'):]
                return {k: int(v) for k, v in re.findall(r'^(port accesses|mmio accesses|interrupts): (\d+)$',
                                                         block, re.M)}
            time.sleep(0.1)
        raise RuntimeError('viridian printed no --stats after SIGUSR1')


class Qemu:
    name = 'QEMU TCG'

    def __init__(self, build, root, data, work):
        self.console = SerialConsole(['qemu-system-x86_64', '-accel', 'tcg', '-m', '1G', '-display', 'none',
                                      '-serial', 'stdio', '-monitor', 'none',
                                      '-drive', 'file=%s,format=raw,if=ide,index=0' % root,
                                      '-drive', 'file=%s,format=raw,if=ide,index=1' % data],
                                     os.path.join(work, 'qemu.console'))

    def counters(self):
        return None


def run_fio(emulator_class, build, guest, data_template, work):
    root = os.path.join(work, 'root.raw')
    data = os.path.join(work, 'data.raw')
    subprocess.run(['cp', '--sparse=always', os.path.join(guest, 'debian.raw'), root], check=True)
    shutil.copyfile(data_template, data)
    emulator = emulator_class(build, root, data, work)
    console = emulator.console
    results = []
    try:
        start = time.monotonic()
        console.login(1800)
        boot_seconds = time.monotonic() - start
        output, status = console.run('test -b /dev/sdb && fio --version')
        if status != 0:
            raise RuntimeError('%s: no /dev/sdb or no fio in the guest:\n%s' % (emulator.name, output))
        for name, options in JOBS:
            before_counters = emulator.counters()
            before_cpu = cpu_seconds(console.process.pid)
            output, status = console.run(FIO % (DATA_MIB, options), 600)
            cpu = cpu_seconds(console.process.pid) - before_cpu
            after_counters = emulator.counters()
            line = next((l for l in output.splitlines() if l.startswith('3;')), None)
            if status != 0 or not line:
                raise RuntimeError('%s: fio failed for %s:\n%s' % (emulator.name, name, output))
            f = line.split(';')
            # terse v3: read io KiB, bandwidth, IOPS, runtime ms at 6-9; write at 47-50 (1-based).
            kib, iops, ms = (int(f[5]), float(f[7]), int(f[8])) if 'read' in name else \
                (int(f[46]), float(f[48]), int(f[49]))
            mib = kib / 1024
            row = {'job': name, 'mib_s': mib / (ms / 1000) if ms else 0, 'iops': iops,
                   'cpu_ms_per_mib': 1000 * cpu / mib}
            if before_counters:
                for key in before_counters:
                    row[key] = (after_counters[key] - before_counters[key]) / mib
            results.append(row)
            print('  %s %-18s %8.1f MiB/s %8.0f IOPS' % (emulator.name, name, row['mib_s'], iops), flush=True)
        console.send('poweroff\n')
        console.wait(300)
    finally:
        console.kill()
    return boot_seconds, results


def timed(argv):
    """Runs ARGV; returns (wall seconds, CPU seconds of it and its children)."""
    start = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError('%s failed (status %d)' % (' '.join(argv), status))
    return time.monotonic() - start, usage.ru_utime + usage.ru_stime


def bench_convert(build, work):
    source = os.path.join(work, 'source.raw')
    with open(source, 'wb') as f:
        for _ in range(1024):
            f.write(os.urandom(1 << 20))
    img = os.path.join(build, 'viridian-img')
    rows = []
    for label, argv in [
        ('viridian-img raw->vhdx', [img, 'convert', '-f', 'raw', '-O', 'vhdx', source, '%s/v.vhdx' % work]),
        ('qemu-img raw->vhdx', ['qemu-img', 'convert', '-f', 'raw', '-O', 'vhdx', source, '%s/q.vhdx' % work]),
        ('viridian-img vhdx->raw', [img, 'convert', '-f', 'vhdx', '-O', 'raw', '%s/v.vhdx' % work,
                                    '%s/v.raw' % work]),
        ('qemu-img vhdx->raw', ['qemu-img', 'convert', '-f', 'vhdx', '-O', 'raw', '%s/q.vhdx' % work,
                                '%s/q.raw' % work]),
    ]:
        wall, cpu = timed(argv)
        rows.append((label, wall, cpu))
    for name in ['v.raw', 'q.raw']:
        if subprocess.run(['cmp', '-s', source, os.path.join(work, name)]).returncode != 0:
            raise RuntimeError('%s does not read back as the source' % name)
    for name in os.listdir(work):
        os.remove(os.path.join(work, name))
    return rows


def main():
    build, guest = sys.argv[1], sys.argv[2]
    parts = sys.argv[3:] or ['fio', 'convert']
    work = tempfile.mkdtemp(prefix='viridian-bench-disk-')
    print('disk benchmark, %s, %d host CPUs, load average %.1f at the start' %
          (datetime.date.today(), os.cpu_count(), os.getloadavg()[0]), flush=True)
    try:
        if 'fio' in parts:
            data = os.path.join(work, 'data-template.raw')
            with open(data, 'wb') as f:
                for _ in range(DATA_MIB):
                    f.write(os.urandom(1 << 20))
            table = {}
            for emulator_class in (Viridian, Qemu):
                run_dir = os.path.join(work, emulator_class.__name__)
                os.mkdir(run_dir)
                boot, rows = run_fio(emulator_class, build, guest, data, run_dir)
                print('%s: login after %.0f s' % (emulator_class.name, boot), flush=True)
                table[emulator_class.name] = rows
                shutil.rmtree(run_dir)
            print('\nfio on /dev/sdb (raw, %d MiB), libaio, direct=1' % DATA_MIB)
            print('| job | viridian MiB/s | QEMU MiB/s | viridian IOPS | QEMU IOPS | viridian CPU ms/MiB '
                  '| QEMU CPU ms/MiB | viridian port exits/MiB | MMIO exits/MiB | interrupts/MiB |')
            print('|---|---|---|---|---|---|---|---|---|---|')
            for v, q in zip(table['viridian'], table['QEMU TCG']):
                print('| %s | %.1f | %.1f | %.0f | %.0f | %.1f | %.1f | %.0f | %.0f | %.1f |' %
                      (v['job'], v['mib_s'], q['mib_s'], v['iops'], q['iops'], v['cpu_ms_per_mib'],
                       q['cpu_ms_per_mib'], v['port accesses'], v['mmio accesses'], v['interrupts']))
        if 'convert' in parts:
            rows = bench_convert(build, work)
            print('\nconvert, 1 GiB of random data (files in the host page cache)')
            print('| conversion | wall s | CPU s | MiB/s |')
            print('|---|---|---|---|')
            for label, wall, cpu in rows:
                print('| %s | %.2f | %.2f | %.0f |' % (label, wall, cpu, 1024 / wall))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print('load average %.1f at the end' % os.getloadavg()[0])
    return 0


if __name__ == '__main__':
    sys.exit(main())
