; v86_vme.asm — virtual-8086 mode with the mode extensions (CR4.VME; SDM
; Vol 3A 20.3 "Interrupt and exception handling in virtual-8086 mode",
; Vol 2 CLI, STI, PUSHF, POPF, IRET, INT n).
;
; Each check enters V86 mode at IOPL 0 with IRETD (CS = V86_SEG, the code
; copied below 1 MiB) and leaves it by a #GP: the final HLT, or the
; instruction the check expects to fault. The #GP handler records the V86
; frame (error code, IP, CS, FLAGS, SP) and returns to ring 0.
;
;   CLI/STI change VIF and leave IF; STI with VIP set faults;
;   16-bit PUSHF pushes VIF in IF's place and IOPL 3; POPF and IRET load
;   VIF from the popped IF;
;   INT n with its redirection bit clear goes to the 8086 handler in the IVT
;   (FLAGS with VIF as IF, CS, IP pushed; VIF cleared); with the bit set, #GP;
;   without CR4.VME, CLI faults.
;
; IF stays 0 throughout, so that no hardware interrupt arrives and IF's
; value shows that VIF, not IF, was changed.

%define ROM_NAME "v86_vme"
%include "rom.inc"

V86_SEG         equ 0x2000              ; code at linear 0x20000
V86_BASE        equ V86_SEG * 16
V86_SS          equ 0x3000
V86_SP          equ 0x1000              ; stack top at linear 0x31000
SEL_VTSS        equ SEL_SPARE           ; this ROM's TSS, with a redirection bitmap
TEST_VEC        equ 0x66
CR4_VME         equ 1 << 0
FL_VIF          equ 1 << 19
FL_VIP          equ 1 << 20
%define VOFF(x) ((x) - v86_code)

section .bss
alignb 16
vtss:           resb 104                ; 32-bit TSS
vtss_redir:     resb 32                 ; INT n redirection bitmap (20.3.3.5)
vtss_iomap:     resb 1                  ; empty I/O bitmap: its end byte
vtss_end:
alignb 16
v86_kstack:     resb 1024
v86_kstack_top:
v86_back_sp:    resd 1
v_err:          resd 1
v_ip:           resd 1
v_cs:           resd 1
v_flags:        resd 1
v_sp:           resd 1
v_ax:           resd 1
saved_ivt:      resd 1

section .text
bits 32
test_main:
    ; Is there VME at all?
    mov eax, 1
    cpuid
    and edx, 1 << 1
    CHECK_EQ edx, 1 << 1, "CPUID.1:EDX.VME"
    ; Copy the V86 code below 1 MiB.
    mov esi, v86_code
    mov edi, V86_BASE
    mov ecx, v86_code_end - v86_code
    rep movsb
    ; TSS: ring-0 stack for leaving V86 mode, the I/O map base right after
    ; the redirection bitmap (all clear: every INT n redirected).
    mov dword [vtss + 4], v86_kstack_top
    mov dword [vtss + 8], SEL_KDATA
    mov word [vtss + 102], vtss_iomap - vtss
    mov byte [vtss_iomap], 0xFF
    SET_DESC SEL_VTSS, vtss, vtss_end - vtss - 1, ACC_TSS_AVAIL, 0
    mov ax, SEL_VTSS
    ltr ax
    mov eax, VEC_GP
    mov ebx, v86_exit
    mov cl, ACC_INTGATE
    call idt32_set_gate
    mov eax, cr4
    or eax, CR4_VME
    mov cr4, eax

    call cli_sti
    call pushf_popf
    call iret_vif
    call int_redirection
    call without_vme
    call idt32_init
    ret

; v86_run: EAX = IP, EDX = EFLAGS (VM is added). Returns when V86 mode
; raises #GP, with v_* describing the V86 frame. Keeps no registers.
v86_run:
    mov [v86_back_sp], esp
    or edx, FL_VM
    push dword 0                ; GS
    push dword 0                ; FS
    push dword 0                ; DS
    push dword 0                ; ES
    push dword V86_SS
    push dword V86_SP
    push edx
    push dword V86_SEG
    push eax
    iretd

; #GP from V86 mode: DS/ES/FS/GS are null here, SS is the TSS's SEL_KDATA.
v86_exit:
    mov [ss:v_ax], eax
    mov ax, SEL_KDATA
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov eax, [esp + 0]
    mov [v_err], eax
    mov eax, [esp + 4]
    mov [v_ip], eax
    mov eax, [esp + 8]
    mov [v_cs], eax
    mov eax, [esp + 12]
    mov [v_flags], eax
    mov eax, [esp + 16]
    mov [v_sp], eax
    mov esp, [v86_back_sp]
    ret

cli_sti:
    mov eax, VOFF(v_cli_hlt)
    mov edx, FL_VIF | 2
    call v86_run
    CHECK_EQ [v_ip], VOFF(v_cli_hlt) + 1, "VME CLI at IOPL 0 does not fault (the HLT does)"
    CHECK_EQ [v_err], 0, "HLT in V86 mode: #GP(0)"
    CHECK_MASKED [v_flags], FL_VIF | FL_IF, 0, "VME CLI clears VIF"
    mov eax, VOFF(v_sti_hlt)
    mov edx, 2
    call v86_run
    CHECK_EQ [v_ip], VOFF(v_sti_hlt) + 1, "VME STI at IOPL 0 does not fault"
    CHECK_MASKED [v_flags], FL_VIF | FL_IF, FL_VIF, "VME STI sets VIF, not IF"
    mov eax, VOFF(v_sti_hlt)
    mov edx, FL_VIP | 2
    call v86_run
    CHECK_EQ [v_ip], VOFF(v_sti_hlt), "VME STI with VIP set: #GP"
    CHECK_MASKED [v_flags], FL_VIF, 0, "VME STI with VIP set leaves VIF"
    ret

pushf_popf:
    mov eax, VOFF(v_pushf)
    mov edx, FL_VIF | 2
    call v86_run
    CHECK_EQ [v_ip], VOFF(v_pushf) + 2, "VME 16-bit PUSHF does not fault"
    CHECK_MASKED [v_ax], FL_IF | FL_IOPL3, FL_IF | FL_IOPL3, "VME PUSHF: IF = VIF, IOPL = 3"
    mov eax, VOFF(v_popf)
    mov edx, 2
    call v86_run
    CHECK_EQ [v_ip], VOFF(v_popf) + 4, "VME 16-bit POPF does not fault"
    CHECK_MASKED [v_flags], FL_VIF | FL_IF | FL_IOPL3 | FL_CF, FL_VIF | FL_CF, "VME POPF: VIF = popped IF; IF, IOPL kept"
    mov eax, VOFF(v_popf)
    mov edx, FL_VIP | 2
    call v86_run
    CHECK_EQ [v_ip], VOFF(v_popf) + 3, "VME POPF setting IF with VIP set: #GP"
    CHECK_EQ [v_sp], V86_SP - 2, "... and pops nothing"
    ret

iret_vif:
    mov eax, VOFF(v_iret)
    mov edx, 2
    call v86_run
    CHECK_EQ [v_ip], VOFF(v_iret_target), "VME 16-bit IRET returns"
    CHECK_MASKED [v_flags], FL_VIF | FL_IF, FL_VIF, "VME IRET: VIF = popped IF"
    ret

int_redirection:
    mov eax, [TEST_VEC * 4]
    mov [saved_ivt], eax
    mov dword [TEST_VEC * 4], (V86_SEG << 16) | VOFF(v_int_handler)
    mov eax, VOFF(v_int)
    mov edx, FL_VIF | 2
    call v86_run
    CHECK_EQ [v_ip], VOFF(v_int_handler), "INT n, redirection bit clear: the IVT handler runs in V86 mode"
    CHECK_EQ [v_sp], V86_SP - 6, "... with FLAGS, CS, IP pushed"
    CHECK_EQ32 [V86_SS * 16 + V86_SP - 6], (V86_SEG << 16) | (VOFF(v_int) + 2), "... the return CS:IP"
    movzx eax, word [V86_SS * 16 + V86_SP - 2]
    CHECK_MASKED eax, FL_IF | FL_IOPL3, FL_IF | FL_IOPL3, "... FLAGS with IF = VIF and IOPL 3"
    CHECK_MASKED [v_flags], FL_VIF | FL_IF, 0, "... and VIF cleared"
    or byte [vtss_redir + TEST_VEC / 8], 1 << (TEST_VEC % 8)
    mov eax, VOFF(v_int)
    mov edx, FL_VIF | 2
    call v86_run
    CHECK_EQ [v_ip], VOFF(v_int), "INT n, redirection bit set, IOPL 0: #GP"
    and byte [vtss_redir + TEST_VEC / 8], ~(1 << (TEST_VEC % 8))
    mov eax, [saved_ivt]
    mov [TEST_VEC * 4], eax
    ret

without_vme:
    mov eax, cr4
    and eax, ~CR4_VME
    mov cr4, eax
    mov eax, VOFF(v_cli_hlt)
    mov edx, FL_VIF | 2
    call v86_run
    CHECK_EQ [v_ip], VOFF(v_cli_hlt), "CLI in V86 mode at IOPL 0 without VME: #GP"
    ret

; ---- V86 code, copied to V86_BASE ----
bits 16
v86_code:
v_cli_hlt:
    cli
    hlt
v_sti_hlt:
    sti
    hlt
v_pushf:
    pushf
    pop ax
    hlt
v_popf:
    push word 0x3201            ; IOPL 3, IF, CF
    popf
    hlt
v_iret:
    push word 0x0200            ; IF
    push cs
    push word VOFF(v_iret_target)
    iret
v_iret_target:
    hlt
v_int:
    int TEST_VEC
    hlt
v_int_handler:
    hlt
v86_code_end:
bits 32
