#!/bin/bash
# kvm-unit-tests.sh — run the x86 list of kvm-unit-tests on viridian.
#
#   scripts/kvm-unit-tests.sh KUT_DIR [TEST...]
#
# KUT_DIR is a kvm-unit-tests tree configured with --arch=x86_64 and built
# (`./configure --arch=x86_64 && make`); it is not part of viridian and not
# run in CI (see docs/testing.md, "kvm-unit-tests"). With TEST names only
# those tests run, else every test of KUT_DIR/x86/unittests.cfg.
#
# Each test runs as QEMU's runner (x86/run) would run it, translated to
# viridian options: `smp` -> --cpus, `test_args` -> --append, QEMU's
# pc-testdev and isa-debug-exit -> --pc-testdev, `-device hyperv-testdev` ->
# --hyperv-test-device, `-cpu ...,vendor=AuthenticAMD` -> --cpu amd,
# `-cpu ...,-feature` -> --cpu-features (for the features viridian can
# remove), `-m SIZE` -> --memory (at most 3G); other QEMU options are
# dropped, and `check` lines (host settings for KVM) are not looked at. The
# environment that QEMU's runner passes with -initrd is an empty file here.
#
# Judged as QEMU's runner judges: exit status 1 (the test wrote 0 to the
# isa-debug-exit port) is PASS, 77 is SKIP, anything else FAIL; a test that
# outlives its timeout (the cfg's `timeout`, else 90 s, times
# KUT_TIMEOUT_SCALE) is TIMEOUT. Tests that need KVM (`accel = kvm`), an
# i386 build, or are in the `nodefault` group are listed as not run.
#
# Environment: VIRIDIAN (default build/viridian next to this script),
# KUT_LOGS (default /tmp/kvm-unit-tests-logs: one NAME.log per test),
# KUT_TIMEOUT_SCALE (default 1), KUT_EXTRA_ARGS (added to every run, e.g.
# "--jit off").
set -u

if [ $# -lt 1 ] || [ ! -f "$1/x86/unittests.cfg" ]; then
    echo "usage: $0 KVM_UNIT_TESTS_DIR [TEST...]   (a built x86_64 tree)" >&2
    exit 2
fi
kut=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")/.." && pwd)
viridian=${VIRIDIAN:-$here/build/viridian}
logs=${KUT_LOGS:-/tmp/kvm-unit-tests-logs}
scale=${KUT_TIMEOUT_SCALE:-1}
if [ ! -x "$viridian" ]; then
    echo "$0: no viridian binary at $viridian (set VIRIDIAN)" >&2
    exit 2
fi
mkdir -p "$logs"
envfile=$logs/empty.env
: > "$envfile"

# The CPU features viridian's --cpu-features can remove (cpu/state/cpuid_model.cpp),
# in QEMU's spelling where it differs.
removable=" fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush
 mmx fxsr sse sse2 ht pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt
 tsc_deadline_timer aes xsave avx f16c rdrand hypervisor fsgsbase bmi1 avx2 smep bmi2 erms
 rdseed adx smap la57 lahf_lm abm syscall nx pdpe1gb rdtscp lm xsaveopt xsavec xgetbv1
 xsaves "

# One line per test: name|file|smp|test_args|qemu_params|timeout|arch|accel|groups
parse_cfg() {
    awk '
        function flush() {
            if (name != "")
                printf "%s|%s|%s|%s|%s|%s|%s|%s|%s\n", name, f["file"], f["smp"],
                       f["test_args"], f["qemu_params"] f["extra_params"], f["timeout"],
                       f["arch"], f["accel"], f["groups"]
        }
        /^[ \t]*#/ || /^[ \t]*$/ { next }
        /^\[.*\]/ { flush(); name = substr($0, 2, index($0, "]") - 2); delete f; next }
        {
            key = $0; sub(/[ \t]*=.*/, "", key)
            value = $0; sub(/^[^=]*=[ \t]*/, "", value); sub(/[ \t]+$/, "", value)
            if (value ~ /^".*"$/ || value ~ /^\x27.*\x27$/)
                value = substr(value, 2, length(value) - 2)
            f[key] = value
        }
        END { flush() }
    ' "$kut/x86/unittests.cfg"
}

# viridian options for a test's qemu_params; notes what cannot be translated.
translate_params() {
    local params=$1 out="" features="" word cpu item feat
    set -f
    # shellcheck disable=SC2086 # split the options into words, no globbing
    set -- $params
    set +f
    while [ $# -gt 0 ]; do
        word=$1
        shift
        case $word in
        -cpu)
            cpu=${1:-}
            shift
            IFS=, read -r -a items <<< "$cpu"
            for item in "${items[@]:1}"; do
                case $item in
                vendor=AuthenticAMD) out+=" --cpu amd" ;;
                vendor=GenuineIntel) out+=" --cpu intel" ;;
                -*)
                    feat=${item#-}
                    feat=${feat//-/_}
                    [ "$feat" = tsc_deadline ] && feat=tsc_deadline_timer
                    if [[ $removable == *" $feat "* ]]; then
                        features+=",-$feat"
                    fi
                    ;;
                esac
            done
            ;;
        -device)
            [ "${1:-}" = hyperv-testdev ] && out+=" --hyperv-test-device"
            shift
            ;;
        -m)
            local size=${1:-}
            shift
            case $size in
            *[gG]) size=$(( ${size%[gG]} * 1024 )) ;;
            *[mM]) size=${size%[mM]} ;;
            esac
            [ "$size" -gt 3072 ] 2>/dev/null && size=3072
            out+=" --memory ${size}M"
            ;;
        esac
    done
    [ -n "$features" ] && out+=" --cpu-features ${features#,}"
    echo "$out"
}

declare -A counts=()
results=()
selected=" $* "
while IFS='|' read -r name file smp args params timeout arch accel groups; do
    if [ "$selected" != "  " ] && [[ $selected != *" $name "* ]]; then
        continue
    fi
    reason=""
    if [ "$accel" = kvm ]; then
        reason="needs KVM (accel = kvm)"
    elif [ "$arch" = i386 ]; then
        reason="i386 only (build kvm-unit-tests with --arch=i386)"
    elif [[ " $groups " == *" nodefault "* ]] && [ "$selected" = "  " ]; then
        reason="nodefault group"
    elif [ ! -f "$kut/x86/$file" ]; then
        reason="$file not built"
    fi
    if [ -n "$reason" ]; then
        printf '%-8s %s (%s)\n' "NOT RUN" "$name" "$reason"
        counts[NOTRUN]=$(( ${counts[NOTRUN]:-0} + 1 ))
        continue
    fi
    limit=${timeout:-90}
    limit=${limit%s}
    limit=$(( limit * scale ))
    opts="--kernel $kut/x86/$file --initrd $envfile --pc-testdev --no-reboot"
    [ -n "$smp" ] && opts+=" --cpus $smp"
    opts+=$(translate_params "$params")
    log=$logs/$name.log
    start=$(date +%s)
    # shellcheck disable=SC2086 # opts is a word list on purpose
    if [ -n "$args" ]; then
        timeout -k 5 "$limit" "$viridian" $opts ${KUT_EXTRA_ARGS:-} --append "$args" \
            > "$log" 2>&1 < /dev/null
    else
        timeout -k 5 "$limit" "$viridian" $opts ${KUT_EXTRA_ARGS:-} > "$log" 2>&1 < /dev/null
    fi
    status=$?
    took=$(( $(date +%s) - start ))
    case $status in
    1) verdict=PASS ;;
    77) verdict=SKIP ;;
    124|137) verdict=TIMEOUT ;;
    *) verdict=FAIL ;;
    esac
    summary=$(grep -a '^SUMMARY:' "$log" | tail -n1)
    printf '%-8s %s (%ss, status %s) %s\n' "$verdict" "$name" "$took" "$status" "$summary"
    counts[$verdict]=$(( ${counts[$verdict]:-0} + 1 ))
    [ "$verdict" = FAIL ] || [ "$verdict" = TIMEOUT ] && results+=("$name")
done < <(parse_cfg)

echo "----"
printf 'passed %d, skipped %d, failed %d, timed out %d, not run %d (logs in %s)\n' \
    "${counts[PASS]:-0}" "${counts[SKIP]:-0}" "${counts[FAIL]:-0}" "${counts[TIMEOUT]:-0}" \
    "${counts[NOTRUN]:-0}" "$logs"
[ ${#results[@]} -eq 0 ] || echo "failed or timed out: ${results[*]}"
[ ${#results[@]} -eq 0 ]
