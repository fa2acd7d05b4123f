#!/usr/bin/env bash
# Command-line behaviour of build/viridian: exit statuses, the one-line
# error messages, serial output, --trace, --stats and the instruction limit.
# Usage: cli_test.sh VIRIDIAN EXIT_GUEST TRIPLE_GUEST HALT_GUEST SPIN_GUEST RESET_GUEST CRASH_GUEST TIMER_GUEST
set -uo pipefail

viridian=$1 exit_guest=$2 triple_guest=$3 halt_guest=$4 spin_guest=$5 reset_guest=$6 crash_guest=$7 timer_guest=$8
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0 checks=0

# run ARGS...: runs viridian, leaving status, stdout and stderr in $work.
run() {
    "$viridian" "$@" >"$work/out" 2>"$work/err" </dev/null
    status=$?
}

check() { # check DESCRIPTION CONDITION...
    local what=$1
    shift
    checks=$((checks + 1))
    if "$@"; then
        echo "ok - $what"
    else
        failures=$((failures + 1))
        echo "not ok - $what (status $status)"
        echo "  stdout: $(head -c 400 "$work/out")"
        echo "  stderr: $(head -c 400 "$work/err")"
    fi
}

status_is() { [ "$status" -eq "$1" ]; }
stdout_has() { grep -qF -- "$1" "$work/out"; }
stderr_has() { grep -qF -- "$1" "$work/err"; }
stderr_is_one_line() { [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q '^viridian: ' "$work/err"; }

run --help
check "--help exits 0 and prints the usage" eval 'status_is 0 && stdout_has "Usage: viridian"'
run --version
check "--version exits 0" eval 'status_is 0 && stdout_has "viridian "'
run --bogus
check "an unknown option exits 2 with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "--bogus"'
run --cpu pentium
check "an unknown CPU model exits 2 with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "pentium"'
run --accel tcg
check "an unknown accelerator exits 2 with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "tcg"'
run --accel kvm --deterministic --kernel "$exit_guest"
check "--accel kvm refuses --deterministic with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "--deterministic"'
if [ ! -e /dev/kvm ]; then
    run --accel kvm --kernel "$exit_guest"
    check "--accel kvm without /dev/kvm exits 2 with one line" \
        eval 'status_is 2 && stderr_is_one_line && stderr_has "/dev/kvm"'
elif [ -d /sys/module/kvm_pvm ] && [ ! -d /sys/module/kvm_intel ] && [ ! -d /sys/module/kvm_amd ]; then
    run --accel kvm --kernel "$exit_guest"
    check "--accel kvm on PVM's /dev/kvm exits 2 with one line" \
        eval 'status_is 2 && stderr_is_one_line && stderr_has "PVM"'
fi
run --kernel
check "a missing option argument exits 2" eval 'status_is 2 && stderr_is_one_line'
run --memory 0
check "a zero memory size exits 2" eval 'status_is 2 && stderr_is_one_line'
run --memory 2T
check "a memory size above 1T exits 2" eval 'status_is 2 && stderr_is_one_line'
run --kernel "$work/does-not-exist.elf"
check "a missing kernel file exits 2" eval 'status_is 2 && stderr_is_one_line && stderr_has "cannot open"'
run --kernel "$0"
check "a file that is not multiboot exits 2" eval 'status_is 2 && stderr_is_one_line && stderr_has "not a multiboot kernel"'
head -c 100 "$exit_guest" >"$work/truncated.elf"
run --kernel "$work/truncated.elf"
check "a truncated kernel exits 2" eval 'status_is 2 && stderr_is_one_line'
run --kernel "$exit_guest" --initrd "$work/no-module"
check "a missing initrd exits 2" eval 'status_is 2 && stderr_is_one_line && stderr_has "initrd"'

run --demo
check "the demo runs and exits 0" eval 'status_is 0 && stdout_has "demo done"'
run --demo --deterministic --mark-output --jit off
cp "$work/out" "$work/marks-interpreted"
run --demo --deterministic --mark-output
check "--mark-output begins every line with its instruction count, rising, the same with the JIT" \
    eval 'status_is 0 && stdout_has "demo done" && cmp -s "$work/out" "$work/marks-interpreted" &&
          awk "!/^\[[0-9]+\] / { exit 1 } { n = substr(\$1, 2) + 0; if (n < last) exit 1; last = n }" "$work/out"'
run --kernel "$exit_guest"
check "the guest's debug-exit value v gives status (v << 1) | 1" eval 'status_is 33 && stdout_has "hello from the test guest"'
run --kernel "$exit_guest" --serial "file:$work/serial.txt"
check "--serial file: writes COM1 to the file, not stdout" \
    eval 'status_is 33 && grep -qF "hello from the test guest" "$work/serial.txt" && ! [ -s "$work/out" ]'
run --kernel "$triple_guest"
check "a triple fault exits 4 with the fault and registers" \
    eval 'status_is 4 && stderr_has "viridian: triple fault: vector" && stderr_has "RIP=" && stderr_has "CR0="'
run --kernel "$halt_guest"
check "HLT with interrupts off exits 6" eval 'status_is 6 && stderr_has "halted"'
run --kernel "$spin_guest" --max-instructions 1000 --stats
check "--max-instructions stops with 5 and --stats counts exactly" \
    eval 'status_is 5 && stderr_has "instructions: 1000"'
run --kernel "$exit_guest" --trace
check "--trace disassembles each instruction with Capstone" \
    eval 'status_is 33 && grep -qE "^0008:[0-9a-f]{8}  e6f4 +out 0xf4, al$" "$work/err"'
run --kernel "$exit_guest" --record "$work/exit.vrr"
check "--record records the run and renames its file when the run ends" \
    eval 'status_is 33 && stdout_has "hello from the test guest" && stderr_has "recorded 0 inputs" && [ -s "$work/exit.vrr" ] && ! [ -e "$work/exit.vrr.tmp" ]'
cp "$work/out" "$work/recorded.out"
run --replay "$work/exit.vrr"
check "--replay prints the same and ends as the recording did" \
    eval 'status_is 33 && cmp -s "$work/out" "$work/recorded.out" && stderr_has "replayed to the recording"'
run --replay "$work/exit.vrr" --memory 64M
check "--replay refuses a machine option" eval 'status_is 2 && stderr_is_one_line && stderr_has "--memory"'
run --kernel "$reset_guest" --max-instructions 2000 --record "$work/reset.vrr"
cp "$work/out" "$work/recorded.out"
run --replay "$work/reset.vrr" --stats
check "a recording spans the guest's reboots and replays to the same instruction" \
    eval 'status_is 5 && cmp -s "$work/out" "$work/recorded.out" && stderr_has "instructions: 2000" && stderr_has "replayed to the recording"'
run --replay "$exit_guest"
check "--replay refuses a file that is not a recording" \
    eval 'status_is 2 && stderr_is_one_line && stderr_has "not a viridian recording"'
run --kernel "$exit_guest" --cpus 2
check "--cpus 2 runs the boot vCPU (the APs wait for a start-up IPI)" eval 'status_is 33 && ! [ -s "$work/err" ]'
run --kernel "$triple_guest" --cpus 3
check "a triple fault on an SMP machine names the vCPU" eval 'status_is 4 && stderr_has "(vCPU 0)"'
run --kernel "$reset_guest" --no-reboot
check "a guest reset with --no-reboot ends the run with 0 after one boot" \
    eval 'status_is 0 && [ "$(grep -c "hello from the test guest" "$work/out")" -eq 1 ] && stderr_has "(--no-reboot)"'
run --kernel "$reset_guest" --max-instructions 2000 --stats
check "a guest reset restarts the machine; the instruction limit counts across restarts" \
    eval 'status_is 5 && [ "$(grep -c "hello from the test guest" "$work/out")" -ge 3 ] && stderr_has "restarting" && stderr_has "instructions: 2000"'
run --kernel "$crash_guest"
check "a guest crash through the Hyper-V crash MSRs exits 8 with its five values" \
    eval 'status_is 8 && stderr_has "the guest reported a crash (Hyper-V crash MSRs) on VP 0" &&
          stderr_has "P0=0xc0de000011111111 P1=0xc0de000122222222 P2=0xc0de000233333333" &&
          stderr_has "P3=0xc0de000344444444 P4=0xc0de000455555555"'
run --kernel "$crash_guest" --enlightenments off
check "--enlightenments off: the crash MSRs are #GP" eval 'status_is 4 && stderr_has "vector 13"'
run --kernel "$exit_guest" --serial none --serial2 "file:$work/com2"
check "--serial none discards COM1; --serial2 file:PATH writes COM2" \
    eval 'status_is 33 && ! stdout_has "hello" && grep -qF "hello from the test guest" "$work/com2"'
run --kernel "$exit_guest" --serial2 "file:$work/no-such-dir/com2"
check "--serial2 with a file that cannot be created is one error line" \
    eval 'status_is 2 && stderr_is_one_line && stderr_has "--serial2"'
for cpus in 1 2; do
    run --kernel "$timer_guest" --deterministic --cpus $cpus
    check "a LAPIC timer interrupts a busy vCPU within 1 us of its deadline ($cpus vCPUs)" status_is 33
done
# SIGTERM and SIGINT end a run cleanly with status 130 and one line.
for sig in TERM INT; do
    "$viridian" --kernel "$spin_guest" >"$work/out" 2>"$work/err" </dev/null &
    pid=$!
    sleep 0.5
    kill -$sig $pid
    wait $pid
    status=$?
    check "SIG$sig ends the run with status 130 and says why" \
        eval 'status_is 130 && stderr_has "(SIG$sig)"'
done
# On a terminal the console is raw and Ctrl-A x quits, as in QEMU; the
# terminal's settings come back afterwards. script(1) provides the terminal.
if command -v script >/dev/null; then
    (sleep 0.5; printf '\001x') |
        timeout 20 script -qec "stty -a | grep -o ' icanon'; $viridian --kernel $spin_guest; stty -a | grep -o ' icanon'" /dev/null \
        >"$work/out" 2>"$work/err"
    status=$?
    check "Ctrl-A x on a terminal quits with status 0 and restores the terminal" \
        eval 'status_is 0 && stdout_has "quit from the console (Ctrl-A x)" && [ "$(grep -c " icanon" "$work/out")" -eq 2 ]'
fi
# --nic: QEMU's spelling; what is not there says so in one line.
run --kernel "$exit_guest" --nic user,model=virtio
check "--nic model=virtio exits 2 with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "virtio"'
run --kernel "$exit_guest" --enlightenments off --nic user,model=netvsc
check "model=netvsc without the enlightenments (no VMBus) is refused with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "netvsc"'
run --kernel "$exit_guest" --enlightenments off --nic user
check "--nic user without the enlightenments runs a guest with an e1000" eval 'status_is 33'
run --kernel "$exit_guest" --nic user,model=e1000
check "--nic user,model=e1000 runs a guest to its exit" eval 'status_is 33'
run --kernel "$exit_guest" --nic user,hostfwd=tcp::99999-:22
check "a bad --nic hostfwd rule exits 2 with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "hostfwd"'
run --kernel "$exit_guest" --nic user
check "--nic user runs a guest to its exit" eval 'status_is 33'
XDG_RUNTIME_DIR=$work run --kernel "$exit_guest" --nic switch,name=cli
check "--nic switch runs a guest to its exit and takes its port away" \
    eval 'status_is 33 && [ -d "$work/viridian/switch/cli" ] && [ -z "$(ls "$work/viridian/switch/cli")" ]'
XDG_RUNTIME_DIR=/proc run --kernel "$exit_guest" --nic switch,name=cli
check "a switch folder that cannot be made exits 2 with one line" \
    eval 'status_is 2 && stderr_is_one_line && stderr_has "/proc/viridian"'
# --drive: the image is opened before anything runs.
run --kernel "$exit_guest" --drive file="$work/no-such.img"
check "a missing drive image exits 2 with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "no-such.img"'
run --kernel "$exit_guest" --drive file="$work/x.img,format=qcow2"
check "an unknown drive format exits 2 with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "qcow2"'
run --kernel "$exit_guest" --enlightenments off --drive file="$work/x.img,if=scsi"
check "if=scsi without the enlightenments (no VMBus) is refused with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "SCSI"'
truncate -s 1M "$work/disk.img"
run --kernel "$exit_guest" --drive file="$work/disk.img"
check "a probed raw drive prints QEMU's warning and runs" \
    eval 'status_is 33 && stderr_has "probing guessed raw"'
run --kernel "$exit_guest" --drive file="$work/disk.img,format=raw"
check "format=raw runs without the warning" eval 'status_is 33 && ! stderr_has "WARNING"'
"$viridian" --kernel "$spin_guest" --drive file="$work/disk.img,format=raw" >/dev/null 2>&1 </dev/null &
holder=$!
sleep 0.5
run --kernel "$exit_guest" --drive file="$work/disk.img,format=raw"
check "an image another viridian is using exits 2 with one line" eval 'status_is 2 && stderr_is_one_line'
kill $holder
wait $holder
run --kernel "$exit_guest" --enlightenments maybe
check "--enlightenments takes only on or off" eval 'status_is 2 && stderr_is_one_line'
run --kernel "$exit_guest" --gdb tcp:localhost
check "a --gdb address without a port exits 2 with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "--gdb"'
run --kernel "$exit_guest" --gdb "unix:$work/no-such-dir/gdb.sock"
check "a --gdb socket that cannot be made exits 2 with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "--gdb"'

# Firmware boot (docs/storage.md): --bios FILE boots through a system ROM.
run --bios "$work/no-such-bios.bin"
check "a missing --bios file exits 2 with one line" eval 'status_is 2 && stderr_is_one_line && stderr_has "cannot open"'
head -c 100000 /dev/zero >"$work/odd.bin"
run --bios "$work/odd.bin"
check "a --bios file that is not a whole number of 64 KiB exits 2 with one line" \
    eval 'status_is 2 && stderr_is_one_line && stderr_has "not a BIOS ROM image"'
run --bios "$work/odd.bin" --kernel "$exit_guest"
check "--bios with --kernel exits 2 with one line" eval 'status_is 2 && stderr_is_one_line'
if [ -r /usr/share/seabios/bios.bin ]; then
    run --bios /usr/share/seabios/bios.bin --deterministic --no-reboot --max-instructions 50000000 \
        --debugcon "file:$work/debugcon"
    check "SeaBIOS boots, shows its banner on COM1, finds nothing to boot and resets" \
        eval 'status_is 0 && stdout_has "SeaBIOS (version" && stdout_has "No bootable device" &&
              stderr_has "reset the machine" && grep -qF "QEMU fw_cfg DMA interface supported" "$work/debugcon"'
else
    echo "ok - # SKIP no /usr/share/seabios/bios.bin (Debian's seabios package)"
fi

echo "$((checks - failures)) of $checks command-line checks passed"
[ "$failures" -eq 0 ]
