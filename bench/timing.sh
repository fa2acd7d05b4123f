# bench/timing.sh — sourced by the bare-metal benchmarks (cpu.sh, simd.sh):
# timing, the loop-minus-start-up measurement and the results table.
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

# measure_loop NAME ROM EMPTY_ROM CMD...: the best times of CMD ROM and of
# CMD EMPTY_ROM (the same guest with zero iterations, i.e. the start-up);
# sets $total, $empty and $checksum (what the guest printed).
measure_loop() {
    local name=$1 rom=$2 empty_rom=$3
    shift 3
    best "$name" "$@" "$rom"
    total=$best
    checksum=$(cat "$out/$name.out")
    best "${name}_empty" "$@" "$empty_rom"
    empty=$best
}

# stats_instructions NAME: the count viridian's --stats printed in NAME's run.
stats_instructions() { sed -n 's/^instructions: //p' "$out/$1.err"; }

# report INDENT NAME TOTAL EMPTY INSTRUCTIONS: one row of the results table.
report() {
    awk -v indent="$1" -v name="$2" -v total="$3" -v empty="$4" -v n="$5" 'BEGIN {
        net = total - empty; if (net <= 0) net = 0.0001
        printf "%s%-10s %9.3f s %9.3f s %9.3f s %12.1f\n", indent, name, total, empty, net, n / net / 1e6 }'
}

# report_header INDENT
report_header() { printf "%s%-10s %11s %11s %11s %12s\n" "$1" emulator total start-up net "guest MIPS"; }

# report_ratio INDENT V_TOTAL V_EMPTY Q_TOTAL Q_EMPTY: the net time ratio.
report_ratio() {
    awk -v indent="$1" -v vt="$2" -v ve="$3" -v qt="$4" -v qe="$5" 'BEGIN {
        v = vt - ve; q = qt - qe; if (q <= 0) q = 0.0001
        printf "%stime ratio viridian / QEMU TCG (net): %.2f\n", indent, v / q }'
}
