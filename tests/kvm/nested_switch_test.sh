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
#
#   nested_switch_test.sh VIRIDIAN GUEST_DIR
#
# Exits 77 (skipped) when QEMU or the guest (scripts/fetch-guest.sh) is missing.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
viridian=$1 guest=$2
name=kvm-nested-switch
for f in "$guest/vmlinuz" "$guest/initramfs.cpio.gz"; do
    [ -f "$f" ] || {
        echo "$name: $f missing (scripts/fetch-guest.sh); skipped"
        exit 77
    }
done
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
wait_round() { # wait_round N: until the guest printed round N (or 300 s)
    waited=0
    while [ $waited -lt 600 ] && ! grep -q "^sw: round $1 " l2.log; do
        sleep 0.5
        waited=$((waited + 1))
    done
}
for step in "2 interp" "4 kvm" "6 interp" "8 kvm"; do
    set -- $step
    wait_round "$1"
    qmp "{\"execute\": \"x-switch-accel\", \"arguments\": {\"accel\": \"$2\"}}" '{"execute": "x-query-accel"}' \
        '{"execute": "query-kvm"}' | sed "s/^/qmp after round $1: /"
done
wait
sed 's/^/l2| /' l2.log
echo "kvm-switch: viridian exit status $(cat status)"
EOS

start=$(date +%s)
"$here/nested_run.sh" --file "$guest/vmlinuz" --file "$guest/initramfs.cpio.gz" --script "$work/run.sh" \
    "$viridian" 560 >"$work/out" 2>&1
status=$?
cat "$work/out"
echo "$name: nested run status $status in $(($(date +%s) - start)) s"
[ "$status" -ne 77 ] || exit 77

out=$work/out
. "$here/nested_checks.sh"
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
finish_checks
