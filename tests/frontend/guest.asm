; Tiny multiboot guests for the command-line tests (cli_test.sh). One
; source, assembled once per behaviour with -DEXIT, -DTRIPLE, -DHALT, -DSPIN
; or -DRESET.
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
%else
%error "define EXIT, TRIPLE, HALT, SPIN or RESET"
%endif
    ud2

section .rodata
greeting: db "hello from the test guest", 10, 0
align 8
empty_idt:
    dw 0
    dd 0
