; bench/clock_reads.asm — what one read of the time costs a guest, through
; each clock viridian offers, and what a hypercall round trip costs.
;
; A multiboot ROM (built from test-roms/lib) that enters long mode, enables
; the hypercall page and the reference TSC page, starts the HPET, and then
; times READS iterations of each of:
;   empty      the loop alone (DEC/JNZ), subtracted by bench/clock.sh
;   tsc-page   the Linux hyperv_clocksource_tsc_page read: sequence, RDTSC,
;              scale multiply, offset, sequence re-check (TLFS 12.7.3)
;   ref-msr    RDMSR HV_X64_MSR_TIME_REF_COUNT (TLFS 12.4)
;   hpet       a 64-bit load of the HPET main counter (MMIO)
;   hypercall  a fast HvCallNotifyLongSpinWait through the hypercall page
;              (CALL, VMCALL, RET): the round trip into the dispatcher
; Each is timed with RDTSC, which on viridian is virtual time at 1 GHz, so
; in host mode (no --deterministic) it is host nanoseconds. It prints one
; line per method, "name <16 hex digits of elapsed ns>", then PASS.
; Every read is checked (the page sequence is valid, the MSR and HPET
; counters do not go backwards, every hypercall succeeds) so the numbers
; are for reads that worked.

%define ROM_NAME "clock_reads"
%include "rom.inc"
%include "hyperv.inc"

%ifndef READS
%define READS 1000000
%endif
HPET_BASE       equ 0xFED00000
HPET_CONFIG     equ HPET_BASE + 0x10
HPET_COUNTER    equ HPET_BASE + 0xF0

section .bss
alignb 8
start_tsc:      resq 1
backwards:      resq 1

section .text
bits 32
test_main:
    ENTER_LONG_MODE
    call hv_enable_hypercalls
    WRMSR64 HV_MSR_REFERENCE_TSC, hv_tsc_page + 1
    mov esi, HPET_CONFIG                ; (a 32-bit address, not sign-extended)
    mov dword [rsi], 1                  ; ENABLE_CNF: the main counter runs
    mov qword [backwards], 0
    call bench_empty
    call bench_tsc_page
    call bench_ref_msr
    call bench_hpet
    call bench_hypercall
    CHECK_EQ qword [backwards], 0, "no clock read went backwards"
    TEST_PASS

bits 64
; start_timing / stop_timing NAME: RDTSC around a loop; prints the elapsed ns.
start_timing:
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov [start_tsc], rax
    ret

%macro STOP_TIMING 1
    rdtsc
    shl rdx, 32
    or rax, rdx
    sub rax, [start_tsc]
    PRINT %1, " "
    call serial_hex64
    call serial_newline64
%endmacro

bench_empty:
    call start_timing
    mov ebx, READS
.loop:
    dec ebx
    jnz .loop
    STOP_TIMING "empty"
    ret

; The reader Linux's hv_read_tsc_page runs: retry while the sequence is 0
; or changes under it.
bench_tsc_page:
    call start_timing
    mov ebx, READS
    xor r9, r9                          ; last value
.loop:
    mov r8d, [hv_tsc_page]              ; TscSequence
    test r8d, r8d
    jz .invalid
    mov rax, [hv_tsc_page + 16]
    mov r10, rax                        ; TscOffset
    rdtsc
    shl rdx, 32
    or rax, rdx
    mul qword [hv_tsc_page + 8]         ; RDX = (TSC * TscScale) >> 64
    add rdx, r10
    cmp r8d, [hv_tsc_page]
    jne .loop
    cmp rdx, r9
    jae .forward
    inc qword [backwards]
.forward:
    mov r9, rdx
    dec ebx
    jnz .loop
    STOP_TIMING "tsc-page"
    ret
.invalid:
    TEST_FAIL "reference TSC page sequence is 0"

bench_ref_msr:
    call start_timing
    mov ebx, READS
    xor r9, r9
.loop:
    mov ecx, HV_MSR_TIME_REF_COUNT
    rdmsr
    shl rdx, 32
    or rax, rdx
    cmp rax, r9
    jae .forward
    inc qword [backwards]
.forward:
    mov r9, rax
    dec ebx
    jnz .loop
    STOP_TIMING "ref-msr"
    ret

bench_hpet:
    call start_timing
    mov ebx, READS
    xor r9, r9
    mov esi, HPET_COUNTER
.loop:
    mov rax, [rsi]
    cmp rax, r9
    jae .forward
    inc qword [backwards]
.forward:
    mov r9, rax
    dec ebx
    jnz .loop
    STOP_TIMING "hpet"
    ret

bench_hypercall:
    call start_timing
    mov ebx, READS
.loop:
    mov ecx, HVCALL_SPIN_WAIT | HV_FAST
    mov edx, 1                          ; spin count
    call hv_hypercall_page
    test ax, ax
    jnz .failed
    dec ebx
    jnz .loop
    STOP_TIMING "hypercall"
    ret
.failed:
    movzx eax, ax
    CHECK_EQ rax, HV_STATUS_SUCCESS, "HvCallNotifyLongSpinWait status"
    ret
