; arith_alu.asm — integer ALU instructions and their flags, 8/16/32/64-bit:
; ADD ADC SUB SBB CMP NEG AND OR XOR TEST NOT INC DEC, XADD, CMPXCHG,
; CMPXCHG8B, CMPXCHG16B, LOCK forms.  Only flags the SDM defines are
; compared (AF is undefined after logic ops; INC/DEC keep CF; NOT changes
; no flags).  Sub-register forms also check that the rest of the register
; is kept (8/16-bit) or cleared (32-bit results in 64-bit mode).
; Expected values are hand-computed and were confirmed on QEMU.

%define ROM_NAME "arith_alu"
%include "rom.inc"
%include "alu.inc"

section .bss
alignb 16
m32:    resd 1
m64:    resq 2
alignb 16
m128:   resq 2              ; CMPXCHG16B needs 16-byte alignment

section .text
bits 32
test_main:
    ; ---- ADD ----------------------------------------------------------------
    T {add eax, ebx}, 0x7FFFFFFF, 1, 0, 0x80000000, ALL6, OF|SF|AF|PF, "add 0x7FFFFFFF+1: OF SF AF PF"
    T {add eax, ebx}, 0xFFFFFFFF, 1, 0, 0, ALL6, CF|ZF|AF|PF, "add 0xFFFFFFFF+1: CF ZF AF PF"
    T {add eax, ebx}, 0x12345678, 0x11111111, ALL6, 0x23456789, ALL6, 0, "add without carries clears all six"
    T {add eax, ebx}, 0x80000000, 0x80000000, 0, 0, ALL6, CF|OF|ZF|PF, "add 0x80000000+0x80000000: CF OF ZF PF"
    T {add al, bl}, 0x123456FF, 0x01, 0, 0x12345600, ALL6, CF|ZF|AF|PF, "add al: 0xFF+1 wraps, upper EAX kept"
    T {add al, bl}, 0x7F, 0x01, 0, 0x80, ALL6, OF|SF|AF, "add al: 0x7F+1: OF SF AF"
    T {add ax, bx}, 0xABCDFFFF, 1, 0, 0xABCD0000, ALL6, CF|ZF|AF|PF, "add ax: 0xFFFF+1, upper EAX kept"
    T {add ax, bx}, 0x8000, 0xFFFF, 0, 0x7FFF, ALL6, CF|OF|PF, "add ax: 0x8000+0xFFFF: CF OF PF"
    T {add eax, 0x10}, 0x0F, 0, 0, 0x1F, ALL6, 0, "add eax, imm8: 0x0F+0x10 (no AF)"
    T {add eax, 1}, 0x0F, 0, 0, 0x10, ALL6, AF, "add eax, imm8: 0x0F+1 (AF)"
    ; ---- ADC ----------------------------------------------------------------
    T {adc eax, ebx}, 0xFFFFFFFF, 0, CF, 0, ALL6, CF|ZF|AF|PF, "adc 0xFFFFFFFF+0+CF: CF ZF AF PF"
    T {adc eax, ebx}, 0x7FFFFFFF, 0, CF, 0x80000000, ALL6, OF|SF|AF|PF, "adc 0x7FFFFFFF+0+CF: OF SF AF PF"
    T {adc al, bl}, 0xFF, 0xFF, CF, 0xFF, ALL6, CF|SF|AF|PF, "adc al: 0xFF+0xFF+CF = 0x1FF"
    T {adc eax, ebx}, 1, 1, 0, 2, ALL6, 0, "adc with CF=0: 1+1"
    ; ---- SUB, SBB, CMP, NEG -------------------------------------------------
    T {sub eax, ebx}, 0, 1, 0, 0xFFFFFFFF, ALL6, CF|SF|AF|PF, "sub 0-1: CF SF AF PF"
    T {sub eax, ebx}, 0x80000000, 1, 0, 0x7FFFFFFF, ALL6, OF|AF|PF, "sub 0x80000000-1: OF AF PF"
    T {sub eax, ebx}, 5, 5, 0, 0, ALL6, ZF|PF, "sub 5-5: ZF PF"
    T {sub eax, ebx}, 0x10, 1, 0, 0x0F, ALL6, AF|PF, "sub 0x10-1: AF (nibble borrow) PF"
    T {sbb eax, ebx}, 5, 5, CF, 0xFFFFFFFF, ALL6, CF|SF|AF|PF, "sbb 5-5-CF: CF SF AF PF"
    T {sbb eax, ebx}, 0, 0xFFFFFFFF, CF, 0, ALL6, CF|ZF|AF|PF, "sbb 0-0xFFFFFFFF-CF: borrow, result 0"
    T {sbb al, bl}, 0x80, 0, CF, 0x7F, ALL6, OF|AF, "sbb al: 0x80-0-CF: OF AF"
    T {cmp eax, ebx}, 3, 5, 0, 3, ALL6, CF|SF|AF, "cmp 3,5: CF SF AF, EAX kept"
    T {cmp eax, ebx}, 0x80000000, 1, 0, 0x80000000, ALL6, OF|AF|PF, "cmp 0x80000000,1: OF"
    T {cmp ax, bx}, 0x12340001, 0xFFFF0002, 0, 0x12340001, ALL6, CF|SF|AF|PF, "cmp ax: 1-2 (upper halves ignored)"
    T {neg eax}, 0, 0, CF, 0, ALL6, ZF|PF, "neg 0: CF=0 ZF PF"
    T {neg eax}, 1, 0, 0, 0xFFFFFFFF, ALL6, CF|SF|AF|PF, "neg 1: CF SF AF PF"
    T {neg eax}, 0x80000000, 0, 0, 0x80000000, ALL6, CF|OF|SF|PF, "neg 0x80000000: CF OF SF"
    T {neg al}, 0x55555580, 0, 0, 0x55555580, ALL6, CF|OF|SF, "neg al 0x80: CF OF SF, upper kept"
    ; ---- logic --------------------------------------------------------------
    T {and eax, ebx}, 0xF0F0F0F0, 0x0FF00FF0, CF|OF, 0x00F000F0, LOGIC, PF, "and: clears CF OF, PF from low byte"
    T {or eax, ebx}, 0x80000000, 1, CF|OF, 0x80000001, LOGIC, SF, "or: SF, CF=OF=0"
    T {xor eax, eax}, 0x12345678, 0, CF|OF|SF, 0, LOGIC, ZF|PF, "xor eax, eax: ZF PF"
    T {test al, bl}, 0x80, 0x80, CF|OF, 0x80, LOGIC, SF, "test al: SF, EAX kept"
    T {test eax, ebx}, 0xF0, 0x0F, 0, 0xF0, LOGIC, ZF|PF, "test with no common bits: ZF"
    T {not eax}, 0x0F0F0F0F, 0, ALL6, 0xF0F0F0F0, ALL6, ALL6, "not: result, flags unchanged (all set)"
    T {not eax}, 0x0F0F0F0F, 0, 0, 0xF0F0F0F0, ALL6, 0, "not: flags unchanged (all clear)"
    T {and ax, bx}, 0xFFFF8001, 0x8003, 0, 0xFFFF8001, LOGIC, SF, "and ax: SF from bit 15, upper kept"
    ; ---- INC, DEC -------------------------------------------------------------
    T {inc eax}, 0x7FFFFFFF, 0, CF, 0x80000000, INCDEC, CF|OF|SF|AF|PF, "inc 0x7FFFFFFF: OF SF AF PF, CF kept (1)"
    T {inc eax}, 0xFFFFFFFF, 0, 0, 0, INCDEC, ZF|AF|PF, "inc 0xFFFFFFFF: ZF AF PF, CF kept (0)"
    T {dec eax}, 0x80000000, 0, CF, 0x7FFFFFFF, INCDEC, CF|OF|AF|PF, "dec 0x80000000: OF AF PF, CF kept"
    T {dec eax}, 1, 0, 0, 0, INCDEC, ZF|PF, "dec 1: ZF PF"
    T {dec ax}, 0x12340000, 0, 0, 0x1234FFFF, INCDEC, SF|AF|PF, "dec ax 0: SF AF PF, upper kept"
    T {inc al}, 0xFF, 0, CF, 0, INCDEC, CF|ZF|AF|PF, "inc al 0xFF: ZF AF PF, CF kept"

    ; ---- XADD, CMPXCHG, CMPXCHG8B ------------------------------------------------
    T {xadd eax, ebx}, 0xFFFFFFFF, 2, 0, 1, ALL6, CF|AF, "xadd: EAX = sum, add flags"
    CHECK_EQ ebx, 0xFFFFFFFF, "xadd: source gets the old destination"
    mov dword [m32], 100
    mov ebx, 7
    lock xadd [m32], ebx
    CHECK_EQ ebx, 100, "lock xadd [m32]: register gets the old value"
    CHECK_EQ [m32], 107, "lock xadd [m32]: memory gets the sum"
    ; CMPXCHG: equal -> ZF=1 and store; not equal -> ZF=0 and load into EAX
    mov dword [m32], 55
    mov eax, 55
    mov ebx, 66
    lock cmpxchg [m32], ebx
    CHECK_RF eax, 55, ALL6, ZF|PF, "cmpxchg equal: ZF=1 (flags of cmp 55,55)"
    CHECK_EQ [m32], 66, "cmpxchg equal: memory = source"
    mov eax, 50
    cmpxchg [m32], ebx
    CHECK_RF eax, 66, ALL6, CF|SF|PF, "cmpxchg not equal: EAX = memory, flags of cmp 50,66"
    CHECK_EQ [m32], 66, "cmpxchg not equal: memory unchanged"
    mov ecx, 9
    mov eax, 9
    mov ebx, 10
    cmpxchg ecx, ebx
    CHECK_RF ecx, 10, FL_ZF, FL_ZF, "cmpxchg ecx, ebx (register destination), equal"
    mov ax, 0x1234
    mov word [m32], 0x1234
    mov bx, 0xBEEF
    cmpxchg [m32], bx
    CHECK_RF [m32], 0xBEEF, FL_ZF, FL_ZF, "cmpxchg word [m32]"
    ; CMPXCHG8B
    mov dword [m64], 0x11111111
    mov dword [m64 + 4], 0x22222222
    mov eax, 0x11111111
    mov edx, 0x22222222
    mov ebx, 0x33333333
    mov ecx, 0x44444444
    lock cmpxchg8b [m64]
    CHECK_FLAGS FL_ZF, FL_ZF, "cmpxchg8b equal: ZF=1"
    CHECK_EQ [m64], 0x33333333, "cmpxchg8b equal: low dword = EBX"
    CHECK_EQ [m64 + 4], 0x44444444, "cmpxchg8b equal: high dword = ECX"
    mov eax, 0
    mov edx, 0
    cmpxchg8b [m64]
    CHECK_FLAGS FL_ZF, 0, "cmpxchg8b not equal: ZF=0"
    CHECK_EQ eax, 0x33333333, "cmpxchg8b not equal: EAX = low dword"
    CHECK_EQ edx, 0x44444444, "cmpxchg8b not equal: EDX = high dword"
    ; LOCK on a memory destination
    mov dword [m32], 0xFFFFFFFF
    lock add dword [m32], 1
    CHECK_FLAGS ALL6, CF|ZF|AF|PF, "lock add [m32], 1: flags"
    CHECK_EQ [m32], 0, "lock add [m32], 1: wraps to 0"
    lock dec dword [m32]
    CHECK_EQ [m32], 0xFFFFFFFF, "lock dec [m32]"
    lock not dword [m32]
    CHECK_EQ [m32], 0, "lock not [m32]"

    call alu_64                 ; ends the test

alu_64:
    ENTER_LONG_MODE
    T {add rax, rbx}, 0x7FFFFFFFFFFFFFFF, 1, 0, 0x8000000000000000, ALL6, OF|SF|AF|PF, "64: add 0x7FFF...+1: OF SF AF PF"
    T {add rax, rbx}, 0xFFFFFFFFFFFFFFFF, 1, 0, 0, ALL6, CF|ZF|AF|PF, "64: add 0xFFFF...+1: CF ZF AF PF"
    T {add eax, ebx}, 0xFFFFFFFFFFFFFFFF, 1, 0, 0, ALL6, CF|ZF|AF|PF, "64: add eax: 32-bit result zero-extends RAX"
    T {add ax, bx}, 0xFFFFFFFFFFFFFFFF, 1, 0, 0xFFFFFFFFFFFF0000, ALL6, CF|ZF|AF|PF, "64: add ax: upper 48 bits kept"
    T {add rax, -1}, 0x100000000, 0, 0, 0xFFFFFFFF, ALL6, CF|PF, "64: add rax, imm8 -1 (sign-extended)"
    T {adc rax, rbx}, 0xFFFFFFFFFFFFFFFF, 0, CF, 0, ALL6, CF|ZF|AF|PF, "64: adc 0xFFFF...+0+CF"
    T {sub rax, rbx}, 0, 1, 0, 0xFFFFFFFFFFFFFFFF, ALL6, CF|SF|AF|PF, "64: sub 0-1"
    T {sbb rax, rbx}, 0x8000000000000000, 0, CF, 0x7FFFFFFFFFFFFFFF, ALL6, OF|AF|PF, "64: sbb 0x8000...-0-CF: OF"
    T {cmp rax, rbx}, 0x8000000000000000, 1, 0, 0x8000000000000000, ALL6, OF|AF|PF, "64: cmp 0x8000...,1: OF"
    T {neg rax}, 0x8000000000000000, 0, 0, 0x8000000000000000, ALL6, CF|OF|SF|PF, "64: neg 0x8000...: CF OF SF"
    T {and rax, -16}, 0x123456789ABCDEF7, 0, CF|OF, 0x123456789ABCDEF0, LOGIC, PF, "64: and rax, imm8 -16 (sign-extended)"
    T {or rax, rbx}, 0, 0x8000000000000000, 0, 0x8000000000000000, LOGIC, SF|PF, "64: or: SF from bit 63"
    T {xor eax, eax}, 0xFFFFFFFFFFFFFFFF, 0, 0, 0, LOGIC, ZF|PF, "64: xor eax, eax clears all of RAX"
    T {dec rax}, 0, 0, CF, 0xFFFFFFFFFFFFFFFF, INCDEC, CF|SF|AF|PF, "64: dec 0: SF AF PF, CF kept"
    T {inc rax}, 0x7FFFFFFFFFFFFFFF, 0, 0, 0x8000000000000000, INCDEC, OF|SF|AF|PF, "64: inc 0x7FFF...: OF"
    T {xadd rax, rbx}, 0x10, 0x20, 0, 0x30, ALL6, PF, "64: xadd rax, rbx"
    ; CMPXCHG16B (CPUID.1:ECX[13])
    mov eax, 1
    cpuid
    test ecx, 1 << 13
    jz .no_cx16
    mov qword [m128], 1
    mov qword [m128 + 8], 2
    mov eax, 1
    mov edx, 2
    mov ebx, 3
    mov ecx, 4
    lock cmpxchg16b [m128]
    CHECK_FLAGS FL_ZF, FL_ZF, "64: cmpxchg16b equal: ZF=1"
    CHECK_EQ [m128 + 8], 4, "64: cmpxchg16b equal: high qword = RCX"
    xor eax, eax
    xor edx, edx
    cmpxchg16b [m128]
    CHECK_FLAGS FL_ZF, 0, "64: cmpxchg16b not equal: ZF=0"
    CHECK_EQ rax, 3, "64: cmpxchg16b not equal: RAX = low qword"
    jmp .cx16_done
.no_cx16:
    PRINTLN "skip: no CMPXCHG16B"
.cx16_done:
    TEST_PASS
