#!/usr/bin/env bash
# The fuzz targets under clang 14's libFuzzer with AddressSanitizer and
# UndefinedBehaviorSanitizer, each for a bounded time (FUZZ_SECONDS, default
# 40: the CI run holds the whole suite under 45 minutes; a longer run is
# `scripts/fuzz.sh SECONDS TARGET`), through scripts/fuzz.sh: a crash, a hang or a sanitizer report fails.
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
exec "$source_root/scripts/fuzz.sh" "${FUZZ_SECONDS:-40}" interpreter hypercall qmp snapshot snapshot-file vhd vhdx ide vmbus scsi-disk vmbus-channel
