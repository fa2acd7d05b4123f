#!/usr/bin/env bash
# Parses and loads the stock Debian kernel that scripts/fetch-guest.sh put in
# guest/ (the unit test "the Debian kernel's header is accepted ..."), or
# reports the test skipped (exit 77) when there is no guest yet.
# Usage: debian_kernel_test.sh UNIT_TEST_BINARY GUEST_DIR
set -uo pipefail
tests=$1 guest=$2
if [ ! -f "$guest/vmlinuz" ]; then
    echo "skipped: no $guest/vmlinuz (run scripts/fetch-guest.sh)"
    exit 77
fi
VIRIDIAN_GUEST_KERNEL="$guest/vmlinuz" exec "$tests" --no-intro=true --success=false \
    --test-case="the Debian kernel*"
