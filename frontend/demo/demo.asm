; viridian's built-in demo: a multiboot v1 kernel that switches from 32-bit
; protected mode to 64-bit long mode, prints what the loader told it and a
; few computed values on COM1, then ends the run through the isa-debug-exit
; port with value 0 (QEMU: exit status 1; viridian's demo run: status 0).
;
; It runs unchanged on QEMU:
;   qemu-system-x86_64 -machine pc -accel tcg -display none -serial stdio \
;       -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel demo.elf

MB_MAGIC        equ 0x1BADB002
MB_FLAGS        equ 0x00000003      ; page-aligned modules, memory info wanted
MB_LOADER_MAGIC equ 0x2BADB002
COM1            equ 0x3F8
DEBUG_EXIT      equ 0xF4
SIEVE_N         equ 1000000

section .multiboot
align 4
    dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

section .bss
align 4096
pml4:       resb 4096
pdpt:       resb 4096
pd:         resb 4096
stack:      resb 16384
stack_top:
sieve:      resb SIEVE_N
mbi_ptr:    resd 1
calls:      resq 1
vendor:     resb 13

section .data
align 8
gdt64:
    dq 0
    dq 0x00AF9A000000FFFF           ; 0x08: 64-bit code, DPL 0
    dq 0x00CF92000000FFFF           ; 0x10: data
gdt64_end:
gdt64_ptr:
    dw gdt64_end - gdt64 - 1
    dd gdt64

section .rodata
msg_no_multiboot: db "demo: not started by a multiboot loader", 10, 0
msg_no_long:      db "demo: this CPU has no long mode", 10, 0
msg_title:        db "viridian demo: a multiboot kernel running in 64-bit long mode", 10, 0
msg_loader:       db "  booted by:            ", 0
msg_cmdline:      db "  command line:         ", 0
msg_memory:       db "  memory:               ", 0
msg_mib:          db " MiB", 10, 0
msg_vendor:       db "  CPU vendor:           ", 0
msg_fib:          db "  fib(90):              ", 0
msg_fact:         db "  20!:                  ", 0
msg_primes:       db "  primes below 10^6:    ", 0
msg_rec:          db "  fib(25), recursive:   ", 0
msg_calls:        db " (", 0
msg_calls_end:    db " calls)", 10, 0
msg_done:         db "demo done: exiting through the debug-exit port", 10, 0
msg_still:        db "demo: no debug-exit device; halting", 10, 0
msg_none:         db "(none)", 0
newline:          db 10, 0

section .text
bits 32
global _start
_start:
    mov esp, stack_top
    cmp eax, MB_LOADER_MAGIC
    jne .no_multiboot
    mov [mbi_ptr], ebx
    call serial_init

    ; Long mode needs CPUID 0x80000001 EDX.LM (bit 29).
    mov eax, 0x80000000
    cpuid
    cmp eax, 0x80000001
    jb .no_long
    mov eax, 0x80000001
    cpuid
    test edx, 1 << 29
    jz .no_long

    ; Identity-map the first 1 GiB with 2 MiB pages (the loader zeroed .bss).
    mov dword [pml4], pdpt + 0x003
    mov dword [pdpt], pd + 0x003
    xor ecx, ecx
.map:
    mov eax, ecx
    shl eax, 21
    or eax, 0x083                   ; present, writable, 2 MiB page
    mov [pd + ecx * 8], eax
    inc ecx
    cmp ecx, 512
    jb .map

    mov eax, cr4
    or eax, 1 << 5                  ; PAE
    mov cr4, eax
    mov eax, pml4
    mov cr3, eax
    mov ecx, 0xC0000080             ; EFER
    rdmsr
    or eax, 1 << 8                  ; LME
    wrmsr
    mov eax, cr0
    or eax, 1 << 31                 ; PG: activates long mode
    mov cr0, eax
    lgdt [gdt64_ptr]
    jmp 0x08:long_mode

.no_multiboot:
    mov esi, msg_no_multiboot
    jmp fail32
.no_long:
    mov esi, msg_no_long
fail32:
    call serial_init
.next:
    lodsb
    test al, al
    jz .out
    mov dx, COM1 + 5
    mov ah, al
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    mov al, ah
    mov dx, COM1
    out dx, al
    jmp .next
.out:
    mov al, 1
    out DEBUG_EXIT, al
    cli
    hlt

; 115200 baud, 8N1, FIFOs on; interrupts off (the demo polls).
serial_init:
    mov dx, COM1 + 1
    xor al, al
    out dx, al                      ; IER = 0
    mov dx, COM1 + 3
    mov al, 0x80
    out dx, al                      ; DLAB
    mov dx, COM1
    mov al, 1
    out dx, al                      ; divisor low
    mov dx, COM1 + 1
    xor al, al
    out dx, al                      ; divisor high
    mov dx, COM1 + 3
    mov al, 0x03
    out dx, al                      ; 8N1, DLAB off
    mov dx, COM1 + 2
    mov al, 0x07
    out dx, al                      ; FIFO on and cleared
    mov dx, COM1 + 4
    mov al, 0x03
    out dx, al                      ; DTR, RTS
    ret

bits 64
long_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, stack_top              ; zero-extends into RSP

    lea rsi, [rel msg_title]
    call puts

    mov ebx, [rel mbi_ptr]
    lea rsi, [rel msg_loader]
    call puts
    mov rsi, 0
    test dword [rbx], 1 << 9
    jz .no_loader
    mov esi, [rbx + 64]
.no_loader:
    call puts_or_none
    lea rsi, [rel newline]
    call puts

    lea rsi, [rel msg_cmdline]
    call puts
    mov rsi, 0
    test dword [rbx], 1 << 2
    jz .no_cmdline
    mov esi, [rbx + 16]
.no_cmdline:
    call puts_or_none
    lea rsi, [rel newline]
    call puts

    test dword [rbx], 1
    jz .no_memory
    lea rsi, [rel msg_memory]
    call puts
    mov eax, [rbx + 8]              ; KiB above 1 MiB
    add rax, 1024
    shr rax, 10
    call print_u64
    lea rsi, [rel msg_mib]
    call puts
.no_memory:

    lea rsi, [rel msg_vendor]
    call puts
    xor eax, eax
    cpuid
    lea rdi, [rel vendor]
    mov [rdi], ebx
    mov [rdi + 4], edx
    mov [rdi + 8], ecx
    mov byte [rdi + 12], 0
    mov rsi, rdi
    call puts
    lea rsi, [rel newline]
    call puts

    ; fib(90) iteratively: 64-bit adds in a counted loop.
    lea rsi, [rel msg_fib]
    call puts
    xor eax, eax
    mov edx, 1
    mov ecx, 90
.fib:
    lea r8, [rax + rdx]
    mov rax, rdx
    mov rdx, r8
    loop .fib
    call print_u64
    lea rsi, [rel newline]
    call puts

    ; 20! with 64-bit multiplies.
    lea rsi, [rel msg_fact]
    call puts
    mov eax, 1
    mov ecx, 2
.fact:
    imul rax, rcx
    inc ecx
    cmp ecx, 20
    jbe .fact
    call print_u64
    lea rsi, [rel newline]
    call puts

    ; Sieve of Eratosthenes over a megabyte: byte stores, loads and branches.
    lea rsi, [rel msg_primes]
    call puts
    call count_primes
    call print_u64
    lea rsi, [rel newline]
    call puts

    ; A call-heavy recursion.
    lea rsi, [rel msg_rec]
    call puts
    mov qword [rel calls], 0
    mov edi, 25
    call fib_rec
    call print_u64
    lea rsi, [rel msg_calls]
    call puts
    mov rax, [rel calls]
    call print_u64
    lea rsi, [rel msg_calls_end]
    call puts

    lea rsi, [rel msg_done]
    call puts
    xor eax, eax
    out DEBUG_EXIT, al
    ; Only reached without a debug-exit device.
    lea rsi, [rel msg_still]
    call puts
.halt:
    cli
    hlt
    jmp .halt

; rax = number of primes below SIEVE_N
count_primes:
    lea rdi, [rel sieve]
    mov ecx, SIEVE_N
    mov al, 1
    rep stosb                       ; every number a candidate
    lea rdi, [rel sieve]
    mov byte [rdi], 0
    mov byte [rdi + 1], 0
    mov ebx, 2
.outer:
    mov rax, rbx
    imul rax, rbx
    cmp rax, SIEVE_N
    jae .count
    cmp byte [rdi + rbx], 0
    je .next
.strike:
    mov byte [rdi + rax], 0
    add rax, rbx
    cmp rax, SIEVE_N
    jb .strike
.next:
    inc rbx
    jmp .outer
.count:
    xor eax, eax
    xor ecx, ecx
.sum:
    movzx edx, byte [rdi + rcx]
    add rax, rdx
    inc rcx
    cmp rcx, SIEVE_N
    jb .sum
    ret

; rax = fib(rdi), counting calls
fib_rec:
    inc qword [rel calls]
    cmp rdi, 2
    jb .base
    push rdi
    dec rdi
    call fib_rec
    pop rdi
    push rax
    sub rdi, 2
    call fib_rec
    pop rdx
    add rax, rdx
    ret
.base:
    mov rax, rdi
    ret

; Prints the NUL-terminated string at rsi, or "(none)" when rsi is 0.
puts_or_none:
    test rsi, rsi
    jnz puts
    lea rsi, [rel msg_none]
; Prints the NUL-terminated string at rsi.
puts:
    push rax
.loop:
    lodsb
    test al, al
    jz .done
    call putc
    jmp .loop
.done:
    pop rax
    ret

; Prints al on COM1 once the transmitter holding register is empty.
putc:
    push rdx
    push rax
    mov dx, COM1 + 5
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    pop rax
    mov dx, COM1
    out dx, al
    pop rdx
    ret

; Prints rax in decimal.
print_u64:
    push rbx
    push rcx
    push rdx
    sub rsp, 32
    lea rbx, [rsp + 31]
    mov byte [rbx], 0
    mov rcx, 10
.digit:
    xor edx, edx
    div rcx
    add dl, '0'
    dec rbx
    mov [rbx], dl
    test rax, rax
    jnz .digit
    mov rsi, rbx
    call puts
    add rsp, 32
    pop rdx
    pop rcx
    pop rbx
    ret
