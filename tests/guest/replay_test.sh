#!/usr/bin/env bash
# Record and replay (docs/replay.md) of the Debian guest on 2 vCPUs: a
# recording with commands typed at the shell through a pipe, at moments the
# host chooses (after the prompt, after each command's output), then
#  - a replay with no input prints the same serial output byte for byte and
#    ends at the same instruction count, with the JIT and without it;
#  - gdb on a replay goes back (reverse-stepi, reverse-continue, to the
#    start) and the replay still ends with the same output;
#  - a replay whose 4th typed byte is changed stops with status 9 and one
#    line naming the instruction count where it diverged;
#  - a damaged recording, and one whose kernel file changed, are refused
#    with one line and status 2.
#
#   replay_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when the guest has not been built.
set -u
viridian=$1
guest=$2
# shellcheck source=tests/guest/common.sh
source "$(dirname "$0")/common.sh"
begin_guest_test replay "$guest"
# A copy of the kernel: the last check changes it.
cp "$guest/vmlinuz" "$work/vmlinuz"
machine=(--kernel "$work/vmlinuz" --initrd "$guest/initramfs.cpio.gz" --append 'console=ttyS0 panic=-1'
    --cpus 2)

python3 - "$work" "$viridian" "${machine[@]}" --stats --record "$work/run.vrr" <<'PY' || fail "the recorded session failed"
import os, re, select, subprocess, sys, time
work, argv = sys.argv[1], sys.argv[2:]
process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=open(os.path.join(work, 'record.err'), 'wb'))
os.set_blocking(process.stdout.fileno(), False)
text = b''
def expect(pattern, seconds):
    global text
    end = time.time() + seconds
    while time.time() < end and not re.search(pattern, text):
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        data = process.stdout.read() if ready else None
        if data == b'':
            break
        text += data or b''
    if not re.search(pattern, text):
        sys.exit('replay: never saw %r; the console ends with %r' % (pattern, text[-300:]))
def type_line(line):
    process.stdin.write(line + b'\n')
    process.stdin.flush()
expect(rb'starting a shell', 600)
time.sleep(0.5)
type_line(b'echo hello-$((6*7))')
expect(rb'hello-42', 120)
time.sleep(0.3)
type_line(b'cat /proc/loadavg; uname -r; ls /proc | wc -l')
expect(rb'amd64', 120)
type_line(b'exit')
process.stdin.close()
while process.poll() is None:
    ready, _, _ = select.select([process.stdout], [], [], 1)
    text += (process.stdout.read() if ready else None) or b''
text += process.stdout.read() or b''
open(os.path.join(work, 'record.out'), 'wb').write(text)
sys.exit(process.returncode)
PY
grep -q "recorded [0-9]* inputs" "$work/record.err" || { cat "$work/record.err"; fail "no recording summary"; }
grep -q "reboot: Power down" "$work/record.out" || fail "the recorded guest did not power off"
recorded=$(grep '^instructions:' "$work/record.err")
echo "recorded: $recorded, $(stat -c %s "$work/run.vrr") bytes"

for jit in on off; do
    check_replay 1800 "$work/run.vrr" "$work/record.out" "$work/record.err" --jit "$jit"
    echo "replay with the JIT $jit: identical ($replayed)"
done

# gdb on the replay: reverse steps and continues, back to the start and on
# to the end with the same output (linux_reverse_test.py).
python3 "$(dirname "$0")/linux_reverse_test.py" "$viridian" "$work/run.vrr" "$work/record.out" \
    "$(dirname "$0")/linux_reverse_script.py"
status=$?
[ "$status" -eq 0 ] || [ "$status" -eq 77 ] || fail "reverse execution under gdb (status $status)"

"$viridian" --replay "$work/run.vrr" --replay-alter-input 3 >"$work/altered.out" 2>"$work/altered.err" </dev/null
status=$?
[ "$status" -eq 9 ] || { cat "$work/altered.err"; fail "a changed input: exit status $status, not 9"; }
grep -E "^viridian: replay diverged at instruction [0-9]+ " "$work/altered.err" ||
    { cat "$work/altered.err"; fail "a changed input: no line saying where the replay diverged"; }

# A byte of the event stream changed: zlib's checksum or the parser refuses it.
cp "$work/run.vrr" "$work/damaged.vrr"
size=$(stat -c %s "$work/damaged.vrr")
# Every bit of one byte near the end of the stream flipped (setting it to a
# fixed value would change nothing where the byte already has it).
byte=$(od -An -tu1 -j $((size - 40)) -N1 "$work/damaged.vrr" | tr -d ' ')
printf "\\x$(printf %02x $((byte ^ 0xff)))" | dd of="$work/damaged.vrr" bs=1 seek=$((size - 40)) conv=notrunc status=none
"$viridian" --replay "$work/damaged.vrr" >"$work/damaged.out" 2>&1 </dev/null
status=$?
[ "$status" -eq 2 ] && [ "$(wc -l <"$work/damaged.out")" -eq 1 ] ||
    { cat "$work/damaged.out"; fail "a damaged recording: status $status"; }
cat "$work/damaged.out"
printf 'x' >>"$work/vmlinuz"
"$viridian" --replay "$work/run.vrr" >"$work/changed.out" 2>&1 </dev/null
status=$?
[ "$status" -eq 2 ] && grep -q "changed since the recording" "$work/changed.out" ||
    { cat "$work/changed.out"; fail "a changed kernel: status $status"; }
cat "$work/changed.out"
echo "replay: all checks passed"
