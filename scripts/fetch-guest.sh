#!/usr/bin/env bash
# Builds viridian's default guest into guest/ (gitignored) from Debian's
# archive alone:
#   guest/vmlinuz              the stock kernel that linux-image-amd64 depends on
#   guest/initramfs.cpio.gz    busybox-static, scripts/guest-init/init as /init,
#                              the kernel modules named in
#                              scripts/guest-init/modules.list (with what they need),
#                              and the Hyper-V daemons (hyperv-daemons: hv_kvp_daemon,
#                              hv_vss_daemon, hv_fcopy_daemon) with the two libc6
#                              files they need, and iperf3 (iperf3, libiperf0,
#                              libsctp1, libssl3's libcrypto, libc6's libm)
#   guest/modules.txt          the modules in the initramfs, one path a line
#   guest/kernel.config, guest/kernel-release   (Debian ships no real System.map)
#   guest/stamp                what the files were built from
# docs/guest.md describes the guest. Idempotent and fast on a second run: it
# does nothing while guest/stamp matches the package versions apt knows and
# the inputs in scripts/. Downloads are kept in guest/cache/, so a rebuild
# after editing the init script needs no network.
#
# Usage: scripts/fetch-guest.sh [--force]
# Environment: VIRIDIAN_GUEST_DIR (default guest), SOURCE_DATE_EPOCH (the
# mtime of every file in the initramfs; default 0, so that the same inputs
# give the same bytes).
#
# Needs apt-get/apt-cache and dpkg-deb (any Debian), gzip, and cpio (GNU cpio
# is installed when running as root; otherwise busybox's own cpio is used).
# Root is needed only to run `apt-get update` when apt has no package lists
# and to put device nodes into the initramfs (without them /init still opens
# the console itself).
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$self")/.."

force=0
for arg in "$@"; do
    case $arg in
    --force) force=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "fetch-guest.sh: unknown argument '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

out=${VIRIDIAN_GUEST_DIR:-guest}
cache=$out/cache
inputs_dir=scripts/guest-init
say() { echo "fetch-guest.sh: $*"; }
die() {
    echo "fetch-guest.sh: $*" >&2
    exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }

for tool in apt-get apt-cache dpkg-deb gzip sha256sum; do
    command -v "$tool" >/dev/null || die "'$tool' is missing; this script needs a Debian system"
done

# What the guest is built from, besides the packages.
inputs_hash=$(cat "$self" "$inputs_dir/init" "$inputs_dir/profile" "$inputs_dir/modules.list" |
    sha256sum | cut -d' ' -f1)

candidate() { # candidate version of package $1, empty when apt does not know it
    apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2; exit }'
}
kernel_package() { # the versioned kernel package linux-image-amd64 depends on
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

resolve() {
    kpkg=$(kernel_package)
    kver=${kpkg:+$(candidate "$kpkg")}
    bbver=$(candidate busybox-static)
    hdver=$(candidate hyperv-daemons)
    lcver=$(candidate libc6)
    ipver=$(candidate iperf3)
    lipver=$(candidate libiperf0)
    sctpver=$(candidate libsctp1)
    sslver=$(candidate libssl3)
}
resolve
if [ -z "$kpkg" ] || [ -z "$kver" ] || [ -z "$bbver" ] || [ -z "$hdver" ] || [ -z "$lcver" ] ||
    [ -z "$ipver" ] || [ -z "$lipver" ] || [ -z "$sctpver" ] || [ -z "$sslver" ]; then
    # No package lists yet (a fresh machine), or lists without these.
    if [ -f "$out/stamp" ] && [ "$force" -eq 0 ] &&
        grep -qx "inputs $inputs_hash" "$out/stamp" && [ -f "$out/vmlinuz" ] &&
        [ -f "$out/initramfs.cpio.gz" ]; then
        say "apt knows no kernel package, but $out/ was built from the current inputs; keeping it"
        exit 0
    fi
    is_root || die "apt has no package lists for linux-image-amd64/busybox-static; run 'apt-get update' as root (or run this script as root)"
    say "apt-get update"
    apt-get update -q >/dev/null
    resolve
    [ -n "$kpkg" ] || die "apt knows no linux-image-amd64 (is this Debian on amd64 with 'main' enabled?)"
    [ -n "$kver" ] || die "apt has no candidate version of $kpkg"
    [ -n "$bbver" ] || die "apt knows no busybox-static"
    [ -n "$hdver" ] || die "apt knows no hyperv-daemons"
    [ -n "$lcver" ] || die "apt knows no libc6"
    [ -n "$ipver" ] && [ -n "$lipver" ] && [ -n "$sctpver" ] && [ -n "$sslver" ] ||
        die "apt knows no iperf3, libiperf0, libsctp1 or libssl3"
fi

stamp_text="kernel-package $kpkg $kver
busybox-static $bbver
hyperv-daemons $hdver
libc6 $lcver
iperf3 $ipver libiperf0 $lipver libsctp1 $sctpver libssl3 $sslver
inputs $inputs_hash"

if [ "$force" -eq 0 ] && [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp_text" ] &&
    [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.cpio.gz" ]; then
    say "$out/ is up to date ($kpkg $kver)"
    exit 0
fi

mkdir -p "$cache"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/viridian-guest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# fetch PACKAGE VERSION: prints the path of its .deb in the cache,
# downloading it unless the cache already has that version.
fetch() {
    local pkg=$1 ver=$2 deb
    for deb in "$cache/${pkg}"_*.deb; do
        [ -f "$deb" ] || continue
        if [ "$(dpkg-deb -f "$deb" Package Version 2>/dev/null | tr '\n' ' ')" = "Package: $pkg Version: $ver " ]; then
            echo "$deb"
            return
        fi
    done
    say "downloading $pkg $ver" >&2
    # As root, apt hands downloads to its _apt user, which may not reach the
    # cache folder; it then warns and downloads as root anyway.
    local sandbox=()
    is_root && sandbox=(-o APT::Sandbox::User=root)
    if ! (cd "$cache" && apt-get download -q "${sandbox[@]}" "$pkg=$ver" >&2); then
        is_root || die "cannot download $pkg $ver (stale package lists? run 'apt-get update' as root)"
        say "download failed; refreshing the package lists and trying once more" >&2
        apt-get update -q >/dev/null
        (cd "$cache" && apt-get download -q "${sandbox[@]}" "$pkg=$ver" >&2) ||
            die "cannot download $pkg $ver from Debian's archive"
    fi
    for deb in "$cache/${pkg}"_*.deb; do
        if [ "$(dpkg-deb -f "$deb" Version 2>/dev/null)" = "$ver" ]; then
            echo "$deb"
            return
        fi
    done
    die "apt-get download left no $pkg $ver in $cache"
}

kernel_deb=$(fetch "$kpkg" "$kver")
busybox_deb=$(fetch busybox-static "$bbver")
daemons_deb=$(fetch hyperv-daemons "$hdver")
libc_deb=$(fetch libc6 "$lcver")
iperf_debs=("$(fetch iperf3 "$ipver")" "$(fetch libiperf0 "$lipver")" "$(fetch libsctp1 "$sctpver")"
    "$(fetch libssl3 "$sslver")")

say "extracting $kpkg $kver"
dpkg-deb -x "$kernel_deb" "$tmp/kernel"
dpkg-deb -x "$busybox_deb" "$tmp/busybox"
busybox=$tmp/busybox/bin/busybox
[ -x "$busybox" ] || die "busybox-static $bbver has no /bin/busybox"
dpkg-deb -x "$daemons_deb" "$tmp/daemons"
dpkg-deb -x "$libc_deb" "$tmp/libc"
for deb in "${iperf_debs[@]}"; do
    dpkg-deb -x "$deb" "$tmp/iperf"
done

vmlinuz=$(find "$tmp/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n 1)
[ -n "$vmlinuz" ] || die "$kpkg has no /boot/vmlinuz-*"
release=${vmlinuz##*/vmlinuz-}
moddir=lib/modules/$release
[ -d "$tmp/kernel/$moddir" ] || die "$kpkg has no /$moddir"

# GNU cpio if there (installed now when root), else busybox's own.
if ! command -v cpio >/dev/null && is_root; then
    say "installing cpio"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends cpio >/dev/null ||
        say "could not install cpio; using busybox cpio"
fi
if command -v cpio >/dev/null; then
    cpio_create() { cpio --quiet -o -H newc -R 0:0 --reproducible; }
else
    cpio_create() { "$busybox" cpio -o -H newc -R 0:0 2>/dev/null; }
fi

# The module dependency graph of the whole tree (busybox depmod: the same
# tool the guest's modprobe was written against, and no kmod needed here).
"$busybox" depmod -b "$tmp/kernel" "$release"

# The closure of modules.list over modules.dep, as paths relative to moddir.
# A listed name that is built into the kernel is fine; one that is neither a
# module nor built in is a mistake in the list.
modules=$(awk -v listfile="$inputs_dir/modules.list" -v builtin="$tmp/kernel/$moddir/modules.builtin" '
    function norm(s) { gsub(/-/, "_", s); return s }
    function base(path,   b) { b = path; sub(/.*\//, "", b); sub(/\.ko(\.[a-z]+)?$/, "", b); return norm(b) }
    function add(path,   i, n, d) {
        if (path in picked) return
        picked[path] = 1
        n = split(deps[path], d, " ")
        for (i = 1; i <= n; i++) add(d[i])
    }
    FILENAME == builtin { builtins[base($0)] = 1; next }
    {
        path = $1; sub(/:$/, "", path)
        deps[path] = $0; sub(/^[^:]*:[ ]*/, "", deps[path])
        byname[base(path)] = path
        order[++count] = path
    }
    END {
        while ((getline line < listfile) > 0) {
            sub(/#.*/, "", line); gsub(/[ \t]/, "", line)
            if (line == "") continue
            if (line ~ /\/$/) {
                found = 0
                for (i = 1; i <= count; i++)
                    if (index(order[i], line) == 1) { add(order[i]); found = 1 }
                if (!found) { print "no modules under " line > "/dev/stderr"; bad = 1 }
            } else if (norm(line) in byname) {
                add(byname[norm(line)])
            } else if (!(norm(line) in builtins)) {
                print "no module named " line > "/dev/stderr"; bad = 1
            }
        }
        if (bad) exit 1
        for (i = 1; i <= count; i++) if (order[i] in picked) print order[i]
    }' "$tmp/kernel/$moddir/modules.builtin" "$tmp/kernel/$moddir/modules.dep") ||
    die "$inputs_dir/modules.list names something $kpkg does not have"
modules=$(echo "$modules" | LC_ALL=C sort)

say "building the initramfs ($(echo "$modules" | wc -l) modules)"
root=$tmp/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,mnt,var/log,"$moddir"}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
install -m 0755 "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list-full); do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
install -m 0755 "$inputs_dir/init" "$root/init"
install -m 0644 "$inputs_dir/profile" "$root/etc/profile"
# The Hyper-V daemons (the guest side of the KVP, VSS and file-copy
# services; docs/guest.md), dynamically linked against glibc: its loader
# and libc are all they need.
mkdir -p "$root/lib/x86_64-linux-gnu" "$root/lib64" "$root/usr/libexec/hypervkvpd" "$root/var/lib/hyperv"
for daemon in hv_kvp_daemon hv_vss_daemon hv_fcopy_daemon; do
    install -m 0755 "$tmp/daemons/usr/sbin/$daemon" "$root/usr/sbin/$daemon" ||
        die "hyperv-daemons $hdver has no /usr/sbin/$daemon"
done
cp "$tmp/daemons/usr/libexec/hypervkvpd/"* "$root/usr/libexec/hypervkvpd/"
for lib in ld-linux-x86-64.so.2 libc.so.6; do
    install -m 0755 "$tmp/libc/lib/x86_64-linux-gnu/$lib" "$root/lib/x86_64-linux-gnu/$lib" ||
        die "libc6 $lcver has no /lib/x86_64-linux-gnu/$lib"
done
ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
# iperf3 for the network tests and benchmarks (docs/network.md), with the
# libraries it links (each by its soname; cp -L follows the versioned links).
install -m 0755 "$tmp/iperf/usr/bin/iperf3" "$root/usr/bin/iperf3" || die "iperf3 $ipver has no /usr/bin/iperf3"
for lib in libiperf.so.0 libsctp.so.1 libcrypto.so.3; do
    cp -L "$tmp/iperf/usr/lib/x86_64-linux-gnu/$lib" "$root/lib/x86_64-linux-gnu/$lib" ||
        die "the iperf3 packages have no /usr/lib/x86_64-linux-gnu/$lib"
done
install -m 0755 "$tmp/libc/lib/x86_64-linux-gnu/libm.so.6" "$root/lib/x86_64-linux-gnu/libm.so.6" ||
    die "libc6 $lcver has no /lib/x86_64-linux-gnu/libm.so.6"
# What hv_kvp_daemon reports as the guest's OS (the KVP Auto pool's OSName, OSVersion).
printf 'NAME="viridian guest"\nID=viridian-guest\nVERSION_ID="%s"\nPRETTY_NAME="viridian guest (Debian kernel %s)"\n' \
    "$release" "$release" >"$root/etc/os-release"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' >"$root/etc/group"
if is_root; then
    # The kernel opens /dev/console for init before /init runs.
    mknod -m 0600 "$root/dev/console" c 5 1
    mknod -m 0666 "$root/dev/null" c 1 3
fi

(cd "$tmp/kernel/$moddir" && echo "$modules" | while read -r m; do
    mkdir -p "$root/$moddir/${m%/*}"
    cp "$m" "$root/$moddir/$m"
done)
for index in modules.builtin modules.builtin.modinfo modules.order; do
    [ -f "$tmp/kernel/$moddir/$index" ] && cp "$tmp/kernel/$moddir/$index" "$root/$moddir/"
done
"$busybox" depmod -b "$root" "$release"

epoch=${SOURCE_DATE_EPOCH:-0}
find "$root" -exec touch -h -d "@$epoch" {} +
new=$tmp/out
mkdir -p "$new"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio_create) | gzip -9 -n >"$new/initramfs.cpio.gz"
cp "$vmlinuz" "$new/vmlinuz"
cp "$tmp/kernel/boot/config-$release" "$new/kernel.config"
echo "$release" >"$new/kernel-release"
echo "$modules" >"$new/modules.txt"

for f in vmlinuz initramfs.cpio.gz kernel.config kernel-release modules.txt; do
    mv -f "$new/$f" "$out/$f"
done
echo "$stamp_text" >"$out/stamp"

# Keep only the packages this guest was built from.
for deb in "$cache"/*.deb; do
    case $deb in
    "$kernel_deb" | "$busybox_deb" | "$daemons_deb" | "$libc_deb") ;;
    *) rm -f "$deb" ;;
    esac
done

say "$out/vmlinuz ($release, $(du -h "$out/vmlinuz" | cut -f1)), $out/initramfs.cpio.gz ($(du -h "$out/initramfs.cpio.gz" | cut -f1))"
