; Tiny multiboot guests for the command-line tests (cli_test.sh). One
; source, assembled once per behaviour with -DEXIT, -DTRIPLE, -DHALT, -DSPIN,
; -DRESET or -DCRASH.
bits 32

section .multiboot
align 4
    dd 0x1BADB002, 0, -0x1BADB002

section .text
global _start
_start:
    mov esp, 0x80000
    mov esi, greeting
.print:
    lodsb
    test al, al
    jz .behave
    mov dx, 0x3F8
    out dx, al
    jmp .print
.behave:
%ifdef EXIT
    mov al, 0x10
    out 0xF4, al                ; exit status (0x10 << 1) | 1 = 33
%elifdef TRIPLE
    lidt [empty_idt]
    int3                        ; #GP (no IDT entry) -> #DF -> triple fault
%elifdef HALT
    cli
    hlt
%elifdef SPIN
.spin:
    inc eax
    jmp .spin
%elifdef RESET
    mov dx, 0xCF9
    mov al, 0x06                ; hard reset through the reset control register
    out dx, al
.wait:
    jmp .wait                   ; the reset takes effect at once; never reached
%elifdef CRASH
    ; A guest crash notification through the Hyper-V crash MSRs (TLFS 4.3):
    ; HV_X64_MSR_CRASH_P0-P4 (0x40000100-0x40000104), then CRASH_CTL
    ; (0x40000105) with CrashNotify (bit 63). Without enlightenments the
    ; first WRMSR is #GP, which with no IDT ends in a triple fault.
    mov ecx, 0x40000100
.param:
    lea eax, [ecx - 0x40000100 + 1]
    imul eax, eax, 0x11111111   ; P0 = 0x11111111 ... P4 = 0x55555555
    mov edx, ecx
    and edx, 0xFF
    or edx, 0xC0DE0000          ; the high half names the register
    wrmsr
    inc ecx
    cmp ecx, 0x40000105
    jne .param
    xor eax, eax
    mov edx, 0x80000000
    wrmsr
    mov al, 0x20
    out 0xF4, al                ; not reached: the crash ends the run
%else
%error "define EXIT, TRIPLE, HALT, SPIN, RESET or CRASH"
%endif
    ud2

section .rodata
greeting: db "hello from the test guest", 10, 0
align 8
empty_idt:
    dw 0
    dd 0
