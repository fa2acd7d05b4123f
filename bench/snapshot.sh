#!/usr/bin/env bash
# Save, restore and live-migration benchmark, viridian beside QEMU TCG: the
# work is in bench/snapshot.py (QMP is easier to drive from Python); this
# name stays for the docs that cite it.
#
#   bench/snapshot.sh [BUILD_DIR] [small|big|live-idle|live-busy ...]
exec python3 "$(dirname "$0")/snapshot.py" "$@"
