#!/usr/bin/env bash
# Guest-boot test: the stock Debian kernel (guest/, built by
# scripts/fetch-guest.sh) boots on the interpreter, runs commands given on
# its command line and prints their output.
#
#   linux_boot_test.sh VIRIDIAN GUEST_DIR [plain|hyperv] [intel|amd]
#
# The last argument is the CPU model (--cpu, default intel); /proc/cpuinfo
# must name its vendor. The AMD model's Hyper-V guest calls the hypervisor
# with VMMCALL and runs 32-bit SYSCALL through CSTAR, as on AMD hardware.
# plain (the default) boots one vCPU with --enlightenments off, as on bare
# hardware, and powers off with status 0. hyperv boots two vCPUs with the
# Hyper-V interface (docs/hyperv.md) and ends with a guest panic (echo c >
# /proc/sysrq-trigger) that Linux reports through the Hyper-V crash MSRs:
# exit status 8.
# Checked in the console output, both ways:
#   - the initramfs ready marker,
#   - --perfmap's /tmp/perf-PID.map, in perf's format, naming kernel code,
#   - the IOAPIC routing the UART (/proc/interrupts),
#   - the FPU state in the compacted XSAVE format (Linux uses XSAVES),
#   - the SMBIOS tables naming the machine ("DMI: viridian ..."),
#   - none of the boot-log complaints that would name our devices: TSC
#     calibration failure, "IRQ 0 check failed"-style timer problems, the
#     APIC timer being disabled, an unstable clocksource, ACPI errors,
#     unchecked MSR accesses, a machine-check device that fails to start.
# plain: the command exits 0, ACPI power-off ("reboot: Power down"), no
# hypervisor is detected, the LAPIC timer ticks, the TSC is stable.
# hyperv: Linux detects Microsoft Hyper-V and prints the feature line, its
# clocksource is the reference TSC page, its per-CPU clock event device is
# the synthetic timer in direct mode, and that timer's vector ticks on both
# CPUs; CPU1 receives function-call IPIs (sent by hypercall). The
# only TSC complaint allowed is the one Linux prints on purpose on Hyper-V
# without invariant TSC ("Marking TSC unstable due to running on Hyper-V").
# The panic is reported on stderr with the five crash parameters and the
# guest's kernel log (CrashMessage: P3 = its address, P4 = its length).
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
mode=${3:-plain}
vendor=${4:-intel}
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
require_guest "$guest"
show='grep -m1 vendor_id /proc/cpuinfo; grep -H . /sys/devices/system/cpu/vulnerabilities/meltdown /sys/devices/system/cpu/vulnerabilities/mds; cat /proc/interrupts /sys/devices/system/clocksource/clocksource0/current_clocksource; grep Clock.Event.Device /proc/timer_list'
case $mode in
plain) enlightenments=off cpus=1 expected_status=0 run=$show ;;
hyperv) enlightenments=on cpus=2 expected_status=8 run="$show; echo c > /proc/sysrq-trigger" ;;
*)
    echo "linux-boot: unknown mode '$mode' (plain or hyperv)"
    exit 2
    ;;
esac
out=$(mktemp)
perf_map=
trap 'rm -f "$out" "$out.complaints" "$out.pid" $perf_map' EXIT
# --perfmap: the translated blocks named for perf in /tmp/perf-PID.map (the
# shell execs viridian, so the PID is the one it writes down).
timeout 900 bash -c 'echo $$ >"$0"; exec "$@"' "$out.pid" \
    "$viridian" --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" \
    --enlightenments "$enlightenments" --cpus "$cpus" --cpu "$vendor" --stats --perfmap \
    --append "console=ttyS0 panic=-1 viridian.run=\"$run\"" \
    >"$out" 2>&1 </dev/null
status=$?
perf_map=/tmp/perf-$(cat "$out.pid").map
cat "$out"
fail() {
    echo "linux-boot ($mode, $vendor): $*"
    exit 1
}
has() { grep -qE -- "$1" "$out"; }
[ "$status" -eq "$expected_status" ] ||
    fail "viridian exited with status $status, expected $expected_status"
has "viridian-guest: ready" || fail "no ready marker"
# Every line "START SIZE NAME" in hex, as perf reads them; the kernel's own
# code (its text at 0xffffffff8...) among the names.
kernel_blocks=$(grep -cE '^[0-9a-f]+ [0-9a-f]+ guest_ffffffff[0-9a-f]{8} \[phys [0-9a-f]+\]$' "$perf_map")
[ "$kernel_blocks" -ge 1000 ] || fail "--perfmap named $kernel_blocks blocks of kernel code in $perf_map"
grep -qvE '^[0-9a-f]+ [0-9a-f]+ guest_[0-9a-f]+ \[phys [0-9a-f]+\]$' "$perf_map" &&
    fail "$perf_map has lines perf cannot read"
case $vendor in
intel) vendor_id=GenuineIntel ;;
amd) vendor_id=AuthenticAMD ;;
*) fail "unknown CPU model '$vendor' (intel or amd)" ;;
esac
has "^vendor_id\s*: $vendor_id" || fail "/proc/cpuinfo does not name $vendor_id"
# Neither model has Meltdown or MDS (the Intel one says so in
# IA32_ARCH_CAPABILITIES; Linux knows AMD's): no page-table isolation, no VERW.
for flaw in meltdown mds; do
    has "vulnerabilities/$flaw:Not affected" || fail "Linux takes the CPU for one with $flaw"
done
has "IO-APIC +4-edge +ttyS0" || fail "the UART is not routed through the IOAPIC"
# CPUID offers XSAVES, so Linux keeps its FPU state in the compacted format.
has "x86/fpu: Enabled xstate features 0x[0-9a-f]+, context size is [0-9]+ bytes, using 'compacted' format" ||
    fail "Linux does not use the compacted XSAVE format (XSAVES)"
has "DMI: viridian viridian Virtual Machine, BIOS " || fail "the SMBIOS tables were not found"
bad_lines=("${DEVICE_COMPLAINTS[@]}")
if [ "$mode" = plain ]; then
    has "viridian-guest: exit status 0" || fail "the command did not exit 0"
    has "reboot: Power down" || fail "no ACPI power-off"
    has "Hypervisor detected" && fail "a hypervisor was detected with --enlightenments off"
    has "LOC: +[1-9][0-9]* +Local timer interrupts" || fail "no local APIC timer interrupts"
    bad_lines+=("Marking TSC unstable")
else
    has "Hypervisor detected: Microsoft Hyper-V" || fail "Linux did not detect Hyper-V"
    has "Hyper-V: privilege flags low 0x[0-9a-f]+, high 0x[0-9a-f]+, hints 0x[0-9a-f]+, misc 0x[0-9a-f]+" ||
        fail "no Hyper-V feature line"
    has "clocksource: Switched to clocksource hyperv_clocksource_tsc_page" ||
        fail "Linux did not switch to the reference TSC page"
    has "^hyperv_clocksource_tsc_page" || fail "the current clocksource is not the TSC page"
    has "smp: Brought up 1 node, 2 CPUs" || fail "the second CPU did not come up"
    has "Hyper-V: Using IPI hypercalls" || fail "Linux does not send IPIs by hypercall"
    [ "$(grep -c "Clock Event Device: Hyper-V clockevent" "$out")" -eq 2 ] ||
        fail "the synthetic timer is not the clock event device of both CPUs"
    has "HVS: +[1-9][0-9]* +[1-9][0-9]* +Hyper-V stimer0 interrupts" ||
        fail "the synthetic timer did not tick on both CPUs"
    has "CAL: +[0-9]+ +[1-9][0-9]* +Function call interrupts" ||
        fail "CPU1 received no function-call IPIs"
    if grep -iE "Marking TSC unstable" "$out" | grep -qv "due to running on Hyper-V"; then
        fail "the TSC was marked unstable for another reason than Hyper-V"
    fi
    has "^viridian: the guest reported a crash \(Hyper-V crash MSRs\) on VP [01]:" ||
        fail "no crash report from the Hyper-V crash MSRs"
    has "^  P3=0x0*[1-9a-f][0-9a-f]* P4=0x0*[1-9a-f][0-9a-f]*$" ||
        fail "the crash report has no message address and length (P3, P4)"
    # The kernel log the guest handed over ends with the panic itself.
    sed -n '/^  message:$/,$p' "$out" | grep -q "Kernel panic - not syncing: sysrq triggered crash" ||
        fail "the crash message does not contain the panic"
fi
# This run keeps host time: a busy host that preempts viridian during the
# kernel's fast PIT calibration makes Linux fall back to its slow one
# ("Fast TSC calibration failed", seen once in CI with every core busy),
# which says nothing about the devices as long as the slow one finds the
# TSC's rate. Any other calibration failure still fails.
has "tsc: Detected [0-9.]+ MHz processor" || fail "Linux did not calibrate the TSC"
grep -v "tsc: Fast TSC calibration failed" "$out" >"$out.complaints"
fail_on_complaints "$out.complaints" "${bad_lines[@]}"
rm -f "$out.complaints"
echo "linux-boot ($mode, $vendor): ok"
