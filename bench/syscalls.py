#!/usr/bin/env python3
"""System-call and process benchmark (docs/benchmarks.md), run by
bench/syscalls.sh.

The default guest (busybox initramfs, one vCPU, 512 MiB) runs, through
viridian.run=, each workload REPEAT times and prints how long each took by
/proc/uptime (the boot is not counted):

  - syscalls: dd if=/dev/zero of=/dev/null bs=1 count=SYSCALL_BYTES, two
    system calls a byte;
  - processes: FORKS times fork and exec of /bin/true from the shell;
  - sysfs: ls -lR /sys to /dev/null (path walks, stat, readdir).

viridian (and, with --baseline, another build of it) and QEMU 7.2 TCG boot
the same kernel one after the other. The figure is the median of the
repeats; the ratio is QEMU's time over the row's, so above 1 is faster.

Usage: syscalls.py BUILD_DIR GUEST_DIR [--baseline DIR] [--repeat N] [--quick]"""
import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile

WORKLOADS = ['syscalls', 'processes', 'sysfs']


def guest_command(repeat, syscall_bytes, forks):
    # No double quotes: the kernel's command line cannot hold them inside
    # viridian.run (as tests/guest/common.sh).
    steps = {
        'syscalls': 'dd if=/dev/zero of=/dev/null bs=1 count=%d 2>/dev/null' % syscall_bytes,
        'processes': 'i=0; while [ $i -lt %d ]; do i=$((i+1)); /bin/true; done' % forks,
        'sysfs': 'ls -lR /sys >/dev/null 2>&1',
    }
    parts = []
    for _ in range(repeat):
        for name in WORKLOADS:
            parts.append("read t0 x </proc/uptime; %s; read t1 x </proc/uptime; "
                         "echo bench-%s $(awk -v a=$t0 -v b=$t1 'BEGIN { print b - a }')" % (steps[name], name))
    return '; '.join(parts)


def command_line(emulator, build, guest, run):
    append = 'console=ttyS0 panic=-1 quiet viridian.run="%s"' % run
    kernel, initrd = os.path.join(guest, 'vmlinuz'), os.path.join(guest, 'initramfs.cpio.gz')
    if emulator == 'viridian':
        return [os.path.join(build, 'viridian'), '--memory', '512M', '--kernel', kernel, '--initrd', initrd,
                '--append', append]
    return ['qemu-system-x86_64', '-machine', 'pc', '-accel', 'tcg', '-m', '512M', '-smp', '1', '-nographic',
            '-no-reboot', '-kernel', kernel, '-initrd', initrd, '-append', append]


def measure(name, argv, work, repeat):
    log_path = os.path.join(work, name.replace(' ', '-') + '.log')
    with open(log_path, 'w') as log:
        try:
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=1800)
        except subprocess.TimeoutExpired:
            sys.exit('syscalls.py: %s did not finish in 30 minutes (%s)' % (name, log_path))
    output = open(log_path, errors='replace').read()
    times = {w: [float(t) for t in re.findall(r'bench-%s ([\d.]+)' % w, output)] for w in WORKLOADS}
    if 'viridian-guest: exit status 0' not in output or any(len(t) != repeat for t in times.values()):
        sys.exit('syscalls.py: %s failed (log %s):\n%s' % (name, log_path, output[-2000:]))
    row = {'name': name}
    row.update({w: statistics.median(t) for w, t in times.items()})
    print('  %-22s ' % name + '  '.join('%s %.2f s' % (w, row[w]) for w in WORKLOADS), flush=True)
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('build')
    parser.add_argument('guest')
    parser.add_argument('--baseline')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    syscall_bytes, forks = (30_000, 200) if args.quick else (300_000, 2000)
    run = guest_command(repeat, syscall_bytes, forks)
    configs = [('viridian', 'viridian', args.build)]
    if args.baseline:
        configs.append(('viridian (baseline)', 'viridian', args.baseline))
    configs.append(('QEMU TCG', 'qemu', None))
    with tempfile.TemporaryDirectory() as work:
        rows = [measure(name, command_line(emulator, build, args.guest, run), work, repeat)
                for name, emulator, build in configs]
    qemu = rows[-1]
    print()
    print('%s, %d host CPUs; %d one-byte dd copies (two system calls each), %d fork+exec of /bin/true, '
          'ls -lR /sys; median of %d.' % (datetime.date.today(), os.cpu_count(), syscall_bytes, forks, repeat))
    print()
    print('| run | ' + ' | '.join('%s s' % w for w in WORKLOADS) + ' | ' +
          ' | '.join('%s vs QEMU' % w for w in WORKLOADS) + ' |')
    print('|---' * (1 + 2 * len(WORKLOADS)) + '|')
    for row in rows:
        print('| %s | ' % row['name'] + ' | '.join('%.2f' % row[w] for w in WORKLOADS) + ' | ' +
              ' | '.join('%.2fx' % (qemu[w] / row[w]) for w in WORKLOADS) + ' |')


if __name__ == '__main__':
    main()
