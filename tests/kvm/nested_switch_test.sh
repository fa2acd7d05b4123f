#!/usr/bin/env bash
# nested_switch_test.sh — a running Linux guest moved between KVM and the
# interpreter over QMP (x-switch-accel, docs/kvm.md "Switching"), inside the
# nested QEMU guest (nested_run.sh). The Debian guest boots on `--accel kvm`
# with the enlightenments on two vCPUs and runs ten rounds of a workload
# (a checksum, a one-second sleep, its uptime); the nested guest moves the
# machine to the interpreter after round 2, back to KVM after round 4, and
# again after rounds 6 and 8. Checked: every round's checksum, the backend
# QMP reports after each move, the guest powering off with status 0, and
# the guest's clock against the nested guest's (a timer interrupt lost at a
# move would hang a sleep; a TSC handed over wrong would make the clock leap).
# Then the same guest is migrated live from KVM to a file while it runs
# (KVM's dirty log), restored from the file on a KVM machine that moves to
# the interpreter at once, and goes on to its last round there; the
# interpreter's own machine refuses the file (its TSC runs at 1 GHz).
#
#   nested_switch_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when QEMU or the guest (scripts/fetch-guest.sh) is missing.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
viridian=$1 guest=$2
name=kvm-nested-switch
. "$here/nested_checks.sh"
skip_without_guest "$name" "$guest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/run.sh" <<'EOS'
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
guest_cmd="for r in 1 2 3 4 5 6 7 8 9 10; do set -- \$(cat /proc/uptime);"
guest_cmd="$guest_cmd echo sw: round \$r sum \$(seq 1 3000 | md5sum | cut -c1-8) clock \$1; sleep 1; done;"
guest_cmd="$guest_cmd set -- \$(cat /proc/uptime); echo sw: end clock \$1"
{
timeout -s TERM 400 $VIRIDIAN --accel kvm --cpus 2 --memory 256M --kernel vmlinuz --initrd initramfs.cpio.gz \
    --qmp tcp:127.0.0.1:4444,server,wait=off \
    --append "console=ttyS0 panic=-1 quiet viridian.run=\"$guest_cmd\"" 2>&1
echo $? >status
} | while IFS= read -r line; do
    case "$line" in
    "sw: "*) echo "$(printf '%s' "$line" | tr -d '\r') host $(cut -d' ' -f1 /proc/uptime)" ;;
    *) printf '%s\n' "$line" ;;
    esac
done >l2.log &
# qmp COMMAND...: one session, its replies on stdout.
qmp() {
    { printf '{"execute": "qmp_capabilities"}\n'; for c in "$@"; do printf '%s\n' "$c"; done; sleep 4; } |
        timeout 30 nc 127.0.0.1 4444 | tr -d '\r' | grep -v '"QMP"'
}
wait_line() { # wait_line FILE PATTERN: until a line of FILE starts with PATTERN (or 300 s)
    waited=0
    while [ $waited -lt 600 ] && ! grep -q "^$2" "$1" 2>/dev/null; do
        sleep 0.5
        waited=$((waited + 1))
    done
}
for step in "2 interp" "4 kvm" "6 interp" "8 kvm"; do
    set -- $step
    wait_line l2.log "sw: round $1 "
    qmp "{\"execute\": \"x-switch-accel\", \"arguments\": {\"accel\": \"$2\"}}" '{"execute": "x-query-accel"}' \
        '{"execute": "query-kvm"}' | sed "s/^/qmp after round $1: /"
done
wait
sed 's/^/l2| /' l2.log
echo "kvm-switch: viridian exit status $(cat status)"

# A live migration from KVM to a file while the guest runs (KVM's dirty
# log: the pages the guest writes under KVM are sent again).
guest_cmd="for r in 1 2 3 4 5 6 7 8; do echo mg: round \$r sum \$(seq 1 3000 | md5sum | cut -c1-8); sleep 1; done"
args="--cpus 2 --memory 256M --kernel vmlinuz --initrd initramfs.cpio.gz"
timeout -s TERM 200 $VIRIDIAN --accel kvm $args --qmp tcp:127.0.0.1:4444,server,wait=off \
    --append "console=ttyS0 panic=-1 quiet viridian.run=\"$guest_cmd\"" >source.log 2>&1 &
source=$!
wait_line source.log "mg: round 2 "
qmp '{"execute": "migrate", "arguments": {"uri": "file:guest.snap"}}' | sed 's/^/qmp migrate: /'
waited=0
while [ $waited -lt 60 ]; do
    state=$(qmp '{"execute": "query-migrate"}' | grep -o '"status": "[a-z]*"' | head -n 1)
    case $state in *completed* | *failed* | *cancelled*) break ;; esac
    sleep 1
    waited=$((waited + 1))
done
echo "kvm-migrate: source says $state"
qmp '{"execute": "quit"}' >/dev/null
wait $source
sed 's/^/src| /' source.log
# On the interpreter's own machine the guest's TSC would run at another
# rate than the one it calibrated: refused. On a KVM machine, moved to the
# interpreter as soon as it runs: it goes on there.
$VIRIDIAN --accel interp $args --incoming file:guest.snap --append "console=ttyS0" >refused.log 2>&1
echo "kvm-migrate: restored on interp's machine, exit status $?"
sed 's/^/refused| /' refused.log
timeout -s TERM 300 $VIRIDIAN --accel kvm $args --incoming file:guest.snap --qmp tcp:127.0.0.1:4444,server,wait=off \
    --append "console=ttyS0 panic=-1 quiet viridian.run=\"$guest_cmd\"" >restored.log 2>&1 &
restored=$!
# Asked until the restored machine runs (QMP answers before it does).
for try in $(seq 60); do
    answer=$(qmp '{"execute": "x-switch-accel", "arguments": {"accel": "interp"}}' '{"execute": "x-query-accel"}')
    if printf '%s\n' "$answer" | grep -q '"accel": "interp"'; then
        printf '%s\n' "$answer" | sed 's/^/qmp restored: /'
        break
    fi
    sleep 0.5
done
wait $restored
echo "kvm-migrate: restored on kvm, moved to interp, exit status $?"
sed 's/^/restored| /' restored.log
EOS

start=$(date +%s)
"$here/nested_run.sh" --file "$guest/vmlinuz" --file "$guest/initramfs.cpio.gz" --script "$work/run.sh" \
    "$viridian" 560 >"$work/out" 2>&1
status=$?
cat "$work/out"
echo "$name: nested run status $status in $(($(date +%s) - start)) s"
[ "$status" -ne 77 ] || exit 77

out=$work/out
for r in 1 2 3 4 5 6 7 8 9 10; do
    check "round $r's checksum is right" "^l2\\| sw: round $r sum ee976274 "
done
for step in "2 interp false 1" "4 kvm true 2" "6 interp false 3" "8 kvm true 4"; do
    set -- $step
    check "after round $1 the vCPUs run on $2" \
        "^qmp after round $1: \\{\"return\": \\{\"accel\": \"$2\", \"last-switch-us\": [0-9]+, \"switchable\": true, \"switches\": $4\\}\\}"
    check "after round $1 query-kvm says enabled: $3" \
        "^qmp after round $1: \\{\"return\": \\{\"enabled\": $3, \"present\": true\\}\\}"
done
check "the guest's command ends with status 0" '^l2\| viridian-guest: exit status 0'
check "viridian powers off with status 0" '^kvm-switch: viridian exit status 0$'
check_absent "no program or kernel fault in the guest" \
    '^l2\| .*(Segmentation fault|Illegal instruction|BUG:|Oops|rcu_sched self-detected)'
# The guest's clock against the nested guest's from round 1 to the end:
# within a fifth and a second, moves included.
clock=$(sed -n 's/^l2| sw: \(round 1 sum [0-9a-f]* \|end \)clock \([0-9.]*\) host \([0-9.]*\)$/\2 \3/p' "$work/out" |
    tr '\n' ' ')
check_clock "the guest's clock keeps the host's time across the moves" "$clock" 9.9 1
# The migration from KVM, and where the guest restores from it.
check "the migration from KVM completes" '^kvm-migrate: source says "status": "completed"$'
check "a KVM snapshot is refused on the interpreter's machine (another TSC rate)" \
    "^refused\\| viridian: .*the snapshot's guest TSC runs at [0-9]+ kHz, this machine's at 1000000 kHz"
check "... with status 2" "^kvm-migrate: restored on interp's machine, exit status 2$"
check "the restored machine moves to the interpreter" \
    '^qmp restored: \{"return": \{"accel": "interp", "last-switch-us": [0-9]+, "switchable": true, "switches": 1\}\}'
check "restored on KVM and moved, the guest goes on to its last round" "^restored\\| mg: round 8 sum ee976274"
check "... and powers off with status 0" "^kvm-migrate: restored on kvm, moved to interp, exit status 0$"
check_absent "no round after the migration has a wrong sum" '^restored\| mg: round [0-9]+ sum ([^e]|e[^e])'
finish_checks
