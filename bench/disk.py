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
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fio_guest import Guest, Qemu, Viridian, random_file  # noqa: E402

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


def run_fio(emulator_class, build, guest, data_template, work):
    data = os.path.join(work, 'data.raw')
    shutil.copyfile(data_template, data)
    if_ide = 'if=ide,' if emulator_class is Qemu else ''
    machine = Guest(emulator_class, build, guest, ['file=%s,format=raw,%sindex=1' % (data, if_ide)], work)
    results = []
    try:
        machine.check('test -b /dev/sdb')
        for name, options in JOBS:
            row = machine.fio(FIO % (DATA_MIB, options), 'read' in name)
            row['job'] = name
            results.append(row)
            print('  %s %-18s %8.1f MiB/s %8.0f IOPS' % (machine.emulator.name, name, row['mib_s'], row['iops']),
                  flush=True)
        machine.poweroff()
    finally:
        machine.console.kill()
    return machine.boot_seconds, results


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
    random_file(source, 1024)
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
            random_file(data, DATA_MIB)
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
