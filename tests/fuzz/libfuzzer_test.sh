#!/usr/bin/env bash
# The fuzz targets under clang 14's libFuzzer with AddressSanitizer and
# UndefinedBehaviorSanitizer, each for a bounded time (FUZZ_SECONDS, default
# 40: the CI run holds the whole suite under 45 minutes; a longer run is
# `scripts/fuzz.sh SECONDS TARGET`), through scripts/fuzz.sh, one target per
# processor at a time: a crash, a hang or a sanitizer report fails.
# The seed is fixed (FUZZ_SEED, default 1) so that every run of the suite tries
# the same inputs in the same order and a red run is reproducible: finding new
# bugs is the job of longer, unseeded runs of scripts/fuzz.sh.
# Exits 77 (skipped) when clang 14 or its libFuzzer runtime is not installed
# (scripts/setup.sh installs them).
set -u
source_root=$1
# shellcheck source=scripts/packages.sh
source "$source_root/scripts/packages.sh"
if [ -n "$(packages_missing clang-14 libclang-rt-14-dev)" ]; then
    echo "clang-14 / libclang-rt-14-dev not installed: skipped"
    exit 77
fi
FUZZ_SEED=${FUZZ_SEED:-1} exec "$source_root/scripts/fuzz.sh" "${FUZZ_SECONDS:-40}" interpreter hypercall qmp gdb snapshot snapshot-file vhd vhdx ide vmbus scsi-disk vmbus-channel netvsp e1000 recording
