#!/usr/bin/env bash
# Disk I/O benchmark: fio in the Debian disk guest on viridian's IDE and on
# QEMU TCG's, side by side, and viridian-img convert beside qemu-img convert
# (bench/disk.py says what exactly; docs/benchmarks.md "Disk I/O").
#
#   bench/disk.sh [BUILD_DIR] [fio|convert ...]   (default: build, both)
#
# Needs guest/debian.raw (scripts/make-debian-disk.sh), qemu-system-x86_64
# and qemu-img. Prints markdown tables for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
guest=${VIRIDIAN_GUEST_DIR:-guest}
for f in "$build/viridian" "$build/viridian-img" "$guest/debian.raw"; do
    [ -e "$f" ] || { echo "disk.sh: $f is missing (build, and run scripts/make-debian-disk.sh)" >&2; exit 1; }
done
for tool in qemu-system-x86_64 qemu-img; do
    command -v "$tool" >/dev/null || { echo "disk.sh: $tool is not installed" >&2; exit 1; }
done
exec python3 bench/disk.py "$build" "$guest" "$@"
