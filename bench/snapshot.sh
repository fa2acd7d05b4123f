#!/usr/bin/env bash
# Save/restore benchmark: the default guest (guest/) booted to its shell
# command, saved to a file and restored, in viridian and in QEMU TCG side by
# side (QEMU through QMP `migrate "exec:cat > FILE"` and `-incoming
# "exec:cat FILE"`; QEMU 7.2 has no file: URI). Prints save time, file size
# and restore time (process start to the guest running again) for each.
#
#   bench/snapshot.sh [BUILD_DIR] [MEMORY]      (defaults: build, 512M)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
memory=${2:-512M}
kernel=guest/vmlinuz
initrd=guest/initramfs.cpio.gz
for f in "$build/viridian" "$kernel" "$initrd"; do
    [ -e "$f" ] || { echo "snapshot.sh: $f is missing (build, and run scripts/fetch-guest.sh)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# viridian: --save-at a point late in the boot, then --incoming and run a
# few instructions (the restore time includes making the machine).
append='console=ttyS0 panic=-1 viridian.run="sleep 600"'
"$build/viridian" --memory "$memory" --deterministic --kernel "$kernel" --initrd "$initrd" \
    --append "$append" --save-at 5000000000,"file:$work/v.snap" >"$work/v1.log" 2>&1 </dev/null
v_save=$(sed -n 's/.*saved the machine after .* (in \([0-9.]*\) s).*/\1/p' "$work/v1.log")
v_size=$(stat -c %s "$work/v.snap")
start=$EPOCHREALTIME
"$build/viridian" --memory "$memory" --deterministic --kernel "$kernel" --initrd "$initrd" \
    --append "$append" --incoming "file:$work/v.snap" --max-instructions 5000001000 \
    >"$work/v2.log" 2>&1 </dev/null || true
v_restore=$(seconds "$start" "$EPOCHREALTIME")
grep -q "stopped after the instruction limit" "$work/v2.log" || { tail -3 "$work/v2.log"; exit 1; }

# QEMU TCG: boot, wait for the guest's command to start, migrate to a file.
q_result=$(python3 - "$work" "$memory" "$kernel" "$initrd" "$append" <<'PY'
import json, os, socket, subprocess, sys, time
work, memory, kernel, initrd, append = sys.argv[1:]
def qmp(path):
    for _ in range(200):
        try:
            s = socket.socket(socket.AF_UNIX); s.connect(path); break
        except OSError:
            time.sleep(0.05)
    f = s.makefile('rw')
    json.loads(f.readline())
    def call(cmd, **args):
        f.write(json.dumps({'execute': cmd, 'arguments': args}) + '\n'); f.flush()
        while True:
            reply = json.loads(f.readline())
            if 'return' in reply or 'error' in reply:
                return reply
    call('qmp_capabilities')
    return call
base = ['qemu-system-x86_64', '-machine', 'pc', '-accel', 'tcg', '-m', memory, '-smp', '1',
        '-display', 'none', '-kernel', kernel, '-initrd', initrd, '-append', append]
log = open(f'{work}/q1.log', 'w')
src = subprocess.Popen(base + ['-serial', f'file:{work}/q1.serial', '-qmp', f'unix:{work}/q1.qmp,server=on,wait=off'],
                       stdout=log, stderr=log)
call = qmp(f'{work}/q1.qmp')
deadline = time.time() + 120
while time.time() < deadline:
    if 'viridian-guest' in open(f'{work}/q1.serial', errors='replace').read():
        break
    time.sleep(0.2)
call('migrate', uri=f'exec:cat > {work}/q.snap')
while True:
    info = call('query-migrate')['return']
    if info.get('status') in ('completed', 'failed'):
        break
    time.sleep(0.05)
src.kill(); src.wait()
size = os.path.getsize(f'{work}/q.snap')
start = time.time()
dst = subprocess.Popen(base + ['-serial', 'null', '-incoming', f'exec:cat {work}/q.snap',
                               '-qmp', f'unix:{work}/q2.qmp,server=on,wait=off'], stdout=log, stderr=log)
call = qmp(f'{work}/q2.qmp')
while call('query-status')['return']['status'] != 'running':
    time.sleep(0.01)
restore = time.time() - start
dst.kill(); dst.wait()
print(f"{info['status']} {info.get('total-time', 0) / 1000:.2f} {size} {restore:.2f}")
PY
)
read -r q_status q_save q_size q_restore <<<"$q_result"
[ "$q_status" = completed ] || { echo "snapshot.sh: QEMU's migration $q_status" >&2; exit 1; }

echo "save and restore of a booted $memory guest, $(date +%F), $(nproc) host CPUs"
printf "%-10s %10s %12s %12s\n" emulator "save (s)" "size (MB)" "restore (s)"
printf "%-10s %10s %12.1f %12s\n" viridian "$v_save" "$(awk -v b="$v_size" 'BEGIN { print b / 1e6 }')" "$v_restore"
printf "%-10s %10s %12.1f %12s\n" "QEMU TCG" "$q_save" "$(awk -v b="$q_size" 'BEGIN { print b / 1e6 }')" "$q_restore"
