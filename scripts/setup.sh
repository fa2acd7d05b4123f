#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine for viridian: install every build and
# test dependency from Debian's archive, configure and build into build/, and
# fetch the default Linux guest into guest/ (scripts/fetch-guest.sh).
# Idempotent: safe to run again; it only installs what is missing and
# rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
    build-essential g++ meson ninja-build pkg-config cmake
    libzydis-dev libzycore-dev libxbyak-dev libcapstone-dev libuv1-dev libsdl2-dev zlib1g-dev
    libslirp-dev # user-mode networking (--nic user, platform/net/slirp_backend)
    doctest-dev nlohmann-json3-dev nasm
    qemu-system-x86 qemu-utils
    cpio # the nested KVM guest's initramfs (tests/kvm/nested_run.sh)
    acpica-tools dmidecode # oracles: iasl for the ACPI tables, dmidecode for SMBIOS
    clang-14 libclang-rt-14-dev # libFuzzer and the sanitizers (the libfuzzer test)
    seabios # the system ROM a machine boots through without --kernel (/usr/share/seabios/bios.bin)
    xorriso # El Torito ISO images for the CD-ROM boot test (tests/frontend/cdrom_boot_test.sh)
    gdb # the gdb stub tests (tests/frontend/gdb_test.py, docs/gdb.md)
    lldb # the same stub under LLDB (tests/frontend/lldb_test.py)
)

# shellcheck source=scripts/packages.sh
source scripts/packages.sh
install_packages setup.sh "${PACKAGES[@]}"

if [ ! -f build/build.ninja ]; then
    # A half-configured folder (an interrupted first run) is set up afresh.
    wipe=()
    [ -d build/meson-private ] && wipe=(--wipe)
    meson setup "${wipe[@]}" build --buildtype=release -Dwerror=true
fi
ninja -C build

# The default guest (stock Debian kernel + busybox initramfs) in guest/;
# does nothing when guest/ is already up to date.
scripts/fetch-guest.sh
