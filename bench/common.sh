# shellcheck shell=bash
# bench/common.sh — sourced (not run) by the benchmarks whose work is a
# Python driver beside QEMU (bench/net.sh, bench/io-compare.sh): the start
# they share. Sourcing it moves to the repository's top. The calling
# script's help is its header comment, up to its `set -euo pipefail` line.
bench_script=$(realpath "$0") # $0 may be relative to the folder left here
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# shellcheck source=scripts/packages.sh
source scripts/packages.sh

# bench_start ARG...: reads the script's arguments. Sets `build` (--build
# DIR; default build), `guest` (VIRIDIAN_GUEST_DIR; default guest) and
# `bench_args`, the rest, for the driver; -h or --help prints the help and
# exits before anything is installed.
bench_start() {
    build=build
    guest=${VIRIDIAN_GUEST_DIR:-guest}
    bench_args=()
    while [ $# -gt 0 ]; do
        case $1 in
        --build) build=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$bench_script" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) bench_args+=("$1"); shift ;;
        esac
    done
}

# bench_needs HINT PACKAGE... -- FILE...: installs QEMU and the other Debian
# packages when they are missing (as root), then exits with HINT when one
# of the files is missing.
bench_needs() {
    local who hint=$1 packages=() f
    who=$(basename "$bench_script")
    shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        packages+=("$1")
        shift
    done
    shift
    install_packages "$who" "${packages[@]}"
    for f in "$@"; do
        [ -e "$f" ] || { echo "$who: $f is missing ($hint)" >&2; exit 1; }
    done
}

# bench_run DRIVER: replaces the script with DRIVER (a Python file), given
# the build folder, the guest folder and the arguments bench_start left.
bench_run() {
    exec python3 "$1" "$build" "$guest" ${bench_args[@]+"${bench_args[@]}"}
}
