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
cd "$(dirname "$0")/.."
build=build
args=()
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$1"); shift ;;
    esac
done
guest=${VIRIDIAN_GUEST_DIR:-guest}
# shellcheck source=scripts/packages.sh
source scripts/packages.sh
install_packages io-compare.sh qemu-system-x86 gnuplot-nox linux-perf
for f in "$build/viridian" "$guest/debian.raw"; do
    [ -e "$f" ] || { echo "io-compare.sh: $f is missing (build, and run sudo scripts/make-debian-disk.sh)" >&2; exit 1; }
done
exec python3 bench/io_compare.py "$build" "$guest" ${args[@]+"${args[@]}"}
