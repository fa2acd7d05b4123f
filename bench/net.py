#!/usr/bin/env python3
"""Network benchmark (docs/benchmarks.md "Network"), run by bench/net.sh.

Each emulator boots the default guest (guest/vmlinuz and the busybox
initramfs) with a user-mode (slirp) network adapter, leases 10.0.2.15 with
udhcpc and then, against an HTTP server of ours on the host's loopback
(10.0.2.2 from the guest):

  - pings the gateway 10.0.2.2 (slirp answers it itself: the round trip is
    guest -> adapter -> slirp -> adapter -> guest, no host socket),
  - downloads DOWN_MB with busybox wget to /dev/null, REPEAT times,
  - uploads UP_MB (a file in the guest's tmpfs, written beforehand) with
    wget --post-file, REPEAT times,
  - runs iperf3 (Debian's, in the default guest) for IPERF_S seconds against
    an iperf3 server on the host's loopback, guest to host and then host to
    guest (-R); the figure is iperf3's own "receiver" line.

The server times the transfers, not the guest: a download runs from the
request to the guest closing its end after the last byte, an upload from the
request's headers to the last byte of its body. Each figure is the median of
the REPEAT runs; the ping figure is the median echo. The adapters: viridian's e1000 and netvsc, QEMU TCG's e1000
and virtio-net-pci (QEMU 7.2 as Debian packages it, `-accel tcg`, one vCPU,
512 MiB, the same kernel; virtio's modules come from the kernel package in
guest/cache/ and go in as a second cpio archive, loaded with insmod).

With --baseline DIR, viridian's two adapters run a second time from another
build (an older commit's), as rows "... (baseline)": a before-and-after in
one sitting, under the same host load.

Usage: net.py BUILD_DIR GUEST_DIR [--quick] [--only NAME,...] [--baseline DIR] [--json FILE]"""
import argparse
import datetime
import http.server
import json
import os
import re
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MB = 1_000_000
CONFIGS = [  # name, emulator, adapter
    ('viridian e1000', 'viridian', 'e1000'),
    ('viridian netvsc', 'viridian', 'netvsc'),
    ('QEMU TCG e1000', 'qemu', 'e1000'),
    ('QEMU TCG virtio-net', 'qemu', 'virtio-net-pci'),
]
VIRTIO_MODULES = [  # in load order
    'drivers/virtio/virtio_ring.ko', 'drivers/virtio/virtio.ko',
    'drivers/virtio/virtio_pci_modern_dev.ko', 'drivers/virtio/virtio_pci_legacy_dev.ko',
    'drivers/virtio/virtio_pci.ko', 'net/core/failover.ko', 'drivers/net/net_failover.ko',
    'drivers/net/virtio_net.ko',
]


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows = []

    def add(self, kind, seconds, size):
        with self.lock:
            self.rows.append((kind, seconds, size))

    def take(self):
        with self.lock:
            rows, self.rows = self.rows, []
        return rows


RESULTS = Results()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.0'

    def log_message(self, *args):
        pass

    def do_GET(self):
        # /data/N: N bytes; timed until the guest closes after the last one.
        m = re.fullmatch(r'/data/(\d+)', self.path)
        if not m:
            return self.send_error(404)
        size = int(m.group(1))
        start = time.monotonic()
        self.send_response(200)
        self.send_header('Content-Length', str(size))
        self.end_headers()
        self.wfile.flush()
        chunk = b'\xa5' * 65536
        left = size
        while left:
            n = min(left, len(chunk))
            self.connection.sendall(chunk[:n])
            left -= n
        self.connection.shutdown(socket.SHUT_WR)
        while self.connection.recv(65536):
            pass
        RESULTS.add('down', time.monotonic() - start, size)

    def do_POST(self):
        start = time.monotonic()
        left = int(self.headers.get('Content-Length', '0'))
        size = left
        while left:
            got = self.rfile.read(min(left, 1 << 20))
            if not got:
                break
            left -= len(got)
        RESULTS.add('up', time.monotonic() - start, size - left)
        body = b'ok\n'
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def guest_commands(port, down, up, repeat, pings, iperf_port, iperf_seconds):
    # No double quotes: the kernel's command line cannot hold them inside
    # viridian.run (as tests/guest/common.sh).
    dhcp = ("echo '[ $1 = bound ] || exit 0' >/tmp/s; "
            "echo 'ifconfig $interface $ip netmask $subnet; route add default gw $router' >>/tmp/s; "
            "chmod +x /tmp/s; for i in $(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.2; done; "
            "ip link set eth0 up; for i in 1 2 3; do udhcpc -i eth0 -n -q -t 10 -s /tmp/s >/dev/null && break; done")
    url = 'http://10.0.2.2:%d' % port
    steps = [dhcp, 'ping -c %d 10.0.2.2' % pings,
             'yes viridian-net-upload | head -c %d >/tmp/up' % up]
    steps += ['wget -q -O /dev/null %s/data/%d' % (url, down)] * repeat
    steps += ['wget -q -O /dev/null --post-file /tmp/up %s/upload' % url] * repeat
    for direction, flag in (('up', ''), ('down', ' -R')):
        steps.append("iperf3 -c 10.0.2.2 -p %d -t %d -f m%s | grep receiver | sed 's/^/iperf-%s: /'" %
                     (iperf_port, iperf_seconds, flag, direction))
    return '; '.join(steps)


def virtio_cpio(guest, work):
    """A cpio archive with virtio-net's modules under /virtio, from the
    kernel package fetch-guest.sh downloaded."""
    debs = [f for f in os.listdir(os.path.join(guest, 'cache')) if f.startswith('linux-image-')]
    if not debs:
        sys.exit('net.py: no linux-image package in %s/cache (run scripts/fetch-guest.sh)' % guest)
    unpacked = os.path.join(work, 'kernel')
    subprocess.run(['dpkg-deb', '-x', os.path.join(guest, 'cache', debs[0]), unpacked], check=True)
    release = open(os.path.join(guest, 'kernel-release')).read().strip()
    tree = os.path.join(work, 'virtio')
    os.makedirs(os.path.join(tree, 'virtio'))
    for m in VIRTIO_MODULES:
        source = os.path.join(unpacked, 'lib/modules', release, 'kernel', m)
        if not os.path.exists(source) and os.path.exists(source + '.xz'):
            subprocess.run(['xz', '-dk', source + '.xz'], check=True)
        os.replace(source, os.path.join(tree, 'virtio', os.path.basename(m)))
    archive = os.path.join(work, 'virtio.cpio')
    names = '\n'.join(['virtio'] + ['virtio/' + os.path.basename(m) for m in VIRTIO_MODULES]) + '\n'
    with open(archive, 'wb') as out:
        subprocess.run(['cpio', '-o', '-H', 'newc', '--quiet'], input=names.encode(), cwd=tree, stdout=out,
                       check=True)
    combined = os.path.join(work, 'initramfs-virtio.cpio')
    with open(combined, 'wb') as out:
        out.write(subprocess.run(['gzip', '-dc', os.path.join(guest, 'initramfs.cpio.gz')],
                                 capture_output=True, check=True).stdout)
        out.write(open(archive, 'rb').read())
    return combined


def command_line(build, guest, emulator, adapter, run, initrd):
    append = 'console=ttyS0 panic=-1 quiet'
    if emulator == 'viridian':
        modules = 'hv_vmbus,hv_netvsc' if adapter == 'netvsc' else 'e1000'
        return [os.path.join(build, 'viridian'), '--nic', 'user,model=' + adapter,
                '--kernel', os.path.join(guest, 'vmlinuz'), '--initrd', initrd,
                '--append', '%s viridian.modules=%s viridian.run="%s"' % (append, modules, run)]
    if adapter == 'e1000':
        modules = 'viridian.modules=e1000 '
    else:
        modules = ''
        run = ' '.join('insmod /virtio/%s;' % os.path.basename(m) for m in VIRTIO_MODULES) + ' ' + run
    return ['qemu-system-x86_64', '-accel', 'tcg', '-m', '512', '-nographic', '-no-reboot',
            '-nic', 'user,model=' + adapter, '-kernel', os.path.join(guest, 'vmlinuz'), '-initrd', initrd,
            '-append', '%s %sviridian.run="%s"' % (append, modules, run)]


def measure(name, argv, work, expected):
    RESULTS.take()
    log_path = os.path.join(work, name.replace(' ', '-') + '.log')
    started = time.monotonic()
    with open(log_path, 'w') as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            process.wait(timeout=900)
        except subprocess.TimeoutExpired:
            process.kill()
            sys.exit('net.py: %s did not finish in 15 minutes (%s)' % (name, log_path))
    output = open(log_path, errors='replace').read()
    rows = RESULTS.take()
    if 'viridian-guest: exit status 0' not in output or len(rows) != expected:
        sys.exit('net.py: %s failed (%d of %d transfers; log %s):\n%s' %
                 (name, len(rows), expected, log_path, output[-2000:]))
    # The median echo: the first may wait for ARP, and a loaded host adds outliers.
    echoes = [float(t) for t in re.findall(r'bytes from 10\.0\.2\.2: seq=\d+ ttl=\d+ time=([\d.]+) ms', output)]
    down = [size / seconds / MB for kind, seconds, size in rows if kind == 'down']
    up = [size / seconds / MB for kind, seconds, size in rows if kind == 'up']
    iperf = {d: float(m) for d, m in re.findall(r'iperf-(up|down): .* ([\d.]+) Mbits/sec .*receiver', output)}
    row = {'name': name, 'down_mb_s': statistics.median(down), 'up_mb_s': statistics.median(up),
           'rtt_ms': statistics.median(echoes) if echoes else None, 'down_all': down, 'up_all': up,
           'iperf_up_mbit_s': iperf.get('up'), 'iperf_down_mbit_s': iperf.get('down'),
           'wall_s': time.monotonic() - started}
    print('  %-20s down %6.1f MB/s  up %6.1f MB/s  ping %s ms  iperf3 up %s down %s Mbit/s' %
          (name, row['down_mb_s'], row['up_mb_s'], '%.2f' % row['rtt_ms'] if echoes else '?',
           iperf.get('up', '?'), iperf.get('down', '?')), flush=True)
    return row


def ratio(a, b):
    return '%.2fx' % (a / b) if a and b else '-'


def report(rows, args):
    by_name = {r['name']: r for r in rows}
    qemu = by_name.get('QEMU TCG virtio-net') or by_name.get('QEMU TCG e1000')
    print()
    print('%s, %s; %d MB down and %d MB up, median of %d runs; ping: median of %d echoes.' %
          (datetime.date.today().isoformat(), 'quick run' if args.quick else 'full run', args.down, args.up,
           args.repeat, args.pings))
    print()
    print('| adapter | download MB/s | upload MB/s | ping 10.0.2.2 ms (median) | iperf3 guest to host Mbit/s '
          '| iperf3 host to guest Mbit/s | download vs %s | upload vs %s | ping vs %s | iperf3 up vs %s '
          '| iperf3 down vs %s |' % ((qemu['name'],) * 5 if qemu else ('QEMU',) * 5))
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        # The ping ratio is QEMU's time over this one's: above 1 is faster, as for the others.
        print('| %s | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %s | %s |' %
              (r['name'], r['down_mb_s'], r['up_mb_s'], '%.2f' % r['rtt_ms'] if r['rtt_ms'] is not None else '-',
               r['iperf_up_mbit_s'] or '-', r['iperf_down_mbit_s'] or '-',
               ratio(r['down_mb_s'], qemu and qemu['down_mb_s']), ratio(r['up_mb_s'], qemu and qemu['up_mb_s']),
               ratio(qemu and qemu['rtt_ms'], r['rtt_ms']),
               ratio(r['iperf_up_mbit_s'], qemu and qemu['iperf_up_mbit_s']),
               ratio(r['iperf_down_mbit_s'], qemu and qemu['iperf_down_mbit_s'])))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('build')
    parser.add_argument('guest')
    parser.add_argument('--quick', action='store_true', help='smaller transfers, one run each')
    parser.add_argument('--only', help='comma-separated adapter names (as in the table)')
    parser.add_argument('--json', help='write the figures here')
    parser.add_argument('--baseline', help="another build directory whose viridian runs too")
    args = parser.parse_args()
    args.down, args.up, args.repeat, args.pings = (8, 4, 1, 5) if args.quick else (32, 16, 3, 20)
    args.iperf_seconds = 2 if args.quick else 5
    server = Server(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    # The host's iperf3 server (Debian's iperf3), one client at a time.
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        iperf_port = s.getsockname()[1]
    iperf_server = subprocess.Popen(['iperf3', '-s', '-B', '127.0.0.1', '-p', str(iperf_port)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = guest_commands(port, args.down * MB, args.up * MB, args.repeat, args.pings, iperf_port,
                         args.iperf_seconds)
    wanted = set(args.only.split(',')) if args.only else None
    rows = []
    with tempfile.TemporaryDirectory(prefix='viridian-net-bench-') as work:
        virtio_initrd = None
        configs = [(name, emulator, adapter, args.build) for name, emulator, adapter in CONFIGS]
        if args.baseline:
            configs[2:2] = [(name + ' (baseline)', emulator, adapter, args.baseline)
                            for name, emulator, adapter in CONFIGS if emulator == 'viridian']
        for name, emulator, adapter, build in configs:
            if wanted and name.replace(' (baseline)', '') not in wanted:
                continue
            initrd = os.path.join(args.guest, 'initramfs.cpio.gz')
            if adapter == 'virtio-net-pci':
                virtio_initrd = virtio_initrd or virtio_cpio(args.guest, work)
                initrd = virtio_initrd
            argv = command_line(build, args.guest, emulator, adapter, run, initrd)
            rows.append(measure(name, argv, work, 2 * args.repeat))
    server.shutdown()
    iperf_server.kill()
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    report(rows, args)


if __name__ == '__main__':
    main()
