; CPU-bound benchmark guest for bench/cpu.sh: a multiboot v1 kernel that
; enters 64-bit long mode and runs an integer loop mix (xorshift ALU work,
; a data-dependent branch, a load/add/store into a 64 KiB table and a call
; per iteration), prints a checksum on COM1 and exits through the
; isa-debug-exit port with 0. The same file runs on viridian and on QEMU, so
; the checksums must agree.
;
; ITERATIONS can be overridden with -DITERATIONS=N; 0 gives the "empty" run
; that measures start-up cost alone.

%ifndef ITERATIONS
%define ITERATIONS 12000000         ; about 300 million instructions
%endif

MB_MAGIC    equ 0x1BADB002
MB_FLAGS    equ 0x00000003
TABLE_BYTES equ 65536

%include "defs.inc"            ; COM1, DEBUG_EXIT_PORT
%include "serial.inc"          ; serial_puts64, serial_hex64, exit_with64

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
table:      resb TABLE_BYTES

section .data
align 8
gdt64:
    dq 0
    dq 0x00AF9A000000FFFF
    dq 0x00CF92000000FFFF
gdt64_end:
gdt64_ptr:
    dw gdt64_end - gdt64 - 1
    dd gdt64

section .rodata
msg_checksum: db "cpu_loop checksum: ", 0
msg_iters:    db " iterations: ", 0

section .text
bits 32
global _start
_start:
    mov esp, stack_top
    ; Identity-map 1 GiB with 2 MiB pages and enter long mode.
    mov dword [pml4], pdpt + 0x003
    mov dword [pdpt], pd + 0x003
    xor ecx, ecx
.map:
    mov eax, ecx
    shl eax, 21
    or eax, 0x083
    mov [pd + ecx * 8], eax
    inc ecx
    cmp ecx, 512
    jb .map
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, pml4
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, 1 << 8
    wrmsr
    mov eax, cr0
    or eax, 1 << 31
    mov cr0, eax
    lgdt [gdt64_ptr]
    jmp 0x08:long_mode

bits 64
long_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, stack_top

    mov r12, ITERATIONS
    mov rax, 0x9E3779B97F4A7C15     ; xorshift state
    xor r13, r13                    ; running checksum
    lea rbx, [rel table]
    test r12, r12
    jz .done
.loop:
    mov rdx, rax                    ; xorshift64
    shl rdx, 13
    xor rax, rdx
    mov rdx, rax
    shr rdx, 7
    xor rax, rdx
    mov rdx, rax
    shl rdx, 17
    xor rax, rdx
    mov ecx, eax                    ; load, add, store at a pseudo-random slot
    and ecx, TABLE_BYTES - 8
    mov rdx, [rbx + rcx]
    add rdx, rax
    mov [rbx + rcx], rdx
    test al, 1                      ; a branch that is taken half the time
    jz .even
    add r13, rdx
    jmp .joined
.even:
    sub r13, rax
.joined:
    call mix
    dec r12
    jnz .loop
.done:
    ; Fold the table into the checksum so every store counts.
    xor ecx, ecx
.fold:
    add r13, [rbx + rcx]
    rol r13, 1
    add ecx, 8
    cmp ecx, TABLE_BYTES
    jb .fold

    lea rsi, [rel msg_checksum]
    call serial_puts64
    mov rax, r13
    call serial_hex64
    lea rsi, [rel msg_iters]
    call serial_puts64
    mov rax, ITERATIONS
    call serial_hex64
    call serial_newline64
    xor eax, eax
    jmp exit_with64

mix:
    rol r13, 5
    xor r13, rax
    ret
