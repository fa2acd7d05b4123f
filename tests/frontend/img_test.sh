#!/bin/bash
# viridian-img end to end, with qemu-img 7.2 as the oracle for the formats
# both tools read: images viridian-img writes pass `qemu-img check` and read
# back byte for byte through `qemu-img convert`, and images qemu-img writes
# read back through viridian-img. Usage: img_test.sh VIRIDIAN_IMG
set -u
IMG=$1
QEMU_IMG=$(command -v qemu-img || true)
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# A 24 MiB source: random data, a hole, a zeroed range, data at the very end.
SRC=$DIR/source.raw
truncate -s 24M "$SRC"
head -c 3M /dev/urandom | dd of="$SRC" bs=1M seek=1 conv=notrunc status=none
head -c 1M /dev/zero | dd of="$SRC" bs=1M seek=6 conv=notrunc status=none
head -c 512K /dev/urandom | dd of="$SRC" bs=512K seek=47 conv=notrunc status=none
head -c 7000 /dev/urandom | dd of="$SRC" bs=1 seek=10000000 conv=notrunc status=none

for fmt in raw vpc vhdx; do
    for sub in dynamic fixed; do
        [ $fmt = raw ] && [ $sub = fixed ] && continue
        opts=()
        [ $fmt != raw ] && opts=(-o subformat=$sub)
        [ $fmt = vpc ] && opts=(-o subformat=$sub,force_size=on)
        name="$fmt/$sub"
        out=$DIR/out.$fmt
        rm -f "$out"
        if ! "$IMG" convert -f raw -O $fmt "${opts[@]}" "$SRC" "$out" > "$DIR/log" 2>&1; then
            fail "$name: viridian-img convert to $fmt: $(cat "$DIR/log")"
            continue
        fi
        "$IMG" check -f $fmt "$out" > "$DIR/log" 2>&1 || fail "$name: viridian-img check: $(cat "$DIR/log")"
        if [ -n "$QEMU_IMG" ]; then
            # qemu-img 7.2 checks VHDX; it has no check for vpc.
            if [ $fmt = vhdx ]; then
                "$QEMU_IMG" check -f $fmt "$out" > "$DIR/log" 2>&1 ||
                    fail "$name: qemu-img check: $(cat "$DIR/log")"
            fi
            rm -f "$DIR/back.raw"
            "$QEMU_IMG" convert -f $fmt -O raw "$out" "$DIR/back.raw" &&
                cmp -s "$SRC" "$DIR/back.raw" && pass "$name: written by viridian-img, read by qemu-img" ||
                fail "$name: qemu-img reads different bytes from viridian-img's image"
            # The other direction: qemu-img writes, viridian-img reads.
            rm -f "$out" "$DIR/back.raw"
            "$QEMU_IMG" convert -f raw -O $fmt "${opts[@]}" "$SRC" "$out" &&
                "$IMG" convert -f $fmt -O raw "$out" "$DIR/back.raw" > "$DIR/log" 2>&1 &&
                cmp -s "$SRC" "$DIR/back.raw" && pass "$name: written by qemu-img, read by viridian-img" ||
                fail "$name: viridian-img reads different bytes from qemu-img's image: $(cat "$DIR/log")"
            "$IMG" info "$out" | grep -q "^file format: $fmt$" ||
                fail "$name: the probe does not find $fmt in qemu-img's image"
        fi
    done
done

# The sizes qemu-img computes for the same request.
if [ -n "$QEMU_IMG" ]; then
    for fmt in raw vpc vhdx; do
        "$IMG" create -f $fmt "$DIR/size.$fmt" 1G > /dev/null 2>&1 || { fail "create -f $fmt 1G"; continue; }
        ours=$("$IMG" info --output=json "$DIR/size.$fmt" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
        theirs=$("$QEMU_IMG" info --output=json "$DIR/size.$fmt" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
        [ -n "$ours" ] && [ "$ours" = "$theirs" ] && pass "$fmt: 1G is $ours bytes for both tools" ||
            fail "$fmt: viridian-img says $ours bytes, qemu-img $theirs"
    done
fi

# Differencing disks (which qemu-img can neither make nor read): a child made
# with -b reads as its parent, map says every range comes from depth 1, and
# the child names its parent.
for fmt in vpc vhdx; do
    parent=$DIR/parent.$fmt child=$DIR/child.$fmt
    rm -f "$parent" "$child" "$DIR/back.raw"
    opts=()
    [ $fmt = vpc ] && opts=(-o force_size=on)
    "$IMG" convert -f raw -O $fmt "${opts[@]}" "$SRC" "$parent" > /dev/null &&
        "$IMG" create -f $fmt -b "$parent" "$child" > /dev/null || { fail "$fmt: making a child"; continue; }
    "$IMG" convert -f $fmt -O raw "$child" "$DIR/back.raw" > /dev/null && cmp -s "$SRC" "$DIR/back.raw" &&
        pass "$fmt: a differencing child reads as its parent" || fail "$fmt: the child reads differently"
    "$IMG" info "$child" | grep -q "^backing file: .*parent.$fmt" &&
        pass "$fmt: info names the parent" || fail "$fmt: info does not name the parent"
    "$IMG" map --output=json "$child" | grep -q '"depth": 0' &&
        fail "$fmt: map of an empty child has ranges at depth 0" ||
        pass "$fmt: map of an empty child takes everything from depth 1"
    "$IMG" commit "$child" | grep -q "^Image committed.$" &&
        "$IMG" check "$parent" > /dev/null && pass "$fmt: commit of an empty child" ||
        fail "$fmt: commit of an empty child"
done

# Bad input: one line on stderr and a non-zero status.
expect_error() {
    local what=$1; shift
    "$@" > "$DIR/out" 2> "$DIR/err"
    local status=$?
    if [ $status -ne 0 ] && [ "$(wc -l < "$DIR/err")" -ge 1 ] && [ ! -s "$DIR/out" ]; then
        pass "$what: status $status, $(head -1 "$DIR/err")"
    else
        fail "$what: status $status, stdout $(cat "$DIR/out"), stderr $(cat "$DIR/err")"
    fi
}
expect_error "missing file" "$IMG" info "$DIR/absent.vhdx"
expect_error "unknown format" "$IMG" info -f qcow9 "$SRC"
expect_error "bad size" "$IMG" create "$DIR/x.img" 12Q
expect_error "unknown command" "$IMG" frobnicate "$SRC"
expect_error "unknown option" "$IMG" info --bogus "$SRC"
head -c 1M /dev/urandom > "$DIR/garbage.vhdx"
expect_error "a file that is not VHDX" "$IMG" info -f vhdx "$DIR/garbage.vhdx"
expect_error "commit of an image without a parent" "$IMG" commit -f raw "$SRC"

echo "$failures failed"
[ $failures -eq 0 ]
