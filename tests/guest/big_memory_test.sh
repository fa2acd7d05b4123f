#!/usr/bin/env bash
# Guest-boot test of RAM above 4 GiB (mmu/pc_memory_map.h): the Debian
# kernel boots with --memory 8G and
#   - /proc/meminfo's MemTotal is more than 7.5 GiB,
#   - the e820 map and /proc/iomem have System RAM from 4 GiB (0x100000000)
#     to 9 GiB (3 GiB stay below the PCI hole, as with QEMU's pc machine),
#   - the root bridge forwards a 64-bit window above RAM,
#   - a program's data lands above 4 GiB and reads back intact: files
#     written to tmpfs take pages from zone Normal (the only zone above
#     4 GiB on x86-64), which the test measures in /proc/zoneinfo as the
#     growth of the zone's anonymous LRU pages (tmpfs pages are swap-backed;
#     its free-page count is no measure: pages the kernel initializes late
#     or frees meanwhile were seen to hide half of them), and a pattern
#     written there has the checksum of the same bytes streamed.
# The amounts are small (the guest runs on the interpreter); what matters is
# where the pages are.
#
#   big_memory_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
require_guest "$guest"
# No double quotes inside: the kernel command line cannot carry them.
run=$(cat <<'EOF'
grep MemTotal /proc/meminfo; grep -i 'system ram' /proc/iomem;
z() { awk '/zone +Normal/{n=1} /zone +Movable/{n=0} n&&/nr_zone_(in)?active_anon/{s+=$2} END{print s}' /proc/zoneinfo; };
a=$(z); dd if=/dev/zero of=/dev/shm/zeros bs=1M count=16 2>/dev/null;
yes viridian-big-memory | head -c 2097152 >/dev/shm/pattern; b=$(z);
echo normal_pages_used=$((b-a));
echo stored $(md5sum </dev/shm/pattern);
echo streamed $(yes viridian-big-memory | head -c 2097152 | md5sum)
EOF
)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout 600 "$viridian" --memory 8G --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
    --enlightenments off --append "console=ttyS0 panic=-1 viridian.run=\"$run\"" \
    >"$out" 2>&1 </dev/null
status=$?
cat "$out"
fail() {
    echo "big-memory: $*"
    exit 1
}
has() { grep -qE -- "$1" "$out"; }
[ "$status" -eq 0 ] || fail "viridian exited with status $status, expected 0"
has "viridian-guest: exit status 0" || fail "the command did not exit 0"
has "BIOS-e820: \[mem 0x0000000100000000-0x000000023fffffff\] usable" ||
    fail "the e820 map has no RAM from 4 GiB to 9 GiB"
has "^100000000-23fffffff : System RAM" || fail "/proc/iomem has no System RAM above 4 GiB"
has "root bus resource \[mem 0x240000000-0x2bfffffff window\]" ||
    fail "the root bridge has no 64-bit window above RAM"
total=$(sed -n 's/^MemTotal: *\([0-9]*\) kB.*/\1/p' "$out")
[ -n "$total" ] && [ "$total" -gt $((15 * 1024 * 1024 / 2)) ] ||
    fail "MemTotal is ${total:-missing} kB, not more than 7.5 GiB"
used=$(sed -n 's/^normal_pages_used=\([0-9-]*\).*/\1/p' "$out")
# 18 MiB written: at least 4096 pages (16 MiB) must have come from above 4 GiB.
[ -n "$used" ] && [ "$used" -ge 4096 ] ||
    fail "only ${used:-no} pages of zone Normal (above 4 GiB) were used for 18 MiB of files"
stored=$(sed -n 's/^stored \([0-9a-f]*\).*/\1/p' "$out")
streamed=$(sed -n 's/^streamed \([0-9a-f]*\).*/\1/p' "$out")
[ -n "$stored" ] && [ "$stored" = "$streamed" ] ||
    fail "the pattern read back from RAM above 4 GiB differs ($stored, streamed $streamed)"
fail_on_complaints "$out" "${DEVICE_COMPLAINTS[@]}"
echo "big-memory: ok (MemTotal $total kB, $used pages of zone Normal used)"
