#!/usr/bin/env bash
# System-call and process benchmark: the kernel's own paths, which a guest's
# I/O, shells and builds lean on. The default guest times, with
# /proc/uptime, a million-odd one-byte read/write system calls (dd bs=1),
# fork and exec of /bin/true, and a walk of /sys; viridian and QEMU TCG
# boot the same kernel one after the other, and the table gives QEMU's time
# over each row's (above 1 is faster than QEMU). bench/syscalls.py says how.
#
#   bench/syscalls.sh [--build DIR] [--baseline DIR] [--repeat N] [--quick]
#
#   --baseline DIR  viridian once more from another build (an older
#             commit's): before and after under the same host load
#   --repeat N  each workload N times in one boot, the median kept (3)
#   --quick   a tenth of the work, once: checks the script end to end
#
# Needs the default guest (scripts/fetch-guest.sh) and a built viridian;
# installs QEMU from Debian's archive when it is missing (as root).
set -euo pipefail
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_start "$@"
bench_needs "build, and run scripts/fetch-guest.sh" qemu-system-x86 -- \
    "$build/viridian" "$guest/vmlinuz" "$guest/initramfs.cpio.gz"
bench_run bench/syscalls.py
