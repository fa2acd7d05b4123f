; The program the snapshot fuzz seeds were saved from (tests/fuzz/snapshot_fuzz_machine.h
; holds its bytes: nasm -f bin snapshot_seed_program.asm). Real mode at 0000:7C00: it
; programs the 8259s, the PIT, the RTC, COM1, the x87 and, with the Hyper-V
; enlightenments, the partition MSRs, the SynIC and a synthetic timer, then
; waits for interrupts, so a saved state has timers armed and devices busy.
bits 16
org 0x7C00
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    ; 8259A pair: vectors 0x20/0x28, cascade on IRQ2, only IRQ0 and IRQ4 unmasked
    mov al, 0x11
    out 0x20, al
    out 0xA0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xA1, al
    mov al, 4
    out 0x21, al
    mov al, 2
    out 0xA1, al
    mov al, 1
    out 0x21, al
    out 0xA1, al
    mov al, 0xEC
    out 0x21, al
    ; IVT: IRQ0 (0x20), IRQ4 (0x24) and the SynIC's vector 0x40 to the handler
    mov word [0x20*4], irq
    mov word [0x20*4+2], 0
    mov word [0x24*4], irq
    mov word [0x24*4+2], 0
    mov word [0x40*4], irq
    mov word [0x40*4+2], 0
    ; PIT counter 0, mode 2, count 2000; counter 2 mode 3 (speaker)
    mov al, 0x34
    out 0x43, al
    mov al, 0xD0
    out 0x40, al
    mov al, 0x07
    out 0x40, al
    mov al, 0xB6
    out 0x43, al
    mov al, 0x00
    out 0x42, al
    out 0x42, al
    ; RTC register B: periodic and update-ended interrupts, 24-hour mode
    mov al, 0x0B
    out 0x70, al
    mov al, 0x52
    out 0x71, al
    ; COM1: FIFO on, receive and transmit interrupts, OUT2
    mov dx, 0x3FA
    mov al, 0x07
    out dx, al
    mov dx, 0x3F9
    mov al, 0x03
    out dx, al
    mov dx, 0x3FC
    mov al, 0x0B
    out dx, al
    ; x87: a few registers in use, TOP not 0
    fninit
    fld1
    fldpi
    fldz
    fdiv st1, st0
    ; Hyper-V (CPUID.1:ECX.31 says a hypervisor is there): guest OS ID,
    ; hypercall and reference TSC pages, SynIC, synthetic timer 0 periodic
    mov eax, 1
    cpuid
    bt ecx, 31
    jnc .no_hv
    mov ecx, 0x40000000
    mov eax, 0
    mov edx, 0x81000000
    wrmsr
    mov ecx, 0x40000001
    mov eax, 0x13001
    xor edx, edx
    wrmsr
    mov ecx, 0x40000021
    mov eax, 0x12001
    wrmsr
    mov ecx, 0x40000083
    mov eax, 0x10001
    wrmsr
    mov ecx, 0x40000082
    mov eax, 0x11001
    wrmsr
    mov ecx, 0x40000092
    mov eax, 0x40
    wrmsr
    mov ecx, 0x40000080
    mov eax, 1
    wrmsr
    mov ecx, 0x400000B1
    mov eax, 50000
    wrmsr
    mov ecx, 0x400000B0
    mov eax, 0x2000B
    wrmsr
.no_hv:
    sti
.loop:
    mov dx, 0x3F8
    mov al, '.'
    out dx, al
    hlt
    inc word [0x6000]
    jmp .loop
irq:
    push ax
    inc bx
    mov al, 0x20
    out 0x20, al
    pop ax
    iret
