# tests/guest/common.sh — sourced by the guest-boot tests. The sourcing
# script defines fail MESSAGE (print and exit 1), or begin_guest_test below
# defines it.

# require_guest DIR: exits 77 (skipped) when the default guest is not built.
require_guest() {
    [ -r "$1/vmlinuz" ] && [ -r "$1/initramfs.cpio.gz" ] || {
        echo "guest not built ($1); run scripts/fetch-guest.sh"
        exit 77
    }
}

# Boot-log complaints that would name a problem with our devices or CPU
# model; each test adds the ones its configuration rules out too.
DEVICE_COMPLAINTS=("TSC calibration failed" "IRQ 0 check failed" "APIC timer disabled"
    "clocksource.*unstable" "ACPI Error" "ACPI BIOS Error" "unchecked MSR access"
    "unknown CPU" "may be unstable" "Unable to init MCE")

# fail_on_complaints LOG PATTERN...: fails, showing the lines, if LOG
# matches any PATTERN (case-insensitive extended regular expressions).
fail_on_complaints() {
    local log=$1 bad
    shift
    for bad in "$@"; do
        if grep -qiE "$bad" "$log"; then
            grep -iE "$bad" "$log" | head -3
            fail "boot log contains '$bad'"
        fi
    done
}

# begin_guest_test NAME GUEST_DIR: what most guest tests start with. Skips
# (77) without the guest; makes $work, a folder removed at exit; defines
# fail MESSAGE ("NAME: MESSAGE", exit 1) and has PATTERN (an extended
# regular expression found in $work/out, where the tests keep a boot's log).
begin_guest_test() {
    test_name=$1
    require_guest "$2"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    fail() {
        echo "$test_name: $*"
        exit 1
    }
    has() { grep -qE -- "$1" "$work/out"; }
}
