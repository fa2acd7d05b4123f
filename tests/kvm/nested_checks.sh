# nested_checks.sh — what the nested-guest tests share (sourced): the skip
# when the guest is not built, and the checks they make on what they
# captured (`out` names the captured output). Each check prints "ok - ..."
# or "not ok - ..."; `failures` counts the second kind, and finish_checks
# ends the test with it.

# skip_without_guest NAME GUEST_DIR: exits 77 when fetch-guest.sh has not
# built the guest.
skip_without_guest() {
    for f in "$2/vmlinuz" "$2/initramfs.cpio.gz"; do
        [ -f "$f" ] || {
            echo "$1: $f missing (scripts/fetch-guest.sh); skipped"
            exit 77
        }
    done
}
failures=0
fail_check() {
    echo "not ok - $1"
    failures=$((failures + 1))
}
# check DESCRIPTION PATTERN: some line of the output matches PATTERN (ERE).
check() {
    if grep -qE -- "$2" "$out"; then echo "ok - $1"; else fail_check "$1"; fi
}
# check_absent DESCRIPTION PATTERN: no line does.
check_absent() {
    if grep -qE -- "$2" "$out"; then fail_check "$1"; else echo "ok - $1"; fi
}
# check_clock DESCRIPTION "GUEST0 HOST0 GUEST1 HOST1" MIN_GUEST SLACK: the
# guest's clock moved at least MIN_GUEST seconds between two readings, and
# the nested guest's own clock as much, within a fifth and SLACK seconds.
check_clock() {
    if awk -v c="$2" -v min="$3" -v slack="$4" 'BEGIN {
            if (split(c, t, " ") != 4) exit 1
            guest = t[3] - t[1]; host = t[4] - t[2]
            printf "guest %.2f s, host %.2f s\n", guest, host
            exit !(guest >= min && host <= guest * 1.2 + slack && host >= guest * 0.8 - slack)
        }'; then
        echo "ok - $1"
    else
        fail_check "$1 (clock readings: '$2')"
    fi
}
finish_checks() {
    echo "$failures failure(s)"
    [ "$failures" -eq 0 ]
}
