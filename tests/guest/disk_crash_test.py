#!/usr/bin/env python3
"""Crash safety of the disk images (docs/storage.md "Crash safety"): the
Debian guest runs tests/guest/crash_writer.c on its IDE disk (numbered 4 KiB
records at scattered offsets, a FLUSH CACHE after each batch, "ack N" on the
console once the flush is done) and the host kills viridian with SIGKILL at
a random moment. Then the image must open and pass `viridian-img check`,
qemu-img must agree where it reads the format (`qemu-img check`, replaying
the log as QEMU does, for VHDX; what `qemu-img convert` reads, for VHDX and
VHD), and every record acknowledged before the kill must be on the disk,
unless a later record went to the same place: the count of lost
acknowledged records must be 0. The next run boots on the same image, so
crashes pile up on it (a fresh image every few kills keeps block allocation
going).

Images: raw, dynamic VHD, dynamic VHDX, and a differencing VHDX whose
parent first takes crashes of its own. Most kills fall while the writer
runs; some during the boot.

Usage: disk_crash_test.py VIRIDIAN VIRIDIAN_IMG GUEST_DIR WRITER_SOURCE
Environment: VIRIDIAN_LONG_TESTS=1 for the long run (at least 200 kills);
VIRIDIAN_CRASH_KILLS=N for N kills per image kind; VIRIDIAN_CRASH_SEED=S to
repeat the random choices of an earlier run (it prints its seed). Exits 77
when the guest is not built or there is no static C compiler."""
import gzip
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

SECTOR = 512
RECORD = 4096
DISK_SIZE = 512 << 20  # 512 VHDX blocks, 1024 VHD blocks: allocation goes on through many kills
MAGIC = 0x4853415243524956
MASK = (1 << 64) - 1
MAX_BATCH = 8  # crash_writer.c's MAX_BATCH: records written past the last ack


def mix(x):  # crash_writer.c's mix()
    x = (x + 0x9e3779b97f4a7c15) & MASK
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & MASK
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & MASK
    return x ^ (x >> 31)


def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & MASK
    return h


def slot_of(n, slots):  # crash_writer.c: slot 0 is never written
    return 1 + mix(n) % (slots - 1)


def fail(message):
    print('disk-crash: FAIL: ' + message, flush=True)
    sys.exit(1)


def run(args, **kwargs):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


class Disk:
    """One image kind under test: its image, the acknowledged records and
    what must be on it."""

    def __init__(self, kind, work, tools):
        self.kind = kind
        self.work = work
        self.tools = tools
        self.format = {'raw': 'raw', 'vhd': 'vpc', 'vhdx': 'vhdx', 'vhdx-diff': 'vhdx'}[kind]
        self.path = os.path.join(work, kind + '.' + {'raw': 'img', 'vpc': 'vhd', 'vhdx': 'vhdx'}[self.format])
        self.expected = {}  # slot -> the latest acknowledged record there
        self.next_record = 1
        self.acked = 0
        self.kills = 0
        self.boot_kills = 0
        self.lost = 0
        self.generation = 0
        self.slots = 0
        self.replays = 0
        self.deterministic_kills = 0
        self.unflushed_sectors = 0  # VHD: read by QEMU, not by viridian (compare_vhd)

    def create(self):
        """A fresh image (what was expected of the old one is forgotten)."""
        self.generation += 1
        self.expected = {}
        for leftover in (self.path, self.path + '.parent.vhdx'):
            if os.path.exists(leftover):
                os.remove(leftover)
        img = self.tools['viridian_img']
        if self.kind == 'raw':
            args = [img, 'create', '-f', 'raw', self.path, str(DISK_SIZE)]
        elif self.kind == 'vhd':
            args = [img, 'create', '-f', 'vpc', '-o', 'subformat=dynamic,block_size=512K', self.path,
                    str(DISK_SIZE)]
        elif self.kind == 'vhdx':
            args = [img, 'create', '-f', 'vhdx', '-o', 'subformat=dynamic,block_size=1M', self.path,
                    str(DISK_SIZE)]
        else:  # the parent first; the child comes after the parent's first crash
            args = [img, 'create', '-f', 'vhdx', '-o', 'subformat=dynamic,block_size=1M',
                    self.path + '.parent.vhdx', str(DISK_SIZE)]
        result = run(args)
        if result.returncode != 0:
            fail('%s: viridian-img create failed:\n%s' % (self.kind, result.stdout))
        self.on_parent = self.kind == 'vhdx-diff'

    def image(self):
        return self.path + '.parent.vhdx' if self.on_parent else self.path

    def make_child(self):
        result = run([self.tools['viridian_img'], 'create', '-f', 'vhdx', '-b', self.path + '.parent.vhdx',
                      self.path])
        if result.returncode != 0:
            fail('%s: viridian-img create -b failed:\n%s' % (self.kind, result.stdout))
        self.on_parent = False

    def boot_and_kill(self, rng, boot_kill, deterministic):
        """One run: boot, start the writer, SIGKILL. Returns the console lines."""
        t = self.tools
        args = [t['viridian'], '--enlightenments', 'off', '--kernel', t['kernel'], '--initrd', t['initrd'],
                '--drive', 'file=%s,format=%s' % (self.image(), self.format),
                '--memory', '128M', '--append', 'console=ttyS0 panic=-1 crash_first=%d' % self.next_record]
        if deterministic:  # the disk's I/O inside submit(), not on its worker thread
            args.append('--deterministic')
        began = time.time()
        self.boot_time = None
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        lines = []
        started = threading.Event()

        def reader():
            # Only whole lines: a line cut by the kill is not an ack.
            for raw in process.stdout:
                if raw.endswith(b'\n'):
                    line = raw.decode(errors='replace').rstrip('\r\n')
                    lines.append(line)
                    if line.startswith('crash-writer: start'):
                        self.boot_time = time.time() - began
                        started.set()
            started.set()  # the process ended on its own

        thread = threading.Thread(target=reader)
        thread.start()
        if boot_kill:
            time.sleep(rng.uniform(0.5, t['boot_seconds']))
        else:
            if not started.wait(300):
                process.kill()
                fail('%s: the writer did not start within 300 s' % self.kind)
            time.sleep(rng.uniform(0.0, t['write_seconds']))
        ended_early = process.poll() is not None
        process.kill()
        process.wait()
        thread.join()
        with open(os.path.join(self.work, self.kind + '.console'), 'w') as log:
            log.write('\n'.join(lines) + '\n')
        if ended_early:
            fail('%s: viridian ended before the kill (status %s):\n%s' %
                 (self.kind, process.returncode, '\n'.join(lines[-30:])))
        return lines

    def account(self, lines):
        """Takes in what the guest acknowledged in this run."""
        last_ack = None
        for line in lines:
            if line.startswith('crash-writer: start'):
                # The disk's size in 4 KiB slots (a VHD's is rounded to its geometry).
                self.slots = int(line.split()[-1])
            elif line.startswith('crash-writer:') or 'Kernel panic' in line:
                fail('%s: the guest failed: %s' % (self.kind, line))
            if 'ata1' in line and ('failed' in line or 'error' in line or 'timeout' in line):
                fail('%s: libata reported: %s' % (self.kind, line))
            if line.startswith('ack '):
                last_ack = int(line[4:])
        if not any(line.startswith('crash-writer: start') for line in lines):
            return 0
        first = self.next_record
        if last_ack is not None:
            for n in range(first, last_ack + 1):
                self.expected[slot_of(n, self.slots)] = n
            self.acked += last_ack + 1 - first
        # Records after the last ack may have reached the disk: numbers go on
        # past them so that every record written is unique.
        self.next_record = (last_ack + 1 if last_ack is not None else first) + MAX_BATCH
        return 0 if last_ack is None else last_ack + 1 - first

    def check(self):
        """The image after a kill: checks, qemu-img's view, lost records."""
        t = self.tools
        image = self.image()
        if self.qemu_reads():  # before anything replays the log
            shutil.copyfile(image, os.path.join(self.work, 'qemu-copy'))
        result = run([t['viridian_img'], 'check', '-f', self.format, image])
        if result.returncode != 0 and self.format == 'vhdx' and 'log holds' in result.stdout and \
                '\n1 errors were found' in result.stdout:
            # A log left to replay is how a VHDX looks after a crash (2.3.3).
            # A read-only open reads the image as the replay will leave it:
            # keep that reading, replay (as the next open would), check again.
            pending = self.convert(image, 'pending.raw')
            result = run([t['viridian_img'], 'check', '-r', 'all', '-f', self.format, image])
            if result.returncode != 0:
                fail('%s: viridian-img check -r all failed after kill %d:\n%s' % (self.kind, self.kills,
                                                                                 result.stdout))
            self.replays += 1
            result = run([t['viridian_img'], 'check', '-f', self.format, image])
        else:
            pending = None
        if result.returncode != 0:
            fail('%s: viridian-img check failed after kill %d:\n%s' % (self.kind, self.kills, result.stdout))
        raw = self.convert(image, 'read.raw')
        if pending and run(['cmp', pending, raw]).returncode != 0:
            fail('%s: the disk read before the log replay differs from the one after it (kill %d)' %
                 (self.kind, self.kills))
        lost = self.lost_records(raw)
        qemu_raw = self.qemu_agrees(raw)
        if qemu_raw and self.lost_records(qemu_raw) and not lost:
            fail('%s: qemu-img misses acknowledged records that viridian-img reads after kill %d' %
                 (self.kind, self.kills))
        self.lost += len(lost)
        if lost:
            print('disk-crash: %s: %d acknowledged records lost after kill %d, e.g. %s' %
                  (self.kind, len(lost), self.kills, lost[:5]), flush=True)
        return len(lost)

    def convert(self, image, name):
        raw = os.path.join(self.work, name)
        if os.path.exists(raw):
            os.remove(raw)
        result = run([self.tools['viridian_img'], 'convert', '-f', self.format, '-O', 'raw', image, raw])
        if result.returncode != 0:
            fail('%s: viridian-img convert failed after kill %d:\n%s' % (self.kind, self.kills, result.stdout))
        return raw

    def lost_records(self, raw):
        lost = []
        with open(raw, 'rb') as f:
            for slot, n in sorted(self.expected.items()):
                f.seek(slot * RECORD)
                if not self.holds(f.read(RECORD), slot, n, self.slots):
                    lost.append(n)
        return lost

    def qemu_agrees(self, raw):
        """qemu-img, where it reads the format: its check passes (replaying a
        VHDX log on a copy, as `qemu-img check -r all` does) and it reads the
        same disk. Returns the disk as qemu-img reads it."""
        t = self.tools
        if not self.qemu_reads():
            return
        copy = os.path.join(self.work, 'qemu-copy')
        if self.format == 'vhdx':
            result = run([t['qemu_img'], 'check', '-f', 'vhdx', copy])
            if result.returncode != 0:
                if 'needs to be replayed' not in result.stdout:
                    fail('%s: qemu-img check failed after kill %d:\n%s' % (self.kind, self.kills, result.stdout))
                result = run([t['qemu_img'], 'check', '-r', 'all', '-f', 'vhdx', copy])
                if result.returncode != 0:
                    fail('%s: qemu-img check -r all failed after kill %d:\n%s' %
                         (self.kind, self.kills, result.stdout))
                self.tools['qemu_replays'] += 1
        # qemu-img compare skips what both sides know to be zeros.
        result = run([t['qemu_img'], 'compare', '-f', 'raw', '-F', self.format, raw, copy])
        if result.returncode == 0:
            return raw
        if result.returncode != 1 or self.format != 'vpc':
            fail('%s: qemu-img reads another disk than viridian-img after kill %d:\n%s' %
                 (self.kind, self.kills, result.stdout))
        qemu_raw = os.path.join(self.work, 'qemu.raw')
        if os.path.exists(qemu_raw):
            os.remove(qemu_raw)
        result = run([t['qemu_img'], 'convert', '-f', self.format, '-O', 'raw', copy, qemu_raw])
        if result.returncode != 0:
            fail('%s: qemu-img convert failed after kill %d:\n%s' % (self.kind, self.kills, result.stdout))
        self.compare_vhd(raw, qemu_raw)
        return qemu_raw

    def compare_vhd(self, raw, qemu_raw):
        """QEMU reads every sector of an allocated VHD block from the block,
        whatever its sector bitmap says (it marks them all present when it
        allocates one). viridian follows the bitmap, and a kill between a
        write into an allocated block and the flush that sets the write's
        bits leaves data behind clear bits: viridian reads zeros there, QEMU
        the data of the write that was never acknowledged. Either is right;
        any other difference is not."""
        chunk = 1 << 20
        if os.path.getsize(raw) != os.path.getsize(qemu_raw):
            fail('%s: qemu-img reads a disk of another size after kill %d' % (self.kind, self.kills))
        with open(raw, 'rb') as ours, open(qemu_raw, 'rb') as theirs:
            for at in sorted(data_chunks(ours, chunk) | data_chunks(theirs, chunk)):
                ours.seek(at)
                theirs.seek(at)
                a, b = ours.read(chunk), theirs.read(chunk)
                if a != b:
                    for i in range(0, len(a), SECTOR):
                        if a[i:i + SECTOR] != b[i:i + SECTOR]:
                            if a[i:i + SECTOR] != bytes(SECTOR):
                                fail('%s: qemu-img and viridian-img read sector %d differently after kill %d' %
                                     (self.kind, (at + i) // SECTOR, self.kills))
                            self.unflushed_sectors += 1

    def qemu_reads(self):  # QEMU 7.2 has no differencing VHDX; raw needs no second opinion
        return self.tools['qemu_img'] and self.format != 'raw' and (self.kind != 'vhdx-diff' or self.on_parent)

    @staticmethod
    def holds(block, slot, at_least, slots):
        """Whether every sector of `block` is an intact sector of a record
        for `slot` not older than `at_least` (sectors of two records, as a
        torn later write leaves them, are fine)."""
        for s in range(RECORD // SECTOR):
            sector = block[s * SECTOR:(s + 1) * SECTOR]
            magic, n, got_slot, index = struct.unpack_from('<QQQQ', sector)
            checksum, = struct.unpack_from('<Q', sector, SECTOR - 8)
            if (magic != MAGIC or got_slot != slot or index != s or n < at_least or slot_of(n, slots) != slot or
                    checksum != fnv1a(sector[:SECTOR - 8])):
                return False
        return True


def data_chunks(f, chunk):
    """The offsets of the chunks of a sparse file that hold data."""
    found = set()
    size = os.fstat(f.fileno()).st_size
    at = 0
    while at < size:
        try:
            start = os.lseek(f.fileno(), at, os.SEEK_DATA)
        except OSError:  # no data after `at`
            break
        end = os.lseek(f.fileno(), start, os.SEEK_HOLE)
        found.update(range(start // chunk * chunk, end, chunk))
        at = end
    return found


def cpio_entries(data):
    """(name, mode, contents) of each entry of a newc cpio archive."""
    at = 0
    while at + 110 <= len(data):
        header = data[at:at + 110]
        if header[:6] != b'070701':
            raise ValueError('not a newc cpio archive')
        field = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = field[1], field[6], field[11]
        name_at = at + 110
        name = data[name_at:name_at + name_size - 1].decode()
        body_at = (name_at + name_size + 3) & ~3
        if name == 'TRAILER!!!':
            return
        yield name, mode, data[body_at:body_at + size]
        at = (body_at + size + 3) & ~3


def cpio_archive(entries):
    """A newc cpio archive of (name, mode, contents), owned by root."""
    out = bytearray()
    for number, (name, mode, contents) in enumerate(entries + [('TRAILER!!!', 0, b'')], start=1):
        encoded = name.encode() + b'\0'
        fields = [number, mode, 0, 0, 1, 0, len(contents), 0, 0, 0, 0, len(encoded), 0]
        out += b'070701' + b''.join(b'%08X' % f for f in fields) + encoded
        out += b'\0' * (-len(out) % 4) + contents
        out += b'\0' * (-len(out) % 4)
    return bytes(out)


def build_initrd(work, guest, writer_source):
    """A small initramfs: the crash writer as /init and the guest's modules
    for the IDE disk (ata_piix, sd_mod and what they need, from the default
    guest's initramfs), numbered in load order."""
    cc = os.environ.get('CC_FOR_GUEST', 'cc')
    writer = os.path.join(work, 'crash-writer')
    result = run([cc, '-static', '-Os', '-s', '-o', writer, writer_source])
    if result.returncode != 0:
        print('disk-crash: cannot build a static crash-writer with %s; skipping:\n%s' % (cc, result.stdout))
        sys.exit(77)
    with gzip.open(os.path.join(guest, 'initramfs.cpio.gz')) as f:
        files = {name: contents for name, mode, contents in cpio_entries(f.read())}
    depfile = [name for name in files if name.startswith('lib/modules/') and name.endswith('/modules.dep')][0]
    moddir = depfile[:-len('modules.dep')]
    deps = {}
    for line in files[depfile].decode().splitlines():
        module, _, needs = line.partition(':')
        deps[module] = needs.split()
    order = []

    def add(module):  # what a module needs is loaded before it
        if module not in order:
            for need in deps[module]:
                add(need)
            order.append(module)

    for wanted in ('ata_piix', 'sd_mod'):
        add([m for m in deps if os.path.basename(m) == wanted + '.ko'][0])
    with open(writer, 'rb') as f:
        entries = [('dev', 0o40755, b''), ('modules', 0o40755, b''), ('init', 0o100755, f.read())]
    for index, module in enumerate(order):
        entries.append(('modules/%02d-%s' % (index, os.path.basename(module)), 0o100644,
                        files[moddir + module]))
    initrd = os.path.join(work, 'initrd')
    with open(initrd, 'wb') as out:
        out.write(gzip.compress(cpio_archive(entries), 1))
    return initrd


def main():
    viridian, viridian_img, guest, writer_source = sys.argv[1:5]
    if not (os.access(os.path.join(guest, 'vmlinuz'), os.R_OK) and
            os.access(os.path.join(guest, 'initramfs.cpio.gz'), os.R_OK)):
        print('guest not built (%s); run scripts/fetch-guest.sh' % guest)
        sys.exit(77)
    long_run = os.environ.get('VIRIDIAN_LONG_TESTS') == '1'
    kinds = os.environ.get('VIRIDIAN_CRASH_KINDS', 'raw,vhd,vhdx,vhdx-diff').split(',')
    kills_per_kind = int(os.environ.get('VIRIDIAN_CRASH_KILLS', '50' if long_run else '3'))
    fresh_every = 10 if long_run else kills_per_kind  # kills on one image before a fresh one
    seed = int(os.environ.get('VIRIDIAN_CRASH_SEED', str(int(time.time()))))
    rng = random.Random(seed)
    print('disk-crash: seed %d, %d kills on each of %s' % (seed, kills_per_kind, ', '.join(kinds)), flush=True)
    work = tempfile.mkdtemp(prefix='viridian-crash-')
    try:
        tools = {'viridian': viridian, 'viridian_img': viridian_img, 'kernel': os.path.join(guest, 'vmlinuz'),
                 'initrd': build_initrd(work, guest, writer_source), 'qemu_img': shutil.which('qemu-img'),
                 'qemu_replays': 0, 'write_seconds': 4.0, 'boot_seconds': 12.0}
        start = time.time()
        total_lost = 0
        totals = [0, 0, 0]
        # Kind by kind in turn, so that a long run cut short has covered all.
        disks = [Disk(kind, work, tools) for kind in kinds]
        for k in range(kills_per_kind):
            for disk in disks:
                if k % fresh_every == 0:
                    disk.create()
                if disk.on_parent and k % fresh_every == 1:
                    disk.make_child()  # the parent has had its crash
                boot_kill = rng.random() < 0.125
                deterministic = rng.random() < 0.15
                began = time.time()
                lines = disk.boot_and_kill(rng, boot_kill, deterministic)
                disk.kills += 1
                disk.boot_kills += boot_kill
                disk.deterministic_kills += deterministic
                acked = disk.account(lines)
                lost = disk.check()
                total_lost += lost
                print('disk-crash: %s kill %d (%s%s): %d records acknowledged, %d lost; %.1f s%s' %
                      (disk.kind, disk.kills, 'during boot' if boot_kill else 'while writing',
                       ', deterministic' if deterministic else '', acked, lost, time.time() - began,
                       ' (writing from %.1f s)' % disk.boot_time if disk.boot_time else ''), flush=True)
        for disk in disks:
            print('disk-crash: %s: %d kills (%d during boot, %d deterministic), %d records acknowledged, '
                  '%d lost, %d images, %d VHDX logs replayed, %d unflushed VHD sectors QEMU reads' %
                  (disk.kind, disk.kills, disk.boot_kills, disk.deterministic_kills, disk.acked, disk.lost,
                   disk.generation, disk.replays, disk.unflushed_sectors), flush=True)
            totals = [a + b for a, b in zip(totals, (disk.kills, disk.acked, disk.lost))]
        print('disk-crash: %d kills, %d records acknowledged, %d lost; %d VHDX logs replayed by qemu-img; '
              '%.0f s in all' % (totals[0], totals[1], totals[2], tools['qemu_replays'], time.time() - start))
        if total_lost:
            fail('%d acknowledged records lost' % total_lost)
        print('disk-crash: ok')
    finally:
        if os.environ.get('VIRIDIAN_CRASH_KEEP') != '1':
            shutil.rmtree(work, ignore_errors=True)
        else:
            print('disk-crash: kept ' + work)


if __name__ == '__main__':
    main()
