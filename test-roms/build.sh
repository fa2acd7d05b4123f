#!/bin/sh
# build.sh — build ROMs without meson (for quick iteration):
#   test-roms/build.sh [outdir] [name...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
outdir=${1:-$here/build}
shift 2>/dev/null || true
mkdir -p "$outdir"
if [ $# -eq 0 ]; then
    set -- $(cd "$here" && ls *.asm | sed 's/\.asm$//')
fi
for name in "$@"; do
    nasm -f elf32 -w-zext-reloc -I "$here/lib/" -o "$outdir/$name.o" "$here/$name.asm"
    ld -m elf_i386 --no-warn-rwx-segments -T "$here/link.ld" -o "$outdir/$name.elf" "$outdir/$name.o"
done
