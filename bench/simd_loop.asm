; SIMD/x87 benchmark guest for bench/simd.sh: a multiboot v1 kernel that
; enters 64-bit long mode, enables SSE (CR4.OSFXSR/OSXMMEXCPT, CR0.MP) and
; runs one of two kernels, prints a checksum on COM1 and exits through the
; isa-debug-exit port with 0. The same file runs on viridian and on QEMU, so
; the checksums must agree.
;
;   -DKERNEL_SSE: SSE2 integer mixing in the style of a SHA-256 round
;     (PADDD, rotates made of PSLLD/PSRLD/POR, PXOR, PSHUFD, PAND) over a
;     4 KiB table, plus a single-precision multiply-accumulate (CVTDQ2PS,
;     MULPS, ADDPS) of the same data.
;   -DKERNEL_X87: the logistic map x <- r*x*(1-x) in 80-bit extended
;     precision with a running sum of sqrt(x) (FLD/FSUBRP/FMULP/FMUL/FSQRT/
;     FADDP): chaotic, so a single rounding difference changes the checksum.
;
; ITERATIONS can be overridden with -DITERATIONS=N; 0 gives the "empty" run
; that measures start-up cost alone.

%ifndef ITERATIONS
%define ITERATIONS 2000000
%endif

TABLE_BYTES equ 4096

%define GUEST_CR4 CR4_OSFXSR | (1 << 10)           ; OSXMMEXCPT
%define GUEST_CR0_SET CR0_MP | CR0_NE
%define GUEST_CR0_CLEAR CR0_EM
%include "guest64.inc"

section .bss
align 4096
table:      resb TABLE_BYTES
result:     resq 2

section .data
align 16
low_bytes:  times 4 dd 0xFF
logistic_r: dq 3.9
x0:         dq 0.123456789

section .rodata
msg_checksum: db "simd_loop checksum: ", 0

section .text
bits 64
guest_main:
    fninit

    ; Fill the table with xorshift64 output (start-up, in the empty run too).
    lea rbx, [rel table]
    mov rax, 0x9E3779B97F4A7C15
    xor ecx, ecx
.fill:
    mov rdx, rax
    shl rdx, 13
    xor rax, rdx
    mov rdx, rax
    shr rdx, 7
    xor rax, rdx
    mov rdx, rax
    shl rdx, 17
    xor rax, rdx
    mov [rbx + rcx], rax
    add ecx, 8
    cmp ecx, TABLE_BYTES
    jb .fill

    mov r12, ITERATIONS
%ifdef KERNEL_SSE
    movdqa xmm0, [rbx]
    movdqa xmm1, [rbx + 16]
    movdqa xmm2, [rbx + 32]
    pxor xmm3, xmm3
    movdqa xmm7, [rel low_bytes]
    xor ecx, ecx
    test r12, r12
    jz .done
.loop:
    movdqa xmm4, [rbx + rcx]
    paddd xmm0, xmm4
    movdqa xmm5, xmm0               ; xmm0 = rotl(xmm0, 7) per lane
    pslld xmm5, 7
    psrld xmm0, 25
    por xmm0, xmm5
    pxor xmm1, xmm0
    pshufd xmm1, xmm1, 0x93
    paddd xmm2, xmm1
    movdqa xmm5, xmm2               ; a choose-like step
    pand xmm5, xmm0
    pxor xmm2, xmm5
    movdqa xmm6, xmm4               ; float multiply-accumulate of the low bytes
    pand xmm6, xmm7
    cvtdq2ps xmm6, xmm6
    mulps xmm6, xmm6
    addps xmm3, xmm6
    add ecx, 16
    and ecx, TABLE_BYTES - 1
    dec r12
    jnz .loop
.done:
    pxor xmm0, xmm1
    pxor xmm0, xmm2
    pshufd xmm1, xmm0, 0x4E
    pxor xmm0, xmm1
    movq r13, xmm0
    pshufd xmm1, xmm3, 0x4E
    addps xmm3, xmm1
    movq rax, xmm3
    xor r13, rax
%elifdef KERNEL_X87
    fldz                            ; sum
    fld qword [rel logistic_r]      ; r, sum
    fld qword [rel x0]              ; x, r, sum
    test r12, r12
    jz .done
.loop:
    fld st0                         ; x, x, r, sum
    fld1                            ; 1, x, x, r, sum
    fsubrp st1, st0                 ; 1-x, x, r, sum
    fmulp st1, st0                  ; x(1-x), r, sum
    fmul st0, st1                   ; x' = r x (1-x), r, sum
    fld st0                         ; x', x', r, sum
    fsqrt                           ; sqrt(x'), x', r, sum
    faddp st3, st0                  ; x', r, sum + sqrt(x')
    dec r12
    jnz .loop
.done:
    fstp qword [rel result]         ; x
    fstp st0                        ; r
    fstp qword [rel result + 8]     ; sum
    mov r13, [rel result]
    xor r13, [rel result + 8]
%else
%error "define KERNEL_SSE or KERNEL_X87"
%endif

    lea rsi, [rel msg_checksum]
    jmp guest_report
