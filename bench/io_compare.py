#!/usr/bin/env python3
"""The emulated-against-enlightened I/O report (issue 15, docs/io-comparison.md),
run by bench/io-compare.sh.

One Debian disk guest (guest/debian.raw), one raw data image of random
bytes, copied for each disk: viridian boots with one copy on its PIIX IDE
(ata_piix) and one on its synthetic SCSI controller (storvsp; hv_storvsc in
the guest), then QEMU 7.2 TCG boots with one copy on its IDE and one on
virtio-blk. Each fio job runs on the two disks of a boot one after the
other (libaio, direct=1, time-based). bench/fio_guest.py takes the
figures; this file prints them as markdown tables and draws SVG plots
with gnuplot.

Usage: io_compare.py BUILD_DIR GUEST_DIR [--from-json FILE] [--quick] [--runtime S] [--svg-dir DIR]
                     [--json FILE] [--perf DIR [--perf-job NAME]...] [--only viridian|qemu]"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fio_guest import Guest, Qemu, Viridian, random_file, remove_tree  # noqa: E402

DATA_MIB = 256
# name, fio options, reads?
JOBS = [
    ('seq read 1M qd1', '--rw=read --bs=1M --iodepth=1', True),
    ('seq read 1M qd32', '--rw=read --bs=1M --iodepth=32', True),
    ('seq write 1M qd1', '--rw=write --bs=1M --iodepth=1', False),
    ('seq write 1M qd32', '--rw=write --bs=1M --iodepth=32', False),
    ('rand read 4K qd1', '--rw=randread --bs=4k --iodepth=1', True),
    ('rand read 4K qd32', '--rw=randread --bs=4k --iodepth=32', True),
    ('rand write 4K qd1', '--rw=randwrite --bs=4k --iodepth=1', False),
    ('rand write 4K qd32', '--rw=randwrite --bs=4k --iodepth=32', False),
]
FIO = ('fio --name=bench --filename=%s --direct=1 --ioengine=libaio --size=%dM --runtime=%d --time_based '
       '--output-format=terse --terse-version=3 %s')
# One 4 KiB read: fio's start and end and the console's typing and
# printing, taken off every job's host CPU time and counters (on viridian
# they are seconds of emulated CPU and a few thousand UART accesses).
FIO_EMPTY = ('fio --name=bench --filename=%s --direct=1 --ioengine=libaio --size=%dM --number_ios=1 '
             '--output-format=terse --terse-version=3 --rw=read --bs=4k --iodepth=1')
# (emulator, its --drive/-drive values for the two data disks (%s: the
# image), and per disk: the label and how the guest reaches it).
BOOTS = [
    (Viridian, ['file=%s,format=raw,if=ide,index=1', 'file=%s,format=raw,if=scsi,index=0'],
     [('viridian IDE', 'ata'), ('viridian SCSI', 'vmbus')]),
    (Qemu, ['file=%s,format=raw,if=ide,index=1', 'file=%s,format=raw,if=virtio'],
     [('QEMU TCG IDE', 'ata'), ('QEMU TCG virtio-blk', 'virtio')]),
]
DISKS = [label for _, _, disks in BOOTS for label, _ in disks]


def host_description():
    model = '?'
    with open('/proc/cpuinfo') as f:
        match = re.search(r'^model name\s*:\s*(.*)$', f.read(), re.M)
        if match:
            model = match.group(1).strip()
    commit = subprocess.run(['git', 'describe', '--always', '--dirty'], capture_output=True, text=True).stdout.strip()
    qemu = subprocess.run(['qemu-system-x86_64', '--version'], capture_output=True, text=True).stdout.splitlines()[0]
    return {'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), 'cpu': model,
            'cpus': os.cpu_count(), 'kernel': platform.release(), 'commit': commit or '?', 'qemu': qemu,
            'load_start': os.getloadavg()}


def load_note(host):
    """What the plots' stamp says of the machine's load: the 1-minute load
    average when the run began (os.getloadavg, read from /proc/loadavg), and
    "quiet" below half the CPUs, else "loaded". The threshold: below it the
    others' work fits beside the emulator under test, whose vCPU thread needs
    one CPU of its own (the shared 2-core VM reads about 0.1 quiet and 8-9
    loaded); the load at the end counts the run itself, so it is not used."""
    load = host['load_start'][0]
    return 'load %.1f at the start: %s' % (load, 'quiet' if load < host['cpus'] / 2 else 'loaded')


class Perf:
    """perf record -g on the emulator process over one job (--perf)."""

    def __init__(self, directory, pid, name):
        self.data = os.path.join(directory, name + '.perf.data')
        self.report = os.path.join(directory, name + '.perf.txt')
        self.process = subprocess.Popen(['perf', 'record', '-q', '-g', '-F', '499', '-p', str(pid),
                                         '-o', self.data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        self.process.wait()
        with open(self.report, 'w') as f:
            subprocess.run(['perf', 'report', '-i', self.data, '--stdio', '--no-children',
                            '--sort', 'dso,symbol', '-g', 'none', '--percent-limit', '0.5'],
                           stdout=f, stderr=subprocess.DEVNULL)


def run_boot(emulator_class, drives, disks, build, guest_dir, template, args, work):
    images = []
    for index in range(len(drives)):
        images.append(os.path.join(work, 'data%d.raw' % index))
        subprocess.run(['cp', template, images[-1]], check=True)
    machine = Guest(emulator_class, build, guest_dir, [d % image for d, image in zip(drives, images)], work)
    results = {}
    try:
        print('%s: logged in after %.0f s' % (machine.emulator.name, machine.boot_seconds), flush=True)
        info = machine.check('uname -r; fio --version; '
                             'cat /sys/devices/system/clocksource/clocksource0/current_clocksource').split()
        devices = [(label, machine.disk_named(DATA_MIB, 'ata' if how == 'ata' else 'other'))
                   for label, how in disks]
        empty = {}
        for label, device in devices:
            machine.fio(FIO_EMPTY % (device, DATA_MIB), True)  # warms the guest's page cache with fio
            empty[label] = machine.fio(FIO_EMPTY % (device, DATA_MIB), True)
            print('  %-20s fio start and end: %.1f s wall, %.1f s CPU' % (label, empty[label]['host_s'],
                                                                         empty[label]['raw']['cpu']), flush=True)
        for name, options, is_read in JOBS:
            for label, device in devices:
                perf = None
                if args.perf and emulator_class is Viridian and name in args.perf_jobs:
                    perf = Perf(args.perf, machine.console.process.pid,
                                ('%s-%s' % (label, name)).replace(' ', '_'))
                try:
                    row = machine.fio(FIO % (device, DATA_MIB, args.runtime, options), is_read,
                                      args.runtime * 10 + 300, empty[label])
                finally:
                    if perf:
                        perf.stop()
                results[(label, name)] = row
                print('  %-20s %-18s %8.1f MiB/s (host clock %.1f) %8.0f IOPS %8.0f us' %
                      (label, name, row['mib_s'], row['host_mib_s'], row['iops'], row['lat_us']), flush=True)
        machine.poweroff()
    finally:
        machine.console.kill()
    return machine.boot_seconds, info, results


def table(title, results, key, fmt):
    lines = ['', title, '', '| job | ' + ' | '.join(DISKS) + ' |', '|---' * (len(DISKS) + 1) + '|']
    for name, _, _ in JOBS:
        cells = []
        for disk in DISKS:
            row = results.get((disk, name))
            cells.append(fmt % row[key] if row and key in row else '-')
        lines.append('| %s | %s |' % (name, ' | '.join(cells)))
    return lines


def exits_table(results):
    columns = [('instructions', 'guest instructions'), ('port accesses', 'port'), ('mmio accesses', 'MMIO'),
               ('vmbus signals to host', 'VMBus signals'),
               ('device exits', 'device exits'), ('interrupts', 'interrupts injected'),
               ('channel interrupts', 'guest channel interrupts'), ('channel events', 'guest channel events')]
    lines = ['', "viridian's counters per MiB moved (--stats before and after each job; the guest's hv_storvsc "
             'channel counters from /sys/bus/vmbus; less those of a one-request fio run)', '',
             '| job | disk | ' + ' | '.join(c[1] for c in columns) + ' |', '|---' * (len(columns) + 2) + '|']
    for name, _, _ in JOBS:
        for disk in DISKS[:2]:
            row = results.get((disk, name))
            if row:
                lines.append('| %s | %s | %s |' % (name, disk.replace('viridian ', ''),
                                                   ' | '.join('%.0f' % row.get(k, 0) if k == 'instructions' else
                                                              '%.1f' % row.get(k, 0) for k, _ in columns)))
    return lines


def ratio(a, b):
    return a / b if b else float('inf')


def goals(results):
    """The issue's goals for this machine, each with the figures it rests on."""
    lines = ['', "The issue's goals, from this run:", '']
    for name in ('seq read 1M qd1', 'seq read 1M qd32'):
        ide, scsi, virtio = (results.get((d, name)) for d in ('viridian IDE', 'viridian SCSI', 'QEMU TCG virtio-blk'))
        if not (ide and scsi):
            continue
        speed = ratio(scsi['mib_s'], ide['mib_s'])
        host_speed = ratio(scsi['host_mib_s'], ide['host_mib_s'])
        exits = ratio(ide['device exits'], scsi['device exits'])
        lines.append('- %s: SCSI %.2fx viridian IDE by fio, %.2fx by the host clock (goal at least 5x: %s); '
                     '%.1fx fewer device exits per MiB (goal at least 50x: %s)' %
                     (name, speed, host_speed, 'met' if min(speed, host_speed) >= 5 else 'not met', exits,
                      'met' if exits >= 50 else 'not met'))
        if virtio:
            against = ratio(scsi['mib_s'], virtio['mib_s'])
            host_against = ratio(scsi['host_mib_s'], virtio['host_mib_s'])
            lines.append('- %s: SCSI %.2fx QEMU TCG virtio-blk by fio, %.2fx by the host clock (goal faster: %s)' %
                         (name, against, host_against, 'met' if min(against, host_against) > 1 else 'not met'))
    return lines


def plot(results, svg_dir, work, stamp):
    """Clustered bar charts, log scale (the jobs span three decades)."""
    os.makedirs(svg_dir, exist_ok=True)
    plots = [('io-comparison-throughput.svg', 'mib_s', "MiB/s, fio's figure (log scale)", DISKS),
             ('io-comparison-throughput-host.svg', 'host_mib_s', 'MiB/s by the host clock (log scale)', DISKS),
             ('io-comparison-latency.svg', 'lat_us', 'mean latency, us (log scale)', DISKS),
             ('io-comparison-cpu.svg', 'cpu_ms_per_mib', 'host CPU ms per MiB (log scale)', DISKS),
             ('io-comparison-exits.svg', 'device exits', "viridian's device exits per MiB (log scale)", DISKS[:2])]
    made = []
    for svg, key, label, disks in plots:
        data = os.path.join(work, key.replace(' ', '_') + '.dat')
        shown = []
        with open(data, 'w') as f:
            for name, _, _ in JOBS:
                values = [results.get((d, name), {}).get(key) for d in disks]
                shown += [max(v, 1e-3) for v in values if v is not None]
                f.write('"%s" %s\n' % (name, ' '.join('%g' % max(v, 1e-3) if v is not None else '?'
                                                      for v in values)))
        # The axis starts a decade below the smallest bar, so that no bar is
        # drawn with zero height.
        bottom = 10 ** (math.floor(math.log10(min(shown))) - 1) if shown else 0.1
        script = '\n'.join([
            'set terminal svg size 900,420 dynamic font "sans,11" background "white"',
            'set output "%s"' % os.path.join(svg_dir, svg),
            'set title "%s — %s"' % (label.replace(' (log scale)', ''), stamp),
            'set style data histograms', 'set style histogram clustered gap 1',
            'set style fill solid 0.85 border -1', 'set boxwidth 0.9', 'set logscale y',
            'set yrange [%g:*]' % bottom, 'set rmargin 8', 'set bmargin 5',
            'set ylabel "%s"' % label, 'set xtics rotate by -25 scale 0', 'set key outside top center horizontal',
            'set grid ytics', 'set datafile missing "?"',
            'plot ' + ', '.join('"%s" using %d:xtic(1) title "%s"' % (data, i + 2, d) for i, d in enumerate(disks)),
        ])
        subprocess.run(['gnuplot'], input=script, text=True, check=True)
        made.append(os.path.join(svg_dir, svg))
    return made


def report(host, boots, results, args):
    load = host['load_end']
    out = ['## Results: %s%s' % (host['date'], ' (--quick, not for the record)' if args.quick else ''), '',
           'Host: %s, %d CPUs (shared), Linux %s; load average %.1f / %.1f / %.1f at the start, '
           '%.1f / %.1f / %.1f at the end. Commit %s; %s.' %
           ((host['cpu'], host['cpus'], host['kernel']) + tuple(host['load_start']) + tuple(load) +
            (host['commit'], host['qemu'])),
           'Guest: Debian 12 disk, kernel %s, %s; data disks %d MiB raw, fio %d s per job, time-based; '
           'clock source %s on viridian, %s on QEMU.' %
           (boots['kernel'], boots['fio'], DATA_MIB, args.runtime, boots.get('clocksource viridian', '-'),
            boots.get('clocksource QEMU TCG', '-')),
           'Boot to the login prompt: viridian %.0f s, QEMU TCG %.0f s.' % (boots['viridian'], boots['QEMU TCG'])]
    out += table('Throughput, MiB/s', results, 'mib_s', '%.1f')
    out += table("Throughput by the host clock, MiB/s (fio's figure times the guest's clock rate below)",
                 results, 'host_mib_s', '%.1f')
    out += table("Guest seconds per host second over the fio command (the guest's /proc/uptime over the wall "
                 'time; below 1: the guest clock ran slow)', results, 'clock_ratio', '%.2f')
    out += table('IOPS', results, 'iops', '%.0f')
    out += table('Mean latency (submission to completion), us', results, 'lat_us', '%.0f')
    out += table('99th percentile completion latency, us', results, 'p99_us', '%.0f')
    out += table('Host CPU time of the emulator process per MiB, ms (/proc/PID/stat, all threads, less a '
                 'one-request fio run)', results, 'cpu_ms_per_mib', '%.1f')
    out += table("Interrupts the guest took per MiB (/proc/interrupts, all sources, the timer's included)",
                 results, 'guest interrupts', '%.1f')
    out += table("The guest's CPU busy during the job, % (/proc/stat; the rest it was idle, waiting for "
                 'completions)', results, 'guest busy', '%.0f')
    out += exits_table(results)
    out += goals(results)
    return '\n'.join(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('build')
    parser.add_argument('guest')
    parser.add_argument('--quick', action='store_true', help='2 s per job: checks the script end to end')
    parser.add_argument('--runtime', type=int, default=15, help='seconds per fio job (default 15)')
    parser.add_argument('--svg-dir', default='docs', help='where the SVG plots go (default docs)')
    parser.add_argument('--json', help='also write the figures to this file')
    parser.add_argument('--perf', help='perf record viridian over the --perf-job jobs into this directory')
    parser.add_argument('--perf-job', dest='perf_jobs', action='append', default=[],
                        help='a job name to profile (default: seq read 1M qd1)')
    parser.add_argument('--only', choices=['viridian', 'qemu'], help='boot only one emulator')
    parser.add_argument('--from-json', help="no run: the tables and plots of a --json file's figures")
    args = parser.parse_args()
    # A kill ends the run through the finally blocks: the emulators and the work directory go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.runtime = 2
    if args.perf and not args.perf_jobs:
        args.perf_jobs = ['seq read 1M qd1']
    host = host_description()
    results, boots = {}, {'viridian': 0, 'QEMU TCG': 0}
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        host, boots = saved['host'], saved['boots']
        args.runtime, args.quick = saved['args']['runtime'], saved['args']['quick']
        results = {(r['disk'], r['job']): r for r in saved['results']}
    else:
        print('io-compare: %s, %s, %d CPUs, load average %.1f at the start' %
              (host['date'], host['cpu'], host['cpus'], host['load_start'][0]), flush=True)
    work = tempfile.mkdtemp(prefix='viridian-io-compare-')
    try:
        template = os.path.join(work, 'data-template.raw')
        if not args.from_json:
            random_file(template, DATA_MIB)
        for emulator_class, drives, disks in [] if args.from_json else BOOTS:
            if args.only and args.only not in emulator_class.name.lower():
                continue
            run_dir = os.path.join(work, emulator_class.__name__)
            os.mkdir(run_dir)
            seconds, info, rows = run_boot(emulator_class, drives, disks, args.build, args.guest, template, args,
                                           run_dir)
            boots[emulator_class.name] = seconds
            boots['kernel'], boots['fio'] = info[0], info[1]
            boots['clocksource ' + emulator_class.name] = info[2]
            results.update(rows)
            remove_tree(run_dir)
        host.setdefault('load_end', os.getloadavg())
        stamp = '%s, %s, %d CPUs, %s' % (host['date'][:10], host['cpu'], host['cpus'], load_note(host))
        # The figures are saved before plotting, so that a plot that fails
        # does not take a run's half hour with it (--from-json redraws).
        if args.json:
            with open(args.json, 'w') as f:
                json.dump({'host': host, 'boots': boots, 'args': vars(args),
                           'results': [dict(disk=d, job=j, **r) for (d, j), r in results.items()]}, f, indent=1)
        svgs = plot(results, args.svg_dir, work, stamp)
        print()
        print(report(host, boots, results, args))
        print('\nPlots: ' + ', '.join(svgs))
    finally:
        remove_tree(work)
    return 0


if __name__ == '__main__':
    sys.exit(main())
