; bios_timer — the interrupt controller and timer state a multiboot kernel
; finds when it starts. On a PC the firmware leaves them programmed, and
; multiboot kernels (kvm-unit-tests' realmode HLTs with IF=1 and waits for
; the timer) rely on it. SeaBIOS (src/hw/pic.c pic_setup/pic_reset,
; src/hw/timer.c pit_setup, src/clock.c clock_setup) leaves:
;   - both 8259s initialised (ICW1 0x11, vector bases 0x08 and 0x70, the
;     slave on IRQ 2, ICW4 8086 mode, no auto-EOI), IRQ 0 (timer), 1
;     (keyboard), 2 (cascade), 6 (floppy), 8 (RTC), 12 (mouse), 13 (FPU)
;     and 14 (primary IDE) unmasked;
;   - PIT counter 0 in mode 2, LSB then MSB, binary, count 0 (65536: 18.2 Hz).
;   - a real-mode interrupt vector table whose 8259 vectors acknowledge the
;     interrupt (SeaBIOS's handlers, src/romlayout.S, end with an EOI).
; Checked: the two masks, counter 0's read-back status, IRQ 0 arriving at
; vector 0x08 and waking a HLT with IF=1, IRQ 0's period on the PM timer,
; IRQ 8 (the RTC's periodic interrupt) arriving at vector 0x70, and, in
; real mode through the IVT the ROM found, 300 ms of IF=1 with the timer
; open leaving no IRQ 0 in service and the registers as they were.

%define ROM_NAME "bios_timer"
%include "rom.inc"
%include "timing.inc"

PIC1_CMD        equ 0x20
PIC1_DATA       equ 0x21
PIC2_CMD        equ 0xA0
PIC2_DATA       equ 0xA1
PIC_EOI         equ 0x20
PIT_CH0         equ 0x40
PIT_CTRL        equ 0x43
RB_STATUS0      equ 0xE2        ; read-back: status only, counter 0
CMOS_INDEX      equ 0x70
CMOS_DATA       equ 0x71

; What SeaBIOS leaves in the interrupt mask registers: IRQ 0, 1, 2, 6 on the
; master, IRQ 8, 12, 13, 14 on the slave unmasked.
BIOS_MASK1      equ 0xB8
BIOS_MASK2      equ 0x8E

section .bss
ticks:          resd 1          ; IRQ 0 count
last_vector:    resd 1          ; the vector the last handler ran for
rtc_count:      resd 1          ; IRQ 8 count
stray:          resd 1          ; any other vector from 0x08-0x0F/0x70-0x77
tick_pm:        resd 1          ; PM time of the first of the timed ticks

section .text
bits 32

irq0_isr:
    push eax
    inc dword [ticks]
    mov dword [last_vector], 0x08
    mov al, PIC_EOI
    out PIC1_CMD, al
    pop eax
    iret

irq8_isr:
    push eax
    inc dword [rtc_count]
    mov dword [last_vector], 0x70
    mov al, 0x0C                ; reading register C acknowledges the RTC
    out CMOS_INDEX, al
    in al, CMOS_DATA
    mov al, PIC_EOI
    out PIC2_CMD, al
    out PIC1_CMD, al
    pop eax
    iret

stray_isr:
    inc dword [stray]
    iret

; wait_tick: HLT with IF=1 until IRQ 0 has run once more; EAX = its count.
; Any interrupt wakes HLT, so loop until the count moves.
wait_tick:
    mov eax, [ticks]
.again:
    sti
    hlt
    cli
    cmp eax, [ticks]
    je .again
    mov eax, [ticks]
    ret

test_main:
    ; Every vector the two 8259s can send gets a handler first (IRQ 0 at
    ; vector 8 would otherwise look like a #DF).
    mov eax, 0x08
.gates1:
    mov ebx, stray_isr
    mov cl, ACC_INTGATE
    call idt32_set_gate
    inc eax
    cmp eax, 0x10
    jb .gates1
    mov eax, 0x70
.gates2:
    call idt32_set_gate
    inc eax
    cmp eax, 0x78
    jb .gates2
    mov eax, 0x08
    mov ebx, irq0_isr
    call idt32_set_gate
    mov eax, 0x70
    mov ebx, irq8_isr
    call idt32_set_gate

    in al, PIC1_DATA
    movzx eax, al
    CHECK_EQ eax, BIOS_MASK1, "master 8259 mask as the BIOS leaves it (IRQ 0, 1, 2, 6 open)"
    in al, PIC2_DATA
    movzx eax, al
    CHECK_EQ eax, BIOS_MASK2, "slave 8259 mask as the BIOS leaves it (IRQ 8, 12, 13, 14 open)"

    mov al, RB_STATUS0
    out PIT_CTRL, al
    in al, PIT_CH0
    movzx eax, al
    CHECK_MASKED eax, 0x3F, 0x34, "PIT counter 0: LSB/MSB, mode 2, binary"

    ; Only the timer from here on: the keyboard, floppy, IDE and FPU lines
    ; stay quiet anyway, but the RTC is tested on its own below.
    mov al, 0xFE
    out PIC1_DATA, al
    mov al, 0xFF
    out PIC2_DATA, al

    call wait_tick
    CHECK_EQ dword [last_vector], 0x08, "IRQ 0 arrives at vector 0x08 and wakes HLT with IF=1"
    call wait_tick
    call pm_now
    mov [tick_pm], eax
    call wait_tick
    call wait_tick
    call wait_tick
    call wait_tick
    mov ebx, [tick_pm]
    call pm_since               ; four periods of 65536 / 1.193182 MHz = 219.7 ms
    CHECK_RANGE eax, PM_MS(180), PM_MS(260), "four IRQ 0 periods take 220 ms (count 0 = 65536)"
    CHECK_EQ dword [stray], 0, "no other 8259 vector seen"

    ; IRQ 8: the RTC's periodic interrupt (rate 6 = 1024 Hz) through the
    ; slave, vector base 0x70.
    mov al, 0xFB                ; master: only the cascade
    out PIC1_DATA, al
    mov al, 0xFE                ; slave: only IRQ 8
    out PIC2_DATA, al
    mov al, 0x0A
    out CMOS_INDEX, al
    in al, CMOS_DATA
    and al, 0xF0
    or al, 0x06
    out CMOS_DATA, al
    mov al, 0x0B
    out CMOS_INDEX, al
    in al, CMOS_DATA
    or al, 0x40                 ; PIE
    out CMOS_DATA, al
    mov al, 0x0C
    out CMOS_INDEX, al
    in al, CMOS_DATA
    sti
    mov ecx, PM_MS(20)
    call pm_wait
    cli
    mov al, 0x0B
    out CMOS_INDEX, al
    in al, CMOS_DATA
    and al, ~0x40
    out CMOS_DATA, al
    mov al, 0xFF
    out PIC2_DATA, al
    CHECK_EQ dword [last_vector], 0x70, "IRQ 8 arrives at vector 0x70"
    CHECK_EQ dword [stray], 0, "no other 8259 vector seen with the RTC"

    ; Real mode, the firmware's IVT, the timer open: about five ticks.
    mov al, 0xFE
    out PIC1_DATA, al
    mov eax, RMOFF(rm_ticks)
    call rm_call
    movzx eax, word [RMADDR(rm_isr)]
    CHECK_EQ eax, 0, "real mode: after 300 ms of IF=1 no 8259 interrupt is left in service"
    CHECK_EQ dword [RMADDR(rm_regs_ok)], 1, "real mode: the IVT's timer handler keeps the registers"
    movzx eax, word [RMADDR(rm_loops)]
    CHECK_RANGE eax, 1, 0xFFFF, "real mode: the wait loop ran"
    mov al, 0xFF
    out PIC1_DATA, al
    ret

section .rmblob
bits 16
rm_isr:     dw 0
rm_loops:   dw 0
align 4
rm_regs_ok: dd 0
; Waits 300 ms of PM time with IF=1 and recognisable values in the
; registers the handlers could clobber, then reads both ISRs (OCW3 0x0B).
rm_ticks:
    mov dx, PM_TIMER_PORT
    in eax, dx
    mov ebx, eax
    mov esi, 0x12345678
    mov edi, 0x9ABCDEF0
    mov ebp, 0x0BADF00D
    mov ecx, 0x13579BDF
    sti
.wait:
    inc word [RMOFF(rm_loops) + RM_BASE]
    mov ax, 0x5A5A              ; AX must survive an interrupt between here...
    nop
    nop
    cmp ax, 0x5A5A              ; ...and here
    jne .clobbered
    mov dx, PM_TIMER_PORT
    in eax, dx
    sub eax, ebx
    and eax, 0xFFFFFF
    cmp eax, PM_MS(300)
    jb .wait
    cli
    cmp esi, 0x12345678
    jne .clobbered
    cmp edi, 0x9ABCDEF0
    jne .clobbered
    cmp ebp, 0x0BADF00D
    jne .clobbered
    cmp ecx, 0x13579BDF
    jne .clobbered
    mov dword [RMOFF(rm_regs_ok) + RM_BASE], 1
.clobbered:
    cli
    mov al, 0x0B
    out PIC1_CMD, al
    out PIC2_CMD, al
    in al, PIC1_CMD
    mov ah, al
    in al, PIC2_CMD
    xchg al, ah
    mov [RMOFF(rm_isr) + RM_BASE], ax
    mov al, 0x0A                ; back to reading IRR
    out PIC1_CMD, al
    out PIC2_CMD, al
    ret
section .text
bits 32
