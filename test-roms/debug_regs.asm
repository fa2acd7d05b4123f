; debug_regs.asm — hardware breakpoints and single-step, SDM Vol 3B ch. 18
; (AMD APM Vol 2 ch. 13), in 32-bit protected mode with paging off (so
; DR0-DR3 hold the physical addresses of the code and data they watch).
;
; Instruction breakpoints are faults (EIP = the instruction, RF pushed 0;
; the handler sets RF to get past it); data and I/O breakpoints are traps
; (EIP = the next instruction) with B0-B3 in DR6 saying which matched; LEN
; masks the low address bits; write breakpoints ignore reads; single-step
; traps after the instruction that runs with TF set, held back by MOV SS
; until after the instruction that follows it.

%define ROM_NAME "debug_regs"
%include "rom.inc"
%include "debugregs.inc"

section .text
bits 32
test_main:
    call instruction_breakpoint
    call data_breakpoints
    call io_breakpoint
    call single_step
    call rep_string
    ret

; --- Instruction breakpoint: fault before the instruction ------------------
instruction_breakpoint:
    call db_begin
    mov eax, .target
    mov dr0, eax
    mov eax, DR7_L(0) | DR7_RW(0, RW_EXEC) | DR7_LEN(0, LEN_1)
    mov dr7, eax
    xor ecx, ecx
.target:
    inc ecx
    nop
    call db_end
    CHECK_EQ [db_count], 1, "instruction breakpoint: one #DB"
    CHECK_EQ [db_eip], .target, "instruction breakpoint: a fault (EIP = the instruction)"
    CHECK_EQ ecx, 1, "instruction breakpoint: RF lets the instruction run once"
    CHECK_EQ [db_dr6], 1, "instruction breakpoint: DR6.B0"
    CHECK_DB_RF 0, 0, "instruction breakpoint: RF pushed clear"
    ret

; --- Data breakpoints: traps after the access ------------------------------
data_breakpoints:
    ; LEN 4 at db_watched+4 watches db_watched+4..+7: a byte store to +6 hits.
    call db_begin
    mov eax, db_watched + 4
    mov dr1, eax
    mov eax, DR7_L(1) | DR7_RW(1, RW_WRITE) | DR7_LEN(1, LEN_4)
    mov dr7, eax
    mov byte [db_watched + 6], 1
.after_store:
    mov eax, [db_watched + 4]   ; a read: no hit for a write breakpoint
    mov byte [db_watched + 3], 1 ; just below: no hit
    mov byte [db_watched + 8], 1 ; just above: no hit
    call db_end
    CHECK_EQ [db_count], 1, "write breakpoint: one #DB (reads and neighbours ignored)"
    CHECK_EQ [db_eip], .after_store, "write breakpoint: a trap (EIP = next instruction)"
    CHECK_EQ [db_dr6], 2, "write breakpoint: DR6.B1"

    call db_begin
    mov eax, db_watched + 4
    mov dr3, eax
    mov eax, DR7_L(3) | DR7_RW(3, RW_RW) | DR7_LEN(3, LEN_2)
    mov dr7, eax
    mov eax, [db_watched + 2]   ; reads db_watched+2..+5: overlaps +4..+5
.after_read:
    call db_end
    CHECK_EQ [db_count], 1, "read/write breakpoint: a read hits"
    CHECK_EQ [db_eip], .after_read, "read/write breakpoint: a trap"
    CHECK_EQ [db_dr6], 8, "read/write breakpoint: DR6.B3"

    ret

; --- I/O breakpoint (CR4.DE) -----------------------------------------------
io_breakpoint:
    call db_begin
    mov eax, cr4
    or eax, CR4_DE
    mov cr4, eax
    mov eax, 0x80
    mov dr2, eax
    mov eax, DR7_L(2) | DR7_RW(2, RW_IO) | DR7_LEN(2, LEN_1)
    mov dr7, eax
    out 0x81, al                ; another port: no hit
    out 0x80, al
.after_out:
    call db_end
    mov eax, cr4
    and eax, ~CR4_DE
    mov cr4, eax
    CHECK_EQ [db_count], 1, "I/O breakpoint: OUT to the port traps once"
    CHECK_EQ [db_eip], .after_out, "I/O breakpoint: a trap"
    CHECK_EQ [db_dr6], 4, "I/O breakpoint: DR6.B2"
    ret

; --- Single-step -----------------------------------------------------------
single_step:
    ; MOV SS holds the trap of its own step until after the next
    ; instruction: one #DB, after the INC (SDM Vol 3A 6.8.3).
    call db_begin
    xor ecx, ecx
    mov eax, SEL_KDATA
    pushfd
    or dword [esp], FL_TF
    popfd
    mov ss, ax                  ; runs with TF: its trap is held
    inc ecx                     ; the trap comes after this
.after_inc:
    pushfd
    and dword [esp], ~FL_TF
    popfd
.after_popf:
    call db_end
    CHECK_EQ [db_count], 4, "MOV SS: steps after the INC, PUSHFD, AND and POPFD only"
    CHECK_EQ [db_eip], .after_inc, "MOV SS: first step after the next instruction"
    CHECK_EQ [db_dr6], DR6_BS, "MOV SS: DR6.BS"
    CHECK_EQ [db_eip + 12], .after_popf, "single-step: the POPF clearing TF still traps"

    ; INT3 with TF set: its handler runs with TF clear and no single-step
    ; #DB comes before it; after IRET the stepping goes on.
    call db_begin
    call bp_begin
    pushfd
    or dword [esp], FL_TF
    popfd
    int3                        ; the instruction after POPF, but no step trap
.after_int3:
    pushfd
    and dword [esp], ~FL_TF
    popfd
    call db_end
    call bp_end
    CHECK_EQ [bp_eip], .after_int3, "INT3 with TF: #BP delivered"
    CHECK_EQ [db_count], 3, "INT3 with TF: no step into the handler, steps resume after IRET"
    CHECK_EQ [db_eip], .after_int3 + 1, "INT3 with TF: first step after the PUSHFD"
    ret

; --- REP STOSB: the trap comes after the iteration that hit ------------------
rep_string:
    call db_rep_stosb
    CHECK_EQ [db_count], 1, "REP STOSB: one #DB"
    CHECK_EQ [db_eip], db_rep_stosb.rep, "REP STOSB: trap with EIP on the REP (iterations left)"
    CHECK_EQ ecx, 0, "REP STOSB: resumes to the end"
    ret
