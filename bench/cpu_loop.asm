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

TABLE_BYTES equ 65536

%include "guest64.inc"

section .bss
align 4096
table:      resb TABLE_BYTES

section .rodata
msg_checksum: db "cpu_loop checksum: ", 0

section .text
bits 64
guest_main:
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
    jmp guest_report

mix:
    rol r13, 5
    xor r13, rax
    ret
