; arith_misc.asm — the rest of the integer basics (SDM Vol 2):
;   CBW CWDE CDQE CWD CDQ CQO, MOVSX MOVZX MOVSXD;
;   LEA with every 32-bit form (base, index*scale, disp8/disp32, ESP and
;     EBP bases, no base), 16-bit forms ([BX+SI] ... [BP+disp]) and their
;     wrap-around, 64-bit forms (RIP-relative, R12/R13 bases, address-size
;     and operand-size truncation);
;   ENTER (nesting levels 0, 1, 2) and LEAVE, in 32- and 64-bit code;
;   PUSH/POP of segment registers (operand sizes 16/32/64);
;   PUSHF/POPF (which bits are writable at CPL 0), LAHF/SAHF;
;   LOOP/LOOPE/LOOPNE/JECXZ/JCXZ/JRCXZ with 16/32/64-bit counters;
;   XCHG (and XCHG EAX,EAX vs NOP in 64-bit mode), XLAT;
;   DAA DAS AAA AAS AAM AAD (32-bit only), AAM 0 -> #DE.

%define ROM_NAME "arith_misc"
%include "rom.inc"
%include "alu.inc"

section .data
xlat_table: db "0123456789ABCDEF"

section .bss
alignb 16
frame_area: resd 16
enter_ebp:  resd 1
enter_esp:  resd 1

section .text
bits 32
test_main:
    call conversions
    call lea_forms
    call enter_leave
    call segment_push_pop
    call flags_push_pop
    call loops
    call exchange
    call bcd
    call misc_64                ; ends the test

; ---- sign/zero extension ------------------------------------------------------------
conversions:
    T {cbw}, 0x12345680, 0, 0, 0x1234FF80, 0, 0, "cbw: AL 0x80 -> AX 0xFF80, upper EAX kept"
    T {cwde}, 0x12348000, 0, 0, 0xFFFF8000, 0, 0, "cwde: AX 0x8000 -> EAX 0xFFFF8000"
    mov edx, 0xABCD0000
    T {cwd}, 0x8000, 0, 0, 0x8000, 0, 0, "cwd: AX kept"
    CHECK_EQ edx, 0xABCDFFFF, "cwd: DX = 0xFFFF, upper EDX kept"
    T {cdq}, 0x80000000, 0, 0, 0x80000000, 0, 0, "cdq: EAX kept"
    CHECK_EQ edx, 0xFFFFFFFF, "cdq: EDX = sign of EAX"
    T {cdq}, 0x7FFFFFFF, 0, 0, 0x7FFFFFFF, 0, 0, "cdq positive"
    CHECK_EQ edx, 0, "cdq positive: EDX = 0"
    T {movsx eax, bl}, 0, 0x80, 0, 0xFFFFFF80, 0, 0, "movsx eax, bl"
    T {movzx eax, bl}, 0xFFFFFFFF, 0x80, 0, 0x80, 0, 0, "movzx eax, bl"
    T {movsx eax, bx}, 0, 0x8000, 0, 0xFFFF8000, 0, 0, "movsx eax, bx"
    T {movzx eax, bx}, 0xFFFFFFFF, 0xF8000, 0, 0x8000, 0, 0, "movzx eax, bx"
    T {movsx ax, bl}, 0x12345678, 0xFE, 0, 0x1234FFFE, 0, 0, "movsx ax, bl: upper EAX kept"
    ret

; ---- LEA ------------------------------------------------------------------------------------
lea_forms:
    mov ebx, 0x1000
    mov esi, 0x20
    mov ebp, 0x3000
    lea eax, [ebx]
    CHECK_EQ eax, 0x1000, "lea [ebx]"
    lea eax, [ebx + 0x7F]
    CHECK_EQ eax, 0x107F, "lea [ebx + disp8]"
    lea eax, [ebx - 0x80]
    CHECK_EQ eax, 0x0F80, "lea [ebx - 0x80] (negative disp8)"
    lea eax, [ebx + 0x12345]
    CHECK_EQ eax, 0x13345, "lea [ebx + disp32]"
    lea eax, [ebx + esi]
    CHECK_EQ eax, 0x1020, "lea [ebx + esi]"
    lea eax, [ebx + esi * 2 + 5]
    CHECK_EQ eax, 0x1045, "lea [ebx + esi*2 + 5]"
    lea eax, [ebx + esi * 4 - 1]
    CHECK_EQ eax, 0x107F, "lea [ebx + esi*4 - 1]"
    lea eax, [ebx + esi * 8 + 0x10000]
    CHECK_EQ eax, 0x11100, "lea [ebx + esi*8 + disp32]"
    lea eax, [esi * 4 + 0x100]
    CHECK_EQ eax, 0x180, "lea [esi*4 + disp32] (no base)"
    lea eax, [ebp]
    CHECK_EQ eax, 0x3000, "lea [ebp] (encoded as [ebp + 0])"
    lea eax, [ebp + esi]
    CHECK_EQ eax, 0x3020, "lea [ebp + esi]"
    mov ecx, esp
    lea eax, [esp + 8]
    add ecx, 8
    CHECK_EQ eax, ecx, "lea [esp + 8] (SIB with ESP base)"
    lea eax, [0x12345678]
    CHECK_EQ eax, 0x12345678, "lea [disp32]"
    mov ecx, 0xFFFFFFF0
    lea eax, [ecx + 0x20]
    CHECK_EQ eax, 0x10, "lea wraps at 32 bits"
    lea ax, [ebx + esi]
    movzx eax, ax
    CHECK_EQ eax, 0x1020, "lea ax, [...]: 16-bit operand size"
    ; 16-bit addressing forms
    mov ebx, 0xFFFF1000
    mov esi, 0xFFFF0020
    mov edi, 0xFFFF0300
    mov ebp, 0xFFFF4000
    mov eax, 0xFFFFFFFF
    a16 lea eax, [bx + si]
    CHECK_EQ eax, 0x1020, "lea [bx+si] (a16): 16-bit address, zero-extended"
    a16 lea eax, [bx + di + 0x10]
    CHECK_EQ eax, 0x1310, "lea [bx+di+disp8] (a16)"
    a16 lea eax, [bp + si]
    CHECK_EQ eax, 0x4020, "lea [bp+si] (a16)"
    a16 lea eax, [bp + di - 1]
    CHECK_EQ eax, 0x42FF, "lea [bp+di-1] (a16)"
    a16 lea eax, [si + 0x1234]
    CHECK_EQ eax, 0x1254, "lea [si+disp16] (a16)"
    a16 lea eax, [di]
    CHECK_EQ eax, 0x0300, "lea [di] (a16)"
    a16 lea eax, [bp]
    CHECK_EQ eax, 0x4000, "lea [bp] (a16, encoded as [bp+0])"
    a16 lea eax, [bx]
    CHECK_EQ eax, 0x1000, "lea [bx] (a16)"
    a16 lea eax, [0x8765]
    CHECK_EQ eax, 0x8765, "lea [disp16] (a16)"
    mov bx, 0xFFFF
    mov si, 2
    a16 lea eax, [bx + si]
    CHECK_EQ eax, 1, "lea [bx+si] (a16) wraps at 64 KiB"
    ret

; ---- ENTER / LEAVE ----------------------------------------------------------------------
enter_leave:
    push ebp
    mov [enter_esp], esp
    ; level 0
    mov ebp, 0x11111111
    enter 16, 0
    mov eax, [enter_esp]
    sub eax, 4
    CHECK_EQ ebp, eax, "enter 16, 0: EBP = ESP after pushing the old EBP"
    mov ecx, esp
    sub eax, 16
    CHECK_EQ ecx, eax, "enter 16, 0: ESP = EBP - 16"
    mov eax, [ebp]
    CHECK_EQ eax, 0x11111111, "enter 16, 0: old EBP saved at [EBP]"
    leave
    CHECK_EQ ebp, 0x11111111, "leave: EBP restored"
    mov ecx, esp
    CHECK_EQ ecx, [enter_esp], "leave: ESP restored"
    ; level 2: copies one outer frame pointer from [old EBP - 4]
    mov dword [frame_area + 32 - 4], 0xAAAA0001
    mov ebp, frame_area + 32
    enter 8, 2
    mov eax, [enter_esp]
    sub eax, 4                  ; frametemp
    CHECK_EQ ebp, eax, "enter 8, 2: EBP = frametemp"
    mov ecx, [ebp]
    CHECK_EQ ecx, frame_area + 32, "enter 8, 2: [EBP] = old EBP"
    mov ecx, [ebp - 4]
    CHECK_EQ ecx, 0xAAAA0001, "enter 8, 2: [EBP-4] = outer frame pointer copied from [oldEBP-4]"
    mov ecx, [ebp - 8]
    CHECK_EQ ecx, eax, "enter 8, 2: [EBP-8] = frametemp"
    mov ecx, esp
    sub eax, 8 + 8
    CHECK_EQ ecx, eax, "enter 8, 2: ESP = frametemp - 8 - 8"
    leave
    CHECK_EQ ebp, frame_area + 32, "leave after enter 8, 2"
    ; level 1
    mov ebp, 0x22222222
    enter 0, 1
    mov eax, [enter_esp]
    sub eax, 4
    mov ecx, [ebp - 4]
    CHECK_EQ ecx, eax, "enter 0, 1: pushes frametemp"
    leave
    pop ebp
    ret

; ---- segment registers on the stack ---------------------------------------------------------
segment_push_pop:
    mov ebx, esp
    push fs
    mov ecx, ebx
    sub ecx, esp
    CHECK_EQ ecx, 4, "push fs (32-bit): ESP -= 4"
    movzx eax, word [esp]
    CHECK_EQ eax, SEL_KDATA, "push fs: selector in the low word"
    mov ax, SEL_UDATA
    mov fs, ax
    pop fs
    mov ax, fs
    movzx eax, ax
    CHECK_EQ eax, SEL_KDATA, "pop fs: selector restored"
    mov ecx, ebx
    sub ecx, esp
    CHECK_EQ ecx, 0, "pop fs: ESP += 4"
    o16 push gs
    mov ecx, ebx
    sub ecx, esp
    CHECK_EQ ecx, 2, "o16 push gs: ESP -= 2"
    o16 pop gs
    push cs
    movzx eax, word [esp]
    CHECK_EQ eax, SEL_KCODE32, "push cs"
    add esp, 4
    push ss
    pop ds
    mov ax, ds
    movzx eax, ax
    CHECK_EQ eax, SEL_KDATA, "push ss / pop ds"
    push dword SEL_BEYOND_POP
    TRY pop es
    CHECK_FAULT VEC_GP, SEL_BEYOND_POP, "pop es with a selector beyond the GDT -> #GP(sel)"
    add esp, 4
    ret
SEL_BEYOND_POP equ GDT_ENTRIES * 8

; ---- EFLAGS ----------------------------------------------------------------------------------
flags_push_pop:
    ; at CPL 0 POPFD writes CF PF AF ZF SF TF IF DF OF IOPL NT AC ID;
    ; VM, VIF, VIP are kept (0), RF is cleared, reserved bits read as 0/1.
    pushfd
    push dword 0xFFFFFFFF & ~(FL_TF | FL_IF)
    popfd
    pushfd
    pop eax
    popfd
    CHECK_EQ eax, 0x00247CD7, "popfd 0xFFFFFCFF at CPL 0 -> 0x00247CD7"
    pushfd
    mov ebx, [esp]
    push dword 0x0002
    popfd
    o16 push word 0x08C5         ; CF PF ZF SF OF (low 16 bits only)
    o16 popf
    pushfd
    pop eax
    mov [esp], ebx
    popfd
    CHECK_EQ eax, 0x08C7, "o16 popf: only the low 16 bits"
    ; LAHF / SAHF: SF ZF AF PF CF <-> AH
    T {sahf}, 0xD500, 0, 0, 0xD500, ALL6, SF|ZF|AF|PF|CF, "sahf AH=0xD5 -> SF ZF AF PF CF"
    T {sahf}, 0x0000, 0, OF, 0, ALL6, OF, "sahf AH=0 clears SF ZF AF PF CF, keeps OF"
    T {lahf}, 0x12345678, 0, SF|ZF|AF|PF|CF|OF, 0x1234D778, 0, 0, "lahf -> AH = SF ZF 0 AF 0 PF 1 CF"
    T {lahf}, 0, 0, 0, 0x0200, 0, 0, "lahf, flags clear -> AH = 0x02"
    ret

; ---- loops -------------------------------------------------------------------------------------
loops:
    xor eax, eax
    mov ecx, 3
.l1:
    inc eax
    loop .l1
    CHECK_EQ eax, 3, "loop: 3 iterations"
    CHECK_EQ ecx, 0, "loop: ECX = 0"
    ; LOOP does not touch flags
    mov ecx, 2
    stc
.l2:
    loop .l2
    CHECK_FLAGS FL_CF, FL_CF, "loop keeps the flags"
    ; LOOPE: stops when ZF=0
    mov esi, .data_e
    xor eax, eax
    mov ecx, 5
.l3:
    inc eax
    cmp byte [esi + eax - 1], 1
    loope .l3
    CHECK_EQ eax, 3, "loope: stops at the first non-match (3rd element)"
    CHECK_EQ ecx, 2, "loope: ECX = 2 left"
    ; LOOPNE: stops when ZF=1
    xor eax, eax
    mov ecx, 5
.l4:
    inc eax
    cmp byte [esi + eax - 1], 0
    loopne .l4
    CHECK_EQ eax, 3, "loopne: stops at the first 0 (3rd element)"
    ; JECXZ / JCXZ
    mov ecx, 0x10000
    mov eax, 1
    jcxz .cx_zero
    mov eax, 2
.cx_zero:
    CHECK_EQ eax, 1, "jcxz tests CX only (ECX = 0x10000)"
    mov eax, 1
    jecxz .ecx_zero
    mov eax, 2
.ecx_zero:
    CHECK_EQ eax, 2, "jecxz not taken for ECX = 0x10000"
    ; LOOP with CX (a16): upper ECX kept
    mov ecx, 0x00050002
    xor eax, eax
.l5:
    inc eax
    loop .l5, cx
    CHECK_EQ eax, 2, "loop with CX (a16): counts CX only"
    CHECK_EQ ecx, 0x00050000, "loop with CX (a16): ECX[31:16] kept"
    ret
.data_e: db 1, 1, 0, 1, 1

; ---- XCHG, XLAT -------------------------------------------------------------------------
exchange:
    T {xchg eax, ebx}, 1, 2, 0, 2, 0, 0, "xchg eax, ebx"
    CHECK_EQ ebx, 1, "xchg eax, ebx: EBX"
    mov dword [frame_area], 0x55
    mov eax, 0x66
    xchg [frame_area], eax
    CHECK_EQ eax, 0x55, "xchg [m], eax: register"
    CHECK_EQ [frame_area], 0x66, "xchg [m], eax: memory"
    T {xchg al, ah}, 0x12343456, 0, 0, 0x12345634, 0, 0, "xchg al, ah"
    mov ebx, xlat_table
    mov eax, 0xFFFFFF0B
    xlatb
    CHECK_EQ eax, 0xFFFFFF42, "xlatb: AL = [EBX + AL] ('B')"
    ret

; ---- BCD adjustments (invalid in 64-bit mode) ----------------------------------------------
BCDF    equ FL_CF | FL_AF | FL_ZF | FL_SF | FL_PF
bcd:
    T {add al, bl}, 0x19, 0x28, 0, 0x41, FL_AF, FL_AF, "add 0x19+0x28 = 0x41 with AF"
    daa
    CHECK_RF eax, 0x47, BCDF, AF|PF, "daa: 19 + 28 = 47 (BCD)"
    T {add al, bl}, 0x99, 0x01, 0, 0x9A, 0, 0, "add 0x99+0x01"
    daa
    CHECK_RF eax, 0x00, BCDF, CF|AF|ZF|PF, "daa: 99 + 1 = 100 -> 00, CF=1"
    T {sub al, bl}, 0x47, 0x28, 0, 0x1F, 0, 0, "sub 0x47-0x28"
    das
    CHECK_RF eax, 0x19, BCDF, AF, "das: 47 - 28 = 19 (BCD)"
    T {add al, bl}, 0x08, 0x06, 0, 0x0E, 0, 0, "add 8+6"
    aaa
    CHECK_RF eax, 0x0104, CF|AF, CF|AF, "aaa: 8 + 6 = 14 -> AH=1, AL=4"
    T {sub al, bl}, 0x0205, 0x08, 0, 0x02FD, 0, 0, "sub 5-8 (AH=2)"
    aas
    CHECK_RF eax, 0x0107, CF|AF, CF|AF, "aas: 25 - 8 = 17 -> AH=1, AL=7"
    T {aam}, 0x4F, 0, 0, 0x0709, SF|ZF|PF, PF, "aam: 79 -> AH=7, AL=9"
    T {aad}, 0x0709, 0, 0, 0x004F, SF|ZF|PF, 0, "aad: AH=7, AL=9 -> 79"
    T {aam 16}, 0x4F, 0, 0, 0x040F, SF|ZF|PF, PF, "aam 16: 0x4F -> AH=4, AL=15"
    TRY aam 0
    CHECK_FAULT VEC_DE, NOERR, "aam 0 -> #DE"
    ret

; ===========================================================================================
bits 64
misc_64:
    ENTER_LONG_MODE
    ; extensions
    T {cdqe}, 0x1234567880000000, 0, 0, 0xFFFFFFFF80000000, 0, 0, "64: cdqe"
    T {cqo}, 0x8000000000000000, 0, 0, 0x8000000000000000, 0, 0, "64: cqo: RAX kept"
    CHECK_EQ rdx, 0xFFFFFFFFFFFFFFFF, "64: cqo: RDX = sign of RAX"
    T {movsxd rax, ebx}, 0, 0xFFFFFFFF80000000, 0, 0xFFFFFFFF80000000, 0, 0, "64: movsxd rax, ebx"
    T {movsxd rax, ebx}, 0, 0x000000017FFFFFFF, 0, 0x7FFFFFFF, 0, 0, "64: movsxd positive"
    T {movzx rax, bl}, 0xFFFFFFFFFFFFFFFF, 0x80, 0, 0x80, 0, 0, "64: movzx rax, bl"
    T {movsx rax, bx}, 0, 0x8000, 0, 0xFFFFFFFFFFFF8000, 0, 0, "64: movsx rax, bx"
    T {mov eax, ebx}, 0xFFFFFFFFFFFFFFFF, 0x12345678, 0, 0x12345678, 0, 0, "64: mov eax, ebx zero-extends"
    T {mov ax, bx}, 0xFFFFFFFFFFFFFFFF, 0x1234, 0, 0xFFFFFFFFFFFF1234, 0, 0, "64: mov ax, bx keeps the upper bits"
    ; LEA
    lea rax, [rel .here]
.here:
    mov rcx, .here
    CHECK_EQ rax, rcx, "64: lea [rip + disp32]"
    mov rbx, 0x100000000
    mov rcx, 0x10
    lea rax, [rbx + rcx * 8 + 0x1000]
    CHECK_EQ rax, 0x100001080, "64: lea [rbx + rcx*8 + disp32]"
    mov r12, 0x5000
    lea rax, [r12]
    CHECK_EQ rax, 0x5000, "64: lea [r12] (needs a SIB byte)"
    mov r13, 0x6000
    lea rax, [r13]
    CHECK_EQ rax, 0x6000, "64: lea [r13] (needs disp8 0)"
    mov rbx, 0xFFFFFFFF
    mov rcx, 0x2
    lea rax, [ebx + ecx]
    CHECK_EQ rax, 1, "64: lea with a32: address wraps at 32 bits, zero-extended"
    mov rbx, 0x1FFFFFFFF
    lea eax, [rbx + 2]
    CHECK_EQ rax, 1, "64: lea eax: 32-bit operand truncates"
    ; ENTER / LEAVE in 64-bit mode
    mov rbx, rsp
    mov rbp, 0x3333333333333333
    enter 32, 1
    lea rax, [rbx - 8]
    CHECK_EQ rbp, rax, "64: enter 32, 1: RBP = frametemp"
    mov rcx, [rbp - 8]
    CHECK_EQ rcx, rax, "64: enter 32, 1: [RBP-8] = frametemp"
    mov rcx, rsp
    sub rax, 8 + 32
    CHECK_EQ rcx, rax, "64: enter 32, 1: RSP = frametemp - 8 - 32"
    leave
    mov rcx, 0x3333333333333333
    CHECK_EQ rbp, rcx, "64: leave: RBP restored"
    mov rcx, rsp
    CHECK_EQ rcx, rbx, "64: leave: RSP restored"
    ; PUSH/POP FS in 64-bit mode: 8 bytes
    mov rbx, rsp
    push fs
    mov rcx, rbx
    sub rcx, rsp
    CHECK_EQ rcx, 8, "64: push fs: RSP -= 8"
    pop fs
    ; JRCXZ, LOOP with RCX and with ECX
    mov rcx, 0x100000000
    mov eax, 1
    jrcxz .z1
    mov eax, 2
.z1:
    CHECK_EQ rax, 2, "64: jrcxz not taken for RCX = 2^32"
    mov eax, 1
    jecxz .z2
    mov eax, 2
.z2:
    CHECK_EQ rax, 1, "64: jecxz (a32) taken for ECX = 0"
    mov rcx, 0x100000002
    xor eax, eax
.l1:
    inc eax
    loop .l1, ecx
    CHECK_EQ rax, 2, "64: loop with ECX (a32): 2 iterations"
    CHECK_EQ rcx, 0, "64: loop with ECX: RCX upper half cleared"
    ; XCHG EAX, EAX (87 C0) zero-extends; NOP (90) does not
    mov rax, 0xFFFFFFFFFFFFFFFF
    db 0x90
    CHECK_EQ rax, 0xFFFFFFFFFFFFFFFF, "64: nop (90) is not xchg eax, eax"
    db 0x87, 0xC0
    CHECK_EQ rax, 0x00000000FFFFFFFF, "64: xchg eax, eax (87 C0) zero-extends RAX"
    ; BCD opcodes are invalid in 64-bit mode
    TRY db 0x27
    CHECK_FAULT VEC_UD, NOERR, "64: daa (27) -> #UD"
    TEST_PASS
