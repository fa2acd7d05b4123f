; x87_ferr — x87 error reporting in MS-DOS compatibility mode (CR0.NE = 0;
; SDM Vol 1 8.7 and Appendix D): an unmasked divide-by-zero is signalled on
; FERR#, which the PC chipset routes to IRQ 13 (slave 8259, input 5); the
; handler writes port 0xF0 (which lowers IRQ 13 and asserts IGNNE#, so its
; own FWAIT runs despite the pending error), clears the error with FNCLEX
; and sends the EOIs. Checked twice in a row, so the second error raises
; IRQ 13 again: no #MF, IRQ 13 exactly once per error, the handler seeing
; FSW.ES and ZE set, the error cleared afterwards, and the interrupted code
; resuming (an #MF or any other exception would end the ROM as
; unexpected). Where the interrupt is taken is not checked: the CPU may signal
; FERR# at the failing FDIV or at the next waiting instruction, and either
; freezes before that instruction (viridian) or lets it complete (QEMU).
;
; QEMU keeps IGNNE# asserted after the handler's FNCLEX (until an FLDENV,
; FRSTOR or FXRSTOR loads a status word without ES), where the chipset
; drops it with FERR#; each round therefore sets up the x87 with FLDENV.

%define ROM_NAME "x87_ferr"
%include "rom.inc"
%include "timing.inc"

PIC1_CMD        equ 0x20
PIC1_DATA       equ 0x21
PIC2_CMD        equ 0xA0
PIC2_DATA       equ 0xA1
PIC_EOI         equ 0x20
COPROC_ERROR    equ 0xF0        ; writing clears IRQ 13, asserts IGNNE#
VEC_PIC1        equ 0x20        ; IRQ 0-7
VEC_PIC2        equ 0x28        ; IRQ 8-15
VEC_IRQ13       equ VEC_PIC2 + 5
FSW_ZE          equ 1 << 2
FSW_ES          equ 1 << 7

section .data
align 4
; A 32-bit protected-mode FLDENV image: FCW 0x037B (ZE unmasked), FSW 0,
; every register empty.
clean_env:      dd 0x037B, 0, 0xFFFF, 0, 0, 0, 0

section .bss
irq13_count:    resd 1
isr_fsw:        resd 1          ; FSW as the handler found it
isr_fsw_after:  resd 1          ; FSW after the handler's FWAIT and FNCLEX
fsw_after:      resd 1

section .text
bits 32

irq13_isr:
    push eax
    fnstsw ax
    movzx eax, ax
    mov [isr_fsw], eax
    inc dword [irq13_count]
    xor eax, eax
    out COPROC_ERROR, al
    fwait                       ; IGNNE# is asserted: runs with the error pending
    fnclex
    fnstsw ax
    movzx eax, ax
    mov [isr_fsw_after], eax
    mov al, PIC_EOI
    out PIC2_CMD, al
    out PIC1_CMD, al
    pop eax
    iret

; pic_init: master vectors 0x20-0x27, slave 0x28-0x2F, slave on IRQ 2;
; everything masked but the cascade and IRQ 13.
pic_init:
    mov al, 0x11                ; ICW1: edge, cascade, ICW4 follows
    out PIC1_CMD, al
    out PIC2_CMD, al
    mov al, VEC_PIC1
    out PIC1_DATA, al
    mov al, VEC_PIC2
    out PIC2_DATA, al
    mov al, 0x04                ; master: slave on IR2
    out PIC1_DATA, al
    mov al, 0x02                ; slave: cascade identity 2
    out PIC2_DATA, al
    mov al, 0x01                ; ICW4: 8086 mode
    out PIC1_DATA, al
    out PIC2_DATA, al
    mov al, 0xFB
    out PIC1_DATA, al
    mov al, 0xDF
    out PIC2_DATA, al
    ret

; divide_by_zero_round: ECX = IRQ 13 count expected afterwards. Divides 1
; by 0 with ZE unmasked and IF = 1, then FWAIT, and waits up to 100 ms for
; the handler.
divide_by_zero_round:
    push ecx
    fldenv [clean_env]
    fld1
    fldz
    sti
    fdivp st1, st0              ; ZE, unmasked: ES set, nothing stored
    fwait                       ; the waiting instruction that reports it
    call pm_now
    mov ebx, eax
.wait:
    mov ecx, [esp]
    cmp [irq13_count], ecx
    jae .done
    call pm_since
    cmp eax, PM_MS(100)
    jb .wait
.done:
    cli
    pop ecx
    fnstsw ax
    movzx eax, ax
    mov [fsw_after], eax
    ret

test_main:
    cli
    call pic_mask_all
    mov eax, cr0
    and eax, ~(CR0_NE | CR0_EM | CR0_TS)
    or eax, CR0_MP
    mov cr0, eax
    mov eax, VEC_IRQ13
    mov ebx, irq13_isr
    mov cl, ACC_INTGATE
    call idt32_set_gate
    mov ebx, spurious_isr
    mov eax, VEC_PIC1 + 7
    call idt32_set_gate
    mov eax, VEC_PIC2 + 7
    call idt32_set_gate
    ; The 8259 reaches the CPU through the local APIC's LINT0 (virtual wire).
    call lapic_enable
    mov dword [LAPIC_LVT_LINT0], 0x700 ; ExtINT, unmasked
    call pic_init
    fninit

    mov ecx, 1
    call divide_by_zero_round
    CHECK_EQ [irq13_count], 1, "the error arrives as IRQ 13 through the 8259"
    CHECK_MASKED [isr_fsw], FSW_ES | FSW_ZE, FSW_ES | FSW_ZE, "the handler sees FSW.ES and ZE"
    CHECK_MASKED [isr_fsw_after], FSW_ES | FSW_ZE, 0, "after port 0xF0 the handler's FWAIT runs, FNCLEX clears the error"
    CHECK_MASKED [fsw_after], FSW_ES, 0, "the interrupted code resumes with the error cleared"

    mov ecx, 2
    call divide_by_zero_round
    CHECK_EQ [irq13_count], 2, "a second error raises IRQ 13 again"
    CHECK_MASKED [isr_fsw], FSW_ES | FSW_ZE, FSW_ES | FSW_ZE, "the handler sees the second error"
    CHECK_MASKED [fsw_after], FSW_ES, 0, "and the code resumes after it"
    ret
