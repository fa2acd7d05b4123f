#!/usr/bin/env bash
# Network benchmark: download, upload, iperf3 both ways and ping through
# user-mode networking (libslirp) for viridian's e1000 and netvsc and QEMU TCG's e1000 and
# virtio-net, one after the other against the same HTTP server on the host's
# loopback, with ratios against QEMU's virtio-net (bench/net.py says how;
# docs/benchmarks.md "Network" has the figures, docs/network.md the method).
#
#   bench/net.sh [--build DIR] [--quick] [--only 'NAME,NAME'] [--baseline DIR] [--json FILE]
#
#   --quick   8 MB down and 4 MB up once each: checks the script end to end
#   --only    some of: viridian e1000, viridian netvsc, QEMU TCG e1000,
#             QEMU TCG virtio-net
#   --baseline DIR  viridian's adapters once more from another build (an
#             older commit's): before and after under the same host load
#
# Needs the default guest (scripts/fetch-guest.sh: guest/vmlinuz, the
# initramfs and the kernel package in guest/cache) and a built viridian;
# installs QEMU and cpio from Debian's archive when they are missing (as
# root). About 6 minutes on a loaded 2-core machine.
set -euo pipefail
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_start "$@"
bench_needs "build, and run scripts/fetch-guest.sh" qemu-system-x86 cpio iperf3 -- \
    "$build/viridian" "$guest/vmlinuz" "$guest/initramfs.cpio.gz" "$guest/kernel-release"
bench_run bench/net.py
