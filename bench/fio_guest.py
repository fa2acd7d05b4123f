"""fio in the Debian disk guest, shared by bench/disk.py and
bench/io_compare.py: boots the disk (guest/debian.raw from
scripts/make-debian-disk.sh) on viridian or QEMU TCG with data disks
beside it, logs in on the serial console and measures fio jobs.

Per job it takes the emulator process's host CPU time (/proc/PID/stat, all
its threads), viridian's --stats counters (read with SIGUSR1 before and
after the job), the guest's interrupt count (/proc/interrupts) and, for
disks on hv_storvsc, the guest's own VMBus channel counters
(/sys/bus/vmbus/drivers/hv_storvsc/*/channels/*/{interrupts,events})."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'guest'))
from serial_console import SerialConsole  # noqa: E402,F401

BOOT_SECONDS = 1800  # to the login prompt; 3-6 minutes on viridian on a loaded 2-core machine

# The guest's counters around a job, on one line: all interrupts the guest
# took (every CPU, every source in /proc/interrupts, the timer's included),
# then the VMBus channel interrupts (host to guest) and events (guest to
# host) of the disks on hv_storvsc (0 without them), then the guest's idle
# (idle + iowait) and total CPU time in clock ticks (/proc/stat), and its
# uptime in seconds.
GUEST_SNAPSHOT = (
    "echo @snap $(awk 'NR>1{for(i=2;i<=NF&&$i~/^[0-9]+$/;i++)s+=$i} END{print s+0}' /proc/interrupts)"
    " $(cat /sys/bus/vmbus/drivers/hv_storvsc/*/channels/*/interrupts 2>/dev/null | awk '{s+=$1} END{print s+0}')"
    " $(cat /sys/bus/vmbus/drivers/hv_storvsc/*/channels/*/events 2>/dev/null | awk '{s+=$1} END{print s+0}')"
    " $(awk '/^cpu /{print $5+$6, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat) $(cut -d' ' -f1 /proc/uptime)")
GUEST_COUNTERS = ('guest interrupts', 'channel interrupts', 'channel events')


def cpu_seconds(pid):
    """utime + stime of PID and all its threads (fields 14 and 15)."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def sparse_copy(source, target):
    subprocess.run(['cp', '--sparse=always', source, target], check=True)


def random_file(path, mib):
    with open(path, 'wb') as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


class Viridian:
    """viridian booting ROOT (IDE, index 0) with DRIVES (--drive values)."""
    name = 'viridian'

    def __init__(self, build, root, drives, work):
        self.stderr_path = os.path.join(work, 'viridian.stderr')
        argv = [os.path.join(build, 'viridian'), '--memory', '1G', '--stats',
                '--drive', 'file=%s,format=raw,index=0' % root]
        for drive in drives:
            argv += ['--drive', drive]
        self.console = SerialConsole(argv, os.path.join(work, 'viridian.console'), self.stderr_path)

    def counters(self):
        """The --stats counters now: SIGUSR1, then the block it prints
        (its last line is 'vmbus signals to guest')."""
        last = 'vmbus signals to guest:'
        with open(self.stderr_path) as f:
            seen = f.read().count(last)
        self.console.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(self.stderr_path) as f:
                text = f.read()
            if text.count(last) > seen and text.endswith('\n'):
                block = text[text.rfind('instructions:'):]
                return {k: int(v) for k, v in re.findall(r'^([a-z ]+): (\d+)$', block, re.M)}
            time.sleep(0.1)
        raise RuntimeError('viridian printed no --stats after SIGUSR1')


class Qemu:
    """QEMU 7.2 TCG (its default i440FX/PIIX3 machine) booting ROOT (IDE,
    index 0) with DRIVES (-drive values)."""
    name = 'QEMU TCG'

    def __init__(self, build, root, drives, work):
        argv = ['qemu-system-x86_64', '-accel', 'tcg', '-m', '1G', '-display', 'none',
                '-serial', 'stdio', '-monitor', 'none',
                '-drive', 'file=%s,format=raw,if=ide,index=0' % root]
        for drive in drives:
            argv += ['-drive', drive]
        self.console = SerialConsole(argv, os.path.join(work, 'qemu.console'))

    def counters(self):
        return None


class Guest:
    """A booted Debian disk guest on EMULATOR (Viridian or Qemu)."""

    def __init__(self, emulator_class, build, guest_dir, drives, work):
        self.root = os.path.join(work, 'root.raw')
        sparse_copy(os.path.join(guest_dir, 'debian.raw'), self.root)
        self.emulator = emulator_class(build, self.root, drives, work)
        self.console = self.emulator.console
        start = time.monotonic()
        try:
            self.console.login(BOOT_SECONDS)
            self.boot_seconds = time.monotonic() - start
            self.check('fio --version')
        except BaseException:
            self.console.kill()
            raise

    def check(self, command, seconds=300):
        output, status = self.console.run(command, seconds)
        if status != 0:
            raise RuntimeError('%s: `%s` failed (%d):\n%s' % (self.emulator.name, command, status, output))
        return output

    def disk_named(self, size_mib, transport):
        """The /dev name of the guest's whole disk of SIZE_MIB whose sysfs
        path does (transport 'ata') or does not (any other) pass through
        libata: an IDE disk's is .../ata2/..., hv_storvsc's and
        virtio-blk's are not."""
        sectors = size_mib * 2048
        want = '' if transport == 'ata' else '!'
        output = self.check(
            'for d in /sys/block/*; do [ "$(cat $d/size)" = %d ] && case "$(readlink -f $d)" in */ata*) '
            '[ -z "%s" ] && echo "@disk ${d##*/}";; *) [ -n "%s" ] && echo "@disk ${d##*/}";; esac; done; true'
            % (sectors, want, want))
        names = re.findall(r'^@disk (\S+)', output, re.M)
        if len(names) != 1:
            raise RuntimeError('%s: %d disks of %d MiB on %s:\n%s' % (self.emulator.name, len(names), size_mib,
                                                                       transport, output))
        return '/dev/' + names[0]

    def fio(self, fio_command, is_read, seconds=600, overhead=None):
        """Runs FIO_COMMAND (terse v3 output) in the guest; returns the job's
        figures with the host CPU, viridian's counters and the guest's
        counters over it, per MiB where that is what they mean. OVERHEAD, a
        row this returned for a run that moved next to nothing (fio's start
        and end, the console's typing and printing), is taken off the CPU
        time and the counters first; the figures before that are row['raw']."""
        pid = self.console.process.pid
        before_counters = self.emulator.counters()
        before_cpu = cpu_seconds(pid)
        start = time.monotonic()
        output, status = self.console.run('%s; %s; %s' % (GUEST_SNAPSHOT, fio_command, GUEST_SNAPSHOT), seconds)
        wall = time.monotonic() - start
        cpu = cpu_seconds(pid) - before_cpu
        after_counters = self.emulator.counters()
        line = next((l for l in output.splitlines() if l.startswith('3;')), None)
        snaps = [list(map(float, s.split())) for s in re.findall(r'^@snap ([\d. ]+)$', output, re.M)]
        if status != 0 or not line or len(snaps) != 2 or len(snaps[0]) != 6 or len(snaps[1]) != 6:
            raise RuntimeError('%s: fio failed:\n%s' % (self.emulator.name, output))
        row = parse_terse(line, is_read)
        mib = row['mib']
        # The host's view: the command's wall time, beside fio's own figures,
        # which are in the guest's time.
        row['host_s'] = wall
        # Guest seconds per host second over the command: viridian's guest
        # clock leaves out host time beyond an allowance per retired
        # instruction (platform/clock/virtual_clock.h), so under load fio's
        # figures run ahead of the wall clock; QEMU's follows the host's.
        row['clock_ratio'] = (snaps[1][5] - snaps[0][5]) / wall if wall else 0
        row['host_mib_s'] = row['mib_s'] * row['clock_ratio']
        # How much of the job the guest's CPU was busy (not idle waiting for
        # a completion): with the guest's clock, so host preemption is not in it.
        idle, total = snaps[1][3] - snaps[0][3], snaps[1][4] - snaps[0][4]
        row['guest busy'] = 100 * (1 - idle / total) if total else 0
        raw = {'cpu': cpu}
        raw.update({key: after - before for key, before, after in zip(GUEST_COUNTERS, snaps[0], snaps[1])})
        if before_counters:
            raw.update({key: after_counters[key] - before_counters[key] for key in before_counters})
        row['raw'] = raw
        base = overhead['raw'] if overhead else {}
        net = {key: max(value - base.get(key, 0), 0) / mib if mib else 0 for key, value in raw.items()}
        row['cpu_ms_per_mib'] = 1000 * net.pop('cpu')
        row.update(net)
        if before_counters:
            # Every guest access that leaves the CPU for a device model:
            # port and MMIO accesses (the emulated path), HvSignalEvent
            # hypercalls (VMBus).
            row['device exits'] = row['port accesses'] + row['mmio accesses'] + row['vmbus signals to host']
        return row

    def poweroff(self):
        try:
            self.console.send('poweroff\n')
            self.console.wait(300)
        finally:
            self.console.kill()


def parse_terse(line, is_read):
    """fio's terse v3 line: (1-based) read KiB, bandwidth KiB/s, IOPS,
    runtime ms at 6-9, completion latency mean and percentiles at 16 and
    18-37, total latency mean at 40; the write side from 47 on, 41 later."""
    f = line.split(';')
    base = 0 if is_read else 41
    kib, iops, ms = int(f[base + 5]), float(f[base + 7]), int(f[base + 8])
    percentiles = dict(p.split('%=') for p in f[base + 17:base + 37] if '%=' in p)
    return {'mib': kib / 1024, 'mib_s': kib / 1024 / (ms / 1000) if ms else 0, 'iops': iops,
            'lat_us': float(f[base + 39]), 'p99_us': float(percentiles.get('99.000000', 0))}


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
