; ioapic_eoi — a level-triggered IOAPIC redirection entry end to end. The
; level source is the RTC on pin 8: its periodic flag holds IRQ 8 asserted
; until register C is read, so the ROM raises and lowers the line at will.
; Checked: the version register, an entry reading back as written, a masked
; entry delivering nothing, Remote IRR set on delivery and kept while the
; handler has not EOIed (also after the line drops), the LAPIC's TMR and
; ISR bits for the vector, a LAPIC EOI clearing Remote IRR through the
; broadcast EOI and the still-asserted line being delivered again, no
; delivery after the EOI once the line is low, and (IOAPIC version 0x20 and
; later) the IOAPIC's own EOI register clearing Remote IRR for its vector
; only. The 8259s are masked; waits are bounded on the PM timer.

%define ROM_NAME "ioapic_eoi"
%include "rom.inc"
%include "timing.inc"

IOAPIC          equ 0xFEC00000
IOAPIC_SEL      equ IOAPIC + 0x00
IOAPIC_WIN      equ IOAPIC + 0x10
IOAPIC_EOI      equ IOAPIC + 0x40
IOAPIC_VER      equ 0x01
RTC_PIN         equ 8
REDIR_LO        equ 0x10 + 2 * RTC_PIN
REDIR_HI        equ REDIR_LO + 1
RED_LEVEL       equ 1 << 15
RED_RIRR        equ 1 << 14
RED_DELIVS      equ 1 << 12
RED_MASKED      equ 1 << 16

LAPIC_ISR2      equ LAPIC + 0x120   ; vectors 0x40-0x5F
LAPIC_TMR2      equ LAPIC + 0x1A0

VEC_LEVEL       equ 0x50            ; bit 16 of the third ISR/TMR word
VEC_BIT         equ 1 << (VEC_LEVEL - 0x40)

CMOS_INDEX      equ 0x70
CMOS_DATA       equ 0x71

section .bss
count:          resd 1
version:        resd 1

section .text
bits 32

level_isr:                          ; no EOI: the test gives it
    inc dword [count]
    iret

; ioapic_read: EAX = register ECX
ioapic_read:
    mov [IOAPIC_SEL], ecx
    mov eax, [IOAPIC_WIN]
    ret

; ioapic_write: register ECX = EAX
ioapic_write:
    mov [IOAPIC_SEL], ecx
    mov [IOAPIC_WIN], eax
    ret

; rirr: EAX = 1 if entry 8's Remote IRR is set
rirr:
    push ecx
    mov ecx, REDIR_LO
    call ioapic_read
    shr eax, 14
    and eax, 1
    pop ecx
    ret

; line_up: RTC periodic interrupt at 1024 Hz; IRQ 8 rises within 1 ms and
; stays up (register C is not read).
line_up:
    mov al, 0x0A
    out CMOS_INDEX, al
    mov al, 0x26
    out CMOS_DATA, al
    mov al, 0x0B
    out CMOS_INDEX, al
    mov al, 0x42                    ; PIE, 24-hour
    out CMOS_DATA, al
    ret

; line_down: periodic interrupt off, register C read: IRQ 8 drops.
line_down:
    mov al, 0x0B
    out CMOS_INDEX, al
    mov al, 0x02
    out CMOS_DATA, al
    mov al, 0x0C
    out CMOS_INDEX, al
    in al, CMOS_DATA
    ret

; wait_count: STI until [count] >= ECX or 200 ms pass, then 10 ms more
; (to catch a second delivery), CLI.
wait_count:
    call pm_now
    mov ebx, eax
    sti
.loop:
    cmp [count], ecx
    jae .done
    call pm_since
    cmp eax, PM_MS(200)
    jb .loop
.done:
    mov ecx, PM_MS(10)
    call pm_wait
    cli
    ret

lapic_eoi:
    mov dword [LAPIC_EOI], 0
    ret

test_main:
    call pic_mask_all
    call line_down
    mov eax, VEC_LEVEL
    mov ebx, level_isr
    mov cl, ACC_INTGATE
    call idt32_set_gate
    call lapic_enable
    mov dword [LAPIC_TPR], 0

    mov ecx, IOAPIC_VER
    call ioapic_read
    mov [version], eax
    shr eax, 16
    and eax, 0xFF
    CHECK_RANGE eax, 23, 0xFF, "version register: at least 24 redirection entries"
    mov eax, [version]
    and eax, 0xFF
    CHECK_RANGE eax, 0x11, 0x20, "version register: an 82093AA-style version (0x11-0x20)"

    ; Entry 8: fixed, physical destination = this CPU, active high, level, masked.
    mov eax, [LAPIC_ID]
    and eax, 0xFF000000
    mov ecx, REDIR_HI
    call ioapic_write
    mov eax, VEC_LEVEL | RED_LEVEL | RED_MASKED
    mov ecx, REDIR_LO
    call ioapic_write
    call ioapic_read
    and eax, ~(RED_RIRR | RED_DELIVS)
    CHECK_EQ eax, VEC_LEVEL | RED_LEVEL | RED_MASKED, "redirection entry reads back as written"

    ; ---- masked ---------------------------------------------------------------------
    call line_up
    mov ecx, 1
    call wait_count
    CHECK_EQ [count], 0, "masked entry: an asserted line delivers nothing"
    call rirr
    CHECK_EQ eax, 0, "masked entry: Remote IRR stays clear"

    ; ---- delivery sets Remote IRR ---------------------------------------------------
    mov eax, VEC_LEVEL | RED_LEVEL
    mov ecx, REDIR_LO
    call ioapic_write               ; unmasked while the line is up
    mov ecx, 1
    call wait_count
    CHECK_EQ [count], 1, "unmasking an asserted level entry delivers it, once"
    call rirr
    CHECK_EQ eax, 1, "delivery sets Remote IRR"
    mov eax, [LAPIC_TMR2]
    and eax, VEC_BIT
    CHECK_EQ eax, VEC_BIT, "LAPIC TMR marks the vector level-triggered"
    mov eax, [LAPIC_ISR2]
    and eax, VEC_BIT
    CHECK_EQ eax, VEC_BIT, "LAPIC ISR holds the vector until EOI"

    ; ---- LAPIC EOI with the line still up: delivered again --------------------------
    call lapic_eoi
    mov ecx, 2
    call wait_count
    CHECK_EQ [count], 2, "EOI with the line still asserted: delivered again"
    call rirr
    CHECK_EQ eax, 1, "Remote IRR set again by the new delivery"

    ; ---- the line drops: Remote IRR waits for the EOI -------------------------------
    call line_down
    mov ecx, PM_MS(5)
    call pm_wait
    call rirr
    CHECK_EQ eax, 1, "Remote IRR stays set after the line drops, until the EOI"
    call lapic_eoi
    call rirr
    CHECK_EQ eax, 0, "the LAPIC's broadcast EOI clears Remote IRR"
    mov ecx, 3
    call wait_count
    CHECK_EQ [count], 2, "no delivery after the EOI once the line is low"
    mov eax, [LAPIC_ISR2]
    and eax, VEC_BIT
    CHECK_EQ eax, 0, "LAPIC ISR clear after the EOI"

    ; ---- the line rises again ------------------------------------------------------
    call line_up
    mov ecx, 3
    call wait_count
    CHECK_EQ [count], 3, "delivered again when the line rises"
    call line_down
    call rirr
    CHECK_EQ eax, 1, "Remote IRR set"

    ; ---- the IOAPIC's EOI register (version 0x20) -----------------------------------
    mov eax, [version]
    and eax, 0xFF
    cmp eax, 0x20
    jae .eoi_register
    PRINTLN "ok IOAPIC version below 0x20: no EOI register, skipped"
    jmp .last_eoi
.eoi_register:
    mov dword [IOAPIC_EOI], VEC_LEVEL + 1
    call rirr
    CHECK_EQ eax, 1, "IOAPIC EOI register: another vector leaves Remote IRR set"
    mov dword [IOAPIC_EOI], VEC_LEVEL
    call rirr
    CHECK_EQ eax, 0, "IOAPIC EOI register: the entry's vector clears Remote IRR"
.last_eoi:
    call lapic_eoi
    call rirr
    CHECK_EQ eax, 0, "Remote IRR clear after the EOIs"
    mov ecx, 4
    call wait_count
    CHECK_EQ [count], 3, "no delivery after the EOIs with the line low"

.done:
    mov eax, VEC_LEVEL | RED_LEVEL | RED_MASKED
    mov ecx, REDIR_LO
    call ioapic_write
    call line_down
    ret
