#!/usr/bin/env bash
# nested_run.sh — runs viridian inside a nested QEMU guest that has /dev/kvm.
#
#   nested_run.sh [options] VIRIDIAN TIMEOUT [-- ARGS...]
#
# The build machines have no /dev/kvm, but QEMU TCG with `-cpu max` emulates
# AMD SVM with nested paging, and the Debian kernel's kvm_amd loads in such a
# guest (issue 17). This script boots the default guest's kernel (guest/)
# under `qemu-system-x86_64 -machine pc -accel tcg -cpu max -m 1G`, loads
# irqbypass, ccp (kvm-amd needs its SEV symbols), kvm and kvm-amd from the
# kernel package in guest/cache, and runs `VIRIDIAN ARGS...` there. It
# prints viridian's output (serial console lines, carriage returns dropped)
# and exits with viridian's exit status.
#
# Options:
#   --file PATH     put PATH into the nested guest as /nested/files/NAME
#                   (NAME = its base name; the command runs in that folder);
#                   may be repeated
#   --script FILE   run `sh FILE ARGS...` instead of viridian, in
#                   /nested/files, with $VIRIDIAN naming the binary in the
#                   guest (/nested/viridian)
#   --smp N         vCPUs of the nested guest (default 1; every further one
#                   is a host thread of QEMU's)
#   --kvm-info      also print `ls -l /dev/kvm` and kvm's boot lines
#   --verbose       print the whole console (firmware, kernel, init)
#
# Exit status: the command's; 124 when TIMEOUT (seconds, the whole boot)
# ran out; 77 when qemu-system-x86_64 or the guest (scripts/fetch-guest.sh)
# is missing; 125 when the nested guest could not run the command.
# Lines of its own start with "nested-run:". docs/testing.md "KVM in a
# nested guest" has the numbers.
#
# What it boots, built once and kept in VIRIDIAN_NESTED_CACHE (default
# kvm-nested/ beside VIRIDIAN, i.e. build/kvm-nested), rebuilt when an
# input changes:
#   vmlinux     guest/vmlinuz unpacked: QEMU enters an ELF kernel with a
#               PVH note directly, which skips the XZ decompressor (about
#               3.5 s under TCG)
#   base.cpio   guest/initramfs.cpio.gz unpacked (the kernel unpacks gzip
#               slowly under TCG; the default initramfs itself is unchanged)
#   overlay-*.cpio  viridian, every library `ldd` names and the dynamic
#               loader at their host paths, the four kvm modules and the
#               --file files
# The initrd is base.cpio + overlay + a small archive holding the command
# (Linux unpacks concatenated cpio archives in turn); scripts/guest-init/init
# runs it from `viridian.run=` and prints "viridian-guest: exit status N".
#
# Environment: VIRIDIAN_GUEST_DIR (default guest/ of this tree),
# VIRIDIAN_NESTED_CACHE, NESTED_QEMU_ARGS (more QEMU arguments),
# NESTED_KERNEL_ARGS (more kernel parameters).
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
root_dir=$(cd "$(dirname "$self")/../.." && pwd)

say() { echo "nested-run: $*"; }
die() {
    echo "nested-run: $*" >&2
    exit 125
}
skip() {
    echo "nested-run: $*; skipped"
    exit 77
}
usage() { sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'; }

files=()
script=
smp=1
kvm_info=0
verbose=0
while [ $# -gt 0 ]; do
    case $1 in
    --file)
        [ $# -ge 2 ] || die "--file needs a path"
        files+=("$2")
        shift 2
        ;;
    --script)
        [ $# -ge 2 ] || die "--script needs a file"
        script=$2
        shift 2
        ;;
    --smp)
        [ $# -ge 2 ] && [[ $2 =~ ^[1-8]$ ]] || die "--smp needs a number 1-8"
        smp=$2
        shift 2
        ;;
    --kvm-info) kvm_info=1 && shift ;;
    --verbose) verbose=1 && shift ;;
    -h | --help) usage && exit 0 ;;
    -*) die "unknown option '$1' (try --help)" ;;
    *) break ;;
    esac
done
[ $# -ge 2 ] || {
    usage >&2
    exit 125
}
viridian=$1
limit=$2
shift 2
if [ $# -gt 0 ]; then
    [ "$1" = "--" ] || die "expected -- before viridian's arguments, got '$1'"
    shift
fi
[[ $limit =~ ^[0-9]+$ ]] || die "TIMEOUT must be whole seconds, got '$limit'"
[ -x "$viridian" ] || die "not an executable: $viridian"
[ -z "$script" ] || [ -f "$script" ] || die "no such script: $script"
for f in "${files[@]}"; do [ -f "$f" ] || die "no such file: $f"; done

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (scripts/setup.sh)"
guest=${VIRIDIAN_GUEST_DIR:-$root_dir/guest}
[ -r "$guest/vmlinuz" ] && [ -r "$guest/initramfs.cpio.gz" ] && [ -r "$guest/kernel-release" ] ||
    skip "the guest is not built ($guest); run scripts/fetch-guest.sh"
release=$(cat "$guest/kernel-release")
# fetch-guest.sh keeps the kernel package the guest was built from.
kernel_deb=$(ls "$guest/cache/linux-image-${release}_"*.deb 2>/dev/null | head -n 1)
[ -n "$kernel_deb" ] || skip "no linux-image-$release package in $guest/cache; run scripts/fetch-guest.sh --force"
for tool in cpio dpkg-deb python3 sha256sum timeout; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (scripts/setup.sh installs it)"
done

cache=${VIRIDIAN_NESTED_CACHE:-$(dirname "$viridian")/kvm-nested}
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/nested-run.XXXXXX")
trap 'rm -rf "$work"' EXIT

# stat_key FILE: a key from the file's path, size and mtime, for the big
# inputs fetch-guest.sh writes anew when they change (hashing the kernel
# package would cost 0.3 s a run).
stat_key() { stat -L -c '%n %s %Y' "$1" | sha256sum | cut -c1-16; }
# publish TMP FINAL: moves a finished file into the cache in one step, so
# that runs side by side (meson runs tests in parallel) never see half of it.
publish() { mv -f "$1" "$2"; }
# drop_others PREFIX: removes the cached PREFIX* entries older than the one
# being made (their inputs changed).
drop_others() { find "$cache" -maxdepth 1 -name "$1*" -mmin +1 -exec rm -rf {} +; }

# newc archive of the folder $1 on stdout, owned by root.
pack() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0); }

# The kernel as an ELF with its PVH entry (Debian's is XZ-compressed).
kernel_key=$(stat_key "$guest/vmlinuz")
vmlinux=$cache/vmlinux-$kernel_key
if [ ! -f "$vmlinux" ] && ! python3 - "$guest/vmlinuz" "$work/vmlinux" <<'EOF'; then
import lzma, struct, sys
data = open(sys.argv[1], "rb").read()
start = data.find(b"\xfd7zXZ\x00")
if start < 0:
    sys.exit("no XZ stream in the bzImage")
elf = lzma.LZMADecompressor().decompress(data[start:])
if elf[:4] != b"\x7fELF" or elf[4] != 2:
    sys.exit("the XZ stream is not a 64-bit ELF kernel")
# QEMU boots an ELF kernel only through its PVH entry point: an ELF note
# "Xen" of type 18 (XEN_ELFNOTE_PHYS32_ENTRY).
phoff, = struct.unpack_from("<Q", elf, 0x20)
phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
pvh = False
for i in range(phnum):
    p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", elf, phoff + i * phentsize)
    at, end = p_offset, p_offset + p_filesz
    while p_type == 4 and at + 12 <= end:
        namesz, descsz, ntype = struct.unpack_from("<III", elf, at)
        name = elf[at + 12:at + 12 + namesz].rstrip(b"\0")
        pvh |= name == b"Xen" and ntype == 18
        at += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
if not pvh:
    sys.exit("the kernel has no PVH entry point (CONFIG_PVH)")
open(sys.argv[2], "wb").write(elf)
EOF
    say "cannot unpack $guest/vmlinuz; booting it as it is (about 3.5 s slower)"
    vmlinux=$guest/vmlinuz
elif [ ! -f "$vmlinux" ]; then
    drop_others vmlinux-
    publish "$work/vmlinux" "$vmlinux"
fi

base_key=$(stat_key "$guest/initramfs.cpio.gz")
base=$cache/base-$base_key.cpio
if [ ! -f "$base" ]; then
    gzip -dc "$guest/initramfs.cpio.gz" >"$work/base.cpio" || die "cannot unpack $guest/initramfs.cpio.gz"
    drop_others base-
    publish "$work/base.cpio" "$base"
fi

# The kvm modules, in load order (kvm-amd depends on kvm and ccp, kvm on
# irqbypass).
module_paths=(virt/lib/irqbypass drivers/crypto/ccp/ccp arch/x86/kvm/kvm arch/x86/kvm/kvm-amd)
modules=$cache/modules-$(stat_key "$kernel_deb")
if [ ! -d "$modules" ]; then
    mkdir -p "$work/deb" "$work/modules"
    patterns=()
    for m in "${module_paths[@]}"; do patterns+=("./lib/modules/$release/kernel/$m.ko*"); done
    dpkg-deb --fsys-tarfile "$kernel_deb" | tar -x -C "$work/deb" --wildcards "${patterns[@]}" ||
        die "the kvm modules are not in $kernel_deb"
    for m in "${module_paths[@]}"; do
        src=$(ls "$work/deb/lib/modules/$release/kernel/$m".ko* | head -n 1)
        dst=$work/modules/${m##*/}.ko
        # busybox insmod takes plain modules only.
        case $src in
        *.ko) cp "$src" "$dst" ;;
        *.ko.xz) xz -dc "$src" >"$dst" ;;
        *.ko.zst) zstd -q -dc "$src" >"$dst" ;;
        *.ko.gz) gzip -dc "$src" >"$dst" ;;
        *) die "cannot unpack $src" ;;
        esac
    done
    drop_others modules-
    mv -T "$work/modules" "$modules" 2>/dev/null || [ -d "$modules" ]
fi

# viridian's shared libraries and loader, as ldd resolves them here (none
# for a static binary).
mapfile -t libs < <(ldd "$viridian" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
overlay_inputs=("$self" "$viridian" "${libs[@]}" "$modules"/*.ko "${files[@]}")
overlay_key=$( (
    printf '%s\n' "${libs[@]}" "${files[@]##*/}"
    sha256sum "${overlay_inputs[@]}" | cut -d' ' -f1
) | sha256sum | cut -c1-16)
overlay=$cache/overlay-$overlay_key.cpio
if [ ! -f "$overlay" ]; then
    tree=$work/overlay
    mkdir -p "$tree/nested/files" "$tree/nested/modules"
    install -m 0755 "$viridian" "$tree/nested/viridian"
    for lib in "${libs[@]}"; do
        mkdir -p "$tree$(dirname "$lib")"
        cp -L "$lib" "$tree$lib"
    done
    cp "$modules"/*.ko "$tree/nested/modules/"
    for f in "${files[@]}"; do cp -L "$f" "$tree/nested/files/${f##*/}"; done
    pack "$tree" >"$work/overlay.cpio"
    drop_others overlay-
    publish "$work/overlay.cpio" "$overlay"
    rm -rf "$tree"
fi

# The command (and --script), in a small archive of its own so that the
# overlay is reused across arguments. The kernel's command line cannot carry
# arbitrary arguments (no double quotes), so they go in the script,
# single-quoted.
quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
args=""
for a in "$@"; do args+=" $(quote "$a")"; done
if [ -n "$script" ]; then
    command="VIRIDIAN=/nested/viridian exec sh /nested/script$args </dev/null"
else
    command="exec /nested/viridian$args </dev/null"
fi
kvm_info_commands=""
[ $kvm_info = 0 ] || kvm_info_commands='ls -l /dev/kvm; dmesg | grep -E "Nested (Virtualization|Paging)"'
mkdir -p "$work/run/nested"
cat >"$work/run/nested/run" <<EOF
#!/bin/sh
# Written by tests/kvm/nested_run.sh; /init runs it from viridian.run=.
for m in irqbypass ccp kvm kvm-amd; do
    insmod /nested/modules/\$m.ko || echo "nested-run: insmod \$m failed"
done
if [ -c /dev/kvm ]; then
    echo "nested-run: /dev/kvm after \$(cut -d' ' -f1 /proc/uptime) s of guest uptime"
else
    echo "nested-run: no /dev/kvm after loading the modules"
    dmesg | grep -iE "kvm|svm" | tail -n 5
fi
$kvm_info_commands
cd /nested/files
echo "nested-run: start"
$command
EOF
chmod 0755 "$work/run/nested/run"
[ -z "$script" ] || install -m 0755 "$script" "$work/run/nested/script"
pack "$work/run" >"$work/run.cpio"
cat "$base" "$overlay" "$work/run.cpio" >"$work/initrd"

kernel_args="console=ttyS0 quiet panic=-1"
# The crypto self-tests and trace set-up are the slowest steps of the boot
# under TCG (initcall_debug: about 0.6 s); nothing here needs them.
kernel_args+=" cryptomgr.notests initcall_blacklist=crypto_kdf108_init,init_kprobe_trace"
# The guest runs nothing untrusted; without the speculation mitigations an
# exit to viridian costs about a tenth less (kvm_smoke: 41 vs 46 us).
kernel_args+=" mitigations=off"
kernel_args+=" ${NESTED_KERNEL_ARGS-} viridian.run=/nested/run"
# shellcheck disable=SC2206  # NESTED_QEMU_ARGS is split on purpose
qemu=(qemu-system-x86_64 -machine pc -accel tcg -cpu max -m 1G -smp "$smp"
    -nodefaults -no-user-config -display none -serial stdio -no-reboot
    -kernel "$vmlinux" -initrd "$work/initrd" -append "$kernel_args" ${NESTED_QEMU_ARGS-})

log=$work/console
# Passes the command's part of the console through as it comes: from
# init's ready line to its exit status line (everything with --verbose).
set +e
timeout --kill-after=5 "$limit" "${qemu[@]}" </dev/null 2>&1 | tr -d '\r' | tee "$log" |
    awk -v all=$verbose '
        /^viridian-guest: exit status / { on = 0 }
        all || on { print; fflush() }
        /^viridian-guest: ready$/ { on = 1 }'
qemu_status=${PIPESTATUS[0]}
set -e

status=$(sed -n 's/^viridian-guest: exit status \([0-9]*\)$/\1/p' "$log" | tail -n 1)
if [ -n "$status" ]; then
    exit "$status"
fi
if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
    say "TIMEOUT after ${limit}s"
    exit 124
fi
say "the nested guest ended without an exit status (QEMU status $qemu_status); its last lines:"
tail -n 15 "$log" | sed 's/^/  | /'
exit 125
