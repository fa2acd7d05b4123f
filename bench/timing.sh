# bench/timing.sh — sourced by the bare-metal benchmarks (cpu.sh, simd.sh).
# Expects $out (a scratch folder) and $runs; reports under the sourcing
# script's name.

# timed NAME CMD...: runs CMD, which must exit with status 1 (the guest wrote
# 0 to the debug-exit port); sets $elapsed (seconds) and leaves stdout and
# stderr in $out/NAME.out and $out/NAME.err.
timed() {
    local name=$1 start end status=0
    shift
    start=$EPOCHREALTIME
    "$@" >"$out/$name.out" 2>"$out/$name.err" </dev/null || status=$?
    end=$EPOCHREALTIME
    if [ "$status" -ne 1 ]; then
        echo "${0##*/}: '$*' exited with $status, expected 1" >&2
        cat "$out/$name.err" >&2
        exit 1
    fi
    elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", b - a }')
}

# best NAME CMD...: the minimum elapsed time of $runs runs, in $best.
best() {
    local name=$1 i
    shift
    best=
    for ((i = 0; i < runs; i++)); do
        timed "$name" "$@"
        if [ -z "$best" ] || awk -v a="$elapsed" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best=$elapsed
        fi
    done
}
