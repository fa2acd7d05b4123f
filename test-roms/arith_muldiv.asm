; arith_muldiv.asm — MUL, IMUL (one, two and three operands), DIV, IDIV for
; 8/16/32/64-bit operands (SDM Vol 2A/2B).  MUL/IMUL define only CF and
; OF (set when the high half is significant); DIV/IDIV define no flags
; and round toward zero, the remainder taking the dividend's sign; a
; quotient that does not fit raises #DE.
; Expected values are hand-computed and were confirmed on QEMU.

%define ROM_NAME "arith_muldiv"
%include "rom.inc"
%include "alu.inc"

CO      equ FL_CF | FL_OF

section .text
bits 32
test_main:
    ; ---- MUL ----------------------------------------------------------------
    T {mul ebx}, 0x80000000, 2, 0, 0, CO, CO, "mul 0x80000000*2: EAX=0, CF=OF=1"
    CHECK_EQ edx, 1, "mul 0x80000000*2: EDX = 1"
    T {mul ebx}, 0x10000, 0x10, CO, 0x100000, CO, 0, "mul with an empty high half: CF=OF=0"
    CHECK_EQ edx, 0, "mul: EDX = 0"
    T {mul bl}, 0x12345680, 2, 0, 0x12340100, CO, CO, "mul bl: AX = 0x100, upper EAX kept"
    mov edx, 0xABCD0000
    T {mul bx}, 0xFFFF, 0xFFFF, 0, 0x0001, CO, CO, "mul bx: 0xFFFF^2, AX = 0x0001"
    CHECK_EQ edx, 0xABCDFFFE, "mul bx: DX = 0xFFFE, upper EDX kept"
    ; ---- IMUL -----------------------------------------------------------------
    T {imul ebx}, -1, -1, CO, 1, CO, 0, "imul -1*-1 = 1: fits, CF=OF=0"
    CHECK_EQ edx, 0, "imul -1*-1: EDX = 0"
    T {imul ebx}, 0x40000000, 2, 0, 0x80000000, CO, CO, "imul 0x40000000*2: does not fit in 32 signed bits"
    CHECK_EQ edx, 0, "imul 0x40000000*2: EDX = 0"
    T {imul ebx}, -3, 5, 0, -15, CO, 0, "imul -3*5 = -15"
    CHECK_EQ edx, 0xFFFFFFFF, "imul -3*5: EDX = sign extension"
    T {imul bl}, 0x80, 0xFF, 0, 0x0080, CO, CO, "imul bl: -128*-1 = +128 overflows AL"
    T {imul eax, ebx}, 0x7FFFFFFF, 2, 0, 0xFFFFFFFE, CO, CO, "imul eax, ebx: truncated, CF=OF=1"
    T {imul eax, ebx}, -3, 4, CO, -12, CO, 0, "imul eax, ebx: -3*4 = -12"
    T {imul eax, ebx, 10}, 0, 12345, CO, 123450, CO, 0, "imul eax, ebx, 10"
    T {imul eax, ebx, -1}, 0, 0x80000000, 0, 0x80000000, CO, CO, "imul eax, ebx, -1: -(-2^31) overflows"
    T {imul ax, bx}, 0x55550100, 0x100, 0, 0x55550000, CO, CO, "imul ax, bx: 0x100*0x100 overflows, upper kept"
    T {imul eax, ebx, 0x12345}, 0, 3, CO, 0x369CF, CO, 0, "imul eax, ebx, imm32"
    ; ---- DIV ----------------------------------------------------------------------
    mov edx, 1
    T {div ebx}, 0, 0x10, 0, 0x10000000, 0, 0, "div: 0x100000000 / 0x10"
    CHECK_EQ edx, 0, "div: remainder 0"
    xor edx, edx
    T {div ebx}, 100, 7, 0, 14, 0, 0, "div: 100 / 7 = 14"
    CHECK_EQ edx, 2, "div: 100 % 7 = 2"
    T {div bl}, 0x1234, 0x56, 0, 0x1036, 0, 0, "div bl: 0x1234 / 0x56 -> AL = 0x36, AH = 0x10"
    mov edx, 1
    T {div bx}, 0, 2, 0, 0x8000, 0, 0, "div bx: 0x10000 / 2"
    CHECK_EQ edx, 0, "div bx: DX = 0"
    ; ---- IDIV -----------------------------------------------------------------------
    mov edx, -1
    T {idiv ebx}, -7, 2, 0, -3, 0, 0, "idiv -7 / 2 = -3 (toward zero)"
    CHECK_EQ edx, -1, "idiv -7 % 2 = -1 (sign of the dividend)"
    xor edx, edx
    T {idiv ebx}, 7, -2, 0, -3, 0, 0, "idiv 7 / -2 = -3"
    CHECK_EQ edx, 1, "idiv 7 % -2 = 1"
    T {idiv bl}, 0xFF9C, 7, 0, 0xFEF2, 0, 0, "idiv bl: -100 / 7 -> AL = -14, AH = -2"
    mov edx, -1
    T {idiv ebx}, 0x80000000, 1, 0, 0x80000000, 0, 0, "idiv -2^31 / 1 fits"
    CHECK_EQ edx, 0, "idiv -2^31 / 1: remainder 0"
    mov edx, -1
    mov ebx, -1
    mov eax, 0x80000000
    TRY idiv ebx
    CHECK_FAULT VEC_DE, NOERR, "idiv -2^31 / -1 -> #DE"
    xor edx, edx
    xor ebx, ebx
    TRY div bx
    CHECK_FAULT VEC_DE, NOERR, "div bx by 0 -> #DE"
    call muldiv_64              ; ends the test

muldiv_64:
    ENTER_LONG_MODE
    T {mul rbx}, 0xFFFFFFFFFFFFFFFF, 2, 0, 0xFFFFFFFFFFFFFFFE, CO, CO, "64: mul rbx: high half 1"
    CHECK_EQ rdx, 1, "64: mul rbx: RDX = 1"
    T {imul rbx}, -2, 3, CO, -6, CO, 0, "64: imul rbx: -2*3"
    CHECK_EQ rdx, -1, "64: imul rbx: RDX = sign extension"
    T {imul rax, rbx, 0x7FFFFFFF}, 0, 0x100000000, CO, 0x7FFFFFFF00000000, CO, 0, "64: imul rax, rbx, imm32: fits"
    T {imul rax, rbx}, 0x4000000000000000, 2, 0, 0x8000000000000000, CO, CO, "64: imul rax, rbx: overflow"
    mov rdx, 0x1234567800000000
    T {mul ebx}, 0xFFFFFFFF, 0xFFFFFFFF, 0, 1, CO, CO, "64: mul ebx: EAX = 1, RAX zero-extended"
    CHECK_EQ rdx, 0xFFFFFFFE, "64: mul ebx: EDX = 0xFFFFFFFE, RDX zero-extended"
    mov edx, 1
    T {div rbx}, 0, 2, 0, 0x8000000000000000, 0, 0, "64: div rbx: 2^64 / 2"
    CHECK_EQ rdx, 0, "64: div rbx: remainder 0"
    mov rdx, -1
    T {idiv rbx}, -9, 4, 0, -2, 0, 0, "64: idiv -9 / 4 = -2"
    CHECK_EQ rdx, -1, "64: idiv -9 % 4 = -1"
    mov rax, 0x8000000000000000
    cqo
    mov rbx, -1
    TRY idiv rbx
    CHECK_FAULT VEC_DE, NOERR, "64: idiv -2^63 / -1 -> #DE"
    TEST_PASS
