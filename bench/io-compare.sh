#!/usr/bin/env bash
# The emulated-against-enlightened I/O report (issue 15; the method and the
# recorded figures are in docs/io-comparison.md): fio in the Debian disk
# guest on viridian's IDE and synthetic SCSI disks, and on QEMU TCG's IDE
# and virtio-blk disks, in one run (bench/io_compare.py says how). Prints
# markdown ready for docs/io-comparison.md and draws the SVG plots into
# docs/ (--svg-dir DIR elsewhere).
#
#   bench/io-compare.sh [--build DIR] [--quick] [--runtime S] [--svg-dir DIR]
#                       [--json FILE] [--perf DIR [--perf-job NAME]...]
#                       [--only viridian|qemu] [--from-json FILE]
#
#   --quick     2 s per fio job instead of 15: checks the script end to end
#               (the two boots still take most of the time)
#   --perf DIR  perf record -g on viridian over the job(s) named by
#               --perf-job (default "seq read 1M qd1"), for both of its disks
#   --from-json FILE  no run: prints the tables and draws the plots of the
#               figures a run saved with --json FILE
#
# Needs guest/debian.raw (sudo scripts/make-debian-disk.sh; or
# VIRIDIAN_GUEST_DIR) and a built viridian; installs QEMU, gnuplot and perf from
# Debian's archive when they are missing (as root). About 25 minutes on a
# loaded 2-core machine, 15 with --quick (the two boots take 6-8 of them).
set -euo pipefail
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_start "$@"
bench_needs "build, and run sudo scripts/make-debian-disk.sh" qemu-system-x86 gnuplot-nox linux-perf -- \
    "$build/viridian" "$guest/debian.raw"
bench_run bench/io_compare.py
