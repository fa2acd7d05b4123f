#!/usr/bin/env bash
# Guest-boot test: the stock Debian kernel (guest/, built by
# scripts/fetch-guest.sh) boots on the interpreter, runs a command given on
# its command line, prints its output and powers off with status 0.
# Checked in the console output:
#   - the initramfs ready marker and the command's exit status 0,
#   - the command's output (/proc/interrupts shows the LAPIC timer ticking
#     and the IOAPIC routing the UART),
#   - ACPI power-off ("reboot: Power down"),
#   - none of the boot-log complaints that would name our devices: TSC
#     calibration failure, "IRQ 0 check failed"-style timer problems, the
#     APIC timer being disabled, an unstable clocksource, ACPI errors,
#     unchecked MSR accesses.
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
[ -r "$guest/vmlinuz" ] && [ -r "$guest/initramfs.cpio.gz" ] || {
    echo "guest not built ($guest); run scripts/fetch-guest.sh"
    exit 77
}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout 900 "$viridian" --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
    --append 'console=ttyS0 panic=-1 viridian.run="cat /proc/interrupts"' --stats \
    >"$out" 2>&1 </dev/null
status=$?
cat "$out"
fail() {
    echo "linux-boot: $*"
    exit 1
}
[ "$status" -eq 0 ] || fail "viridian exited with status $status, expected 0 (guest poweroff)"
grep -q "viridian-guest: ready" "$out" || fail "no ready marker"
grep -q "viridian-guest: exit status 0" "$out" || fail "the command did not exit 0"
grep -qE "LOC: +[1-9][0-9]* +Local timer interrupts" "$out" || fail "no local APIC timer interrupts"
grep -qE "IO-APIC +4-edge +ttyS0" "$out" || fail "the UART is not routed through the IOAPIC"
grep -q "reboot: Power down" "$out" || fail "no ACPI power-off"
for bad in "TSC calibration failed" "Marking TSC unstable" "IRQ 0 check failed" \
    "APIC timer disabled" "clocksource.*unstable" "ACPI Error" "ACPI BIOS Error" \
    "unchecked MSR access" "unknown CPU" "may be unstable"; do
    if grep -qiE "$bad" "$out"; then
        grep -iE "$bad" "$out" | head -3
        fail "boot log contains '$bad'"
    fi
done
echo "linux-boot: ok"
