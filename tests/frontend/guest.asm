; Tiny multiboot guests for the command-line tests (cli_test.sh). One
; source, assembled once per behaviour with -DEXIT, -DTRIPLE, -DHALT, -DSPIN,
; -DRESET, -DCRASH or -DTIMER.
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
    mov dx, 0x2F8               ; and on COM2 (--serial2)
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
%elifdef TIMER
    ; A LAPIC one-shot timer must interrupt a busy vCPU on time, not at the
    ; end of the machine's run slice. Run with --deterministic: the TSC then
    ; counts virtual nanoseconds (one per retired instruction) and a timer
    ; count of N at divide-by-1 lasts N ns. The handler measures how late the
    ; interrupt came; exit status 33 if within LATENESS_LIMIT ns, 35 if not.
    lgdt [gdt_descriptor]
    jmp 0x08:.flat
.flat:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, timer_interrupt    ; IDT entry for TIMER_VECTOR: 32-bit interrupt gate
    mov [idt + TIMER_VECTOR * 8], ax
    mov word [idt + TIMER_VECTOR * 8 + 2], 0x08
    mov word [idt + TIMER_VECTOR * 8 + 4], 0x8E00
    shr eax, 16
    mov [idt + TIMER_VECTOR * 8 + 6], ax
    lidt [idt_descriptor]
    mov dword [APIC + 0xF0], 0x1FF      ; spurious vector register: APIC enabled
    mov dword [APIC + 0x3E0], 0x0B      ; divide by 1
    mov dword [APIC + 0x320], TIMER_VECTOR ; LVT timer: one-shot, unmasked
    rdtsc
    mov [armed_at], eax
    mov dword [APIC + 0x380], TIMER_COUNT
    sti
.busy:
    inc ecx
    jmp .busy
timer_interrupt:
    rdtsc
    sub eax, [armed_at]
    sub eax, TIMER_COUNT        ; lateness in ns (may be slightly negative: the
    add eax, 100                ; TSC read before the arming store)
    cmp eax, LATENESS_LIMIT + 100
    mov al, 0x10                ; on time: status 33
    jb .report
    mov al, 0x11                ; late: status 35
.report:
    out 0xF4, al
%else
%error "define EXIT, TRIPLE, HALT, SPIN, RESET, CRASH or TIMER"
%endif
    ud2

APIC equ 0xFEE00000
TIMER_VECTOR equ 0x40
TIMER_COUNT equ 250000          ; ends well inside a 100,000-instruction slice
LATENESS_LIMIT equ 1000

section .data
align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF       ; 0x08: flat 32-bit code
    dq 0x00CF92000000FFFF       ; 0x10: flat data
gdt_descriptor:
    dw gdt_descriptor - gdt - 1
    dd gdt
idt_descriptor:
    dw 256 * 8 - 1
    dd idt
armed_at:
    dd 0

section .bss
align 8
idt:
    resb 256 * 8

section .rodata
greeting: db "hello from the test guest", 10, 0
align 8
empty_idt:
    dw 0
    dd 0
