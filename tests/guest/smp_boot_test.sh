#!/usr/bin/env bash
# Guest-boot test on two vCPUs: the stock Debian kernel starts its second
# CPU through INIT/SIPI, both CPUs take timer interrupts and IPIs, and a
# guest `reboot` restarts the machine. It runs with
# --enlightenments off, as on plain hardware (LAPIC timers, APIC IPIs);
# linux-boot-hyperv boots two vCPUs with the Hyper-V interface.
# Checked in the console output:
#   - "smp: Brought up 1 node, 2 CPUs" and /proc/cpuinfo listing processor 1
#     as its own core (cpu cores 2: CPUID's topology leaves, not SMT),
#   - /proc/interrupts: the local timer ticking on both CPUs, and function
#     call IPIs received,
#   - --cpu-features -avx2 reaches the guest: /proc/cpuinfo lists avx but
#     not avx2 (and the kernel uses XSAVE with AVX state),
#   - the reboot path: "reboot: Restarting system", viridian's "restarting"
#     message, and the fresh machine running on (its first ~2.5 billion
#     instructions, the kernel's decompressor, until --max-instructions ends
#     the run with status 5; `--no-reboot` is covered by cli_test.sh),
#   - no TSC warp / unstable clocksource or other device warnings.
# The run is --deterministic: with host time, a busy host that preempts
# viridian during the kernel's PIT-based TSC calibration makes Linux fall
# back to its slow calibration ("Fast TSC calibration failed"), which says
# nothing about the devices (tests/guest/linux_boot_test.sh covers host time).
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
require_guest "$guest"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
limit=9000000000 # the first boot takes about 6.5 billion
timeout 900 "$viridian" --deterministic --cpus 2 --max-instructions $limit --enlightenments off --cpu-features=-avx2 \
    --kernel "$guest/vmlinuz" \
    --initrd "$guest/initramfs.cpio.gz" \
    --append 'console=ttyS0 panic=-1 viridian.run="cat /proc/cpuinfo /proc/interrupts; reboot -f"' \
    --stats >"$out" 2>&1 </dev/null
status=$?
# The console ends lines with CR LF.
sed -i 's/\r$//' "$out"
cat "$out"
fail() {
    echo "smp-boot: $*"
    exit 1
}
[ "$status" -eq 5 ] || fail "viridian exited with status $status, expected 5 (the instruction limit, in the second boot)"
grep -q "viridian-guest: ready" "$out" || fail "no ready marker"
grep -q "smp: Brought up 1 node, 2 CPUs" "$out" || fail "the second CPU did not come up"
grep -qE "^processor[[:space:]]+: 1$" "$out" || fail "/proc/cpuinfo does not list processor 1"
grep -qE "^cpu cores[[:space:]]+: 2$" "$out" || fail "the vCPUs are not reported as two cores"
grep -qE "LOC: +[1-9][0-9]* +[1-9][0-9]* +Local timer interrupts" "$out" ||
    fail "the local APIC timer does not tick on both CPUs"
grep -qE "CAL: +[0-9]+ +[1-9][0-9]* +Function call interrupts" "$out" ||
    fail "CPU1 received no function-call IPIs"
flags=$(grep -m1 '^flags' "$out")
case " $flags " in *" avx "*) ;; *) fail "/proc/cpuinfo lacks avx" ;; esac
case " $flags " in *" avx2 "*) fail "--cpu-features=-avx2 did not remove avx2" ;; esac
grep -q "x86/fpu: Supporting XSAVE feature 0x004: 'AVX registers'" "$out" ||
    fail "the kernel does not manage AVX state with XSAVE"
grep -q "reboot: Restarting system" "$out" || fail "the kernel did not reboot"
grep -q "the guest reset the machine; restarting" "$out" ||
    fail "viridian did not restart the machine"
[ "$(grep -c "Linux version" "$out")" -eq 1 ] || fail "expected one kernel banner before the limit"
grep -q "^instructions: $limit$" "$out" || fail "the run did not go on to the instruction limit"
fail_on_complaints "$out" "${DEVICE_COMPLAINTS[@]}" "Marking TSC unstable" "TSC warp" \
    "TSC synchronization" "CPU1: failed" "SMT on" "soft lockup" "rcu.*stall"
echo "smp-boot: ok"
