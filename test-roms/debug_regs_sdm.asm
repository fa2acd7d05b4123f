; debug_regs_sdm.asm — debug-register behaviour the SDM (Vol 3B ch. 18)
; specifies and QEMU 7.2 TCG does not model, so viridian alone runs it (the
; 'roms' suite only; see README.md). debug_regs.asm has the checks both pass.
;
; - LENn masks the low bits of DRn: a 4-byte breakpoint at an address
;   ending in 6 watches the aligned dword (SDM 18.2.5); QEMU watches from
;   the unaligned address.
; - One access matching two breakpoints sets both B bits; QEMU reports one.
; - A trap from a REP iteration other than the last pushes RF = 1 (SDM
;   18.3.1.1); QEMU pushes 0.
; - DR7.GD: MOV DR is a #DB fault with DR6.BD and GD cleared (18.2.4);
;   QEMU ignores GD.
; - A data breakpoint on MOV SS followed by INT3: the held #DB is taken at
;   the first instruction of the #BP handler (SDM Vol 3A 6.8.3); QEMU
;   delivers it elsewhere.

%define ROM_NAME "debug_regs_sdm"
%include "rom.inc"
%include "debugregs.inc"

section .data
align 4
ss_value:   dd SEL_KDATA

section .text
bits 32
test_main:
    call length_masks_address
    call two_matches
    call rep_string_rf
    call general_detect
    call mov_ss_data_int3
    ret

length_masks_address:
    call db_begin
    mov eax, db_watched + 6     ; LEN 4: watches db_watched+4..+7
    mov dr1, eax
    mov eax, DR7_L(1) | DR7_RW(1, RW_WRITE) | DR7_LEN(1, LEN_4)
    mov dr7, eax
    mov byte [db_watched + 8], 1 ; past the aligned dword: no hit
    mov byte [db_watched + 4], 1
.after_store:
    call db_end
    CHECK_EQ [db_count], 1, "LEN 4 at +6: one #DB"
    CHECK_EQ [db_eip], .after_store, "LEN 4 at +6: the store to +4 hits (address masked)"
    CHECK_EQ [db_dr6], 2, "LEN 4 at +6: DR6.B1"
    ret

two_matches:
    call db_begin
    mov eax, db_watched + 2
    mov dr0, eax
    mov eax, db_watched + 5
    mov dr2, eax
    mov eax, DR7_L(0) | DR7_RW(0, RW_WRITE) | DR7_LEN(0, LEN_2) | DR7_L(2) | DR7_RW(2, RW_WRITE) | DR7_LEN(2, LEN_1)
    mov dr7, eax
    mov dword [db_watched + 2], 0 ; writes +2..+5
    call db_end
    CHECK_EQ [db_count], 1, "two matching breakpoints: one #DB"
    CHECK_EQ [db_dr6], 5, "two matching breakpoints: DR6.B0 and B2"
    ret

rep_string_rf:
    call db_rep_stosb
    CHECK_EQ [db_eip], db_rep_stosb.rep, "REP STOSB: trap with EIP on the REP"
    CHECK_DB_RF 0, FL_RF, "REP STOSB: RF pushed set (not the last iteration)"
    ret

; --- DR7.GD: MOV DR faults with DR6.BD, GD cleared for the handler ----------
general_detect:
    call db_begin
    mov eax, DR7_GD
    mov dr7, eax
.mov_dr:
    mov eax, dr0
    mov eax, dr7
    call db_end
    and eax, DR7_GD
    CHECK_EQ eax, 0, "GD: cleared on #DB"
    CHECK_EQ [db_count], 1, "GD: one #DB"
    CHECK_EQ [db_eip], .mov_dr, "GD: a fault (EIP = the MOV DR)"
    CHECK_EQ [db_dr6], DR6_BD, "GD: DR6.BD"
    CHECK_DB_RF 0, FL_RF, "GD: RF pushed set, as for faults"
    ret

; --- A data breakpoint on MOV SS, then INT3: the #DB waits for the #BP
; handler's first instruction (SDM Vol 3A 6.8.3).
mov_ss_data_int3:
    call db_begin
    call bp_begin
    mov eax, ss_value
    mov dr1, eax
    mov eax, DR7_L(1) | DR7_RW(1, RW_RW) | DR7_LEN(1, LEN_2)
    mov dr7, eax
    mov ss, [ss_value]
    int3
.after_int3:
    call db_end
    call bp_end
    CHECK_EQ [bp_eip], .after_int3, "MOV SS + INT3: #BP delivered"
    CHECK_EQ [db_count], 1, "MOV SS + INT3: one #DB"
    CHECK_EQ [db_eip], bp_record32, "MOV SS + INT3: #DB at the #BP handler's entry"
    CHECK_EQ [db_dr6], 2, "MOV SS + INT3: DR6.B1"
    ret
