; arith_bits.asm — bit instructions and condition codes (SDM Vol 2):
; BT/BTS/BTR/BTC with register and immediate offsets, on registers and on
; memory (register offsets address a bit string beyond the operand, also
; at negative offsets; immediate offsets are taken modulo the size),
; BSF/BSR (ZF for a zero source), BSWAP, and all 16 conditions of SETcc,
; CMOVcc and Jcc for several flag patterns.  BT* define only CF (ZF is
; kept); BSF/BSR define only ZF.

%define ROM_NAME "arith_bits"
%include "rom.inc"
%include "alu.inc"

section .bss
alignb 16
    resd 4                      ; room below bits for negative offsets
bits_mem:   resd 8
cc_buf:     resb 16

section .text
bits 32

; The condition codes in encoding order (bit i of a mask = condition i).
%define CCS o, no, b, ae, e, ne, be, a, s, ns, p, np, l, ge, le, g

; SETCC_LIST / CMOV_LIST / JCC_LIST CCS: cc_buf[i] = 1 if condition i
; holds for the current flags, using that instruction family.
%macro SETCC_LIST 16
%assign i 0
%rep 16
    set%1 byte [cc_buf + i]
%assign i i + 1
%rotate 1
%endrep
%endmacro

%macro CMOV_LIST 16
%assign i 0
%rep 16
    mov ecx, 0
    cmov%1 ecx, esi
    mov [cc_buf + i], cl
%assign i i + 1
%rotate 1
%endrep
%endmacro

%macro JCC_LIST 16
%assign i 0
%rep 16
    mov byte [cc_buf + i], 1
    j%1 %%taken %+ i
    mov byte [cc_buf + i], 0
%%taken %+ i:
%assign i i + 1
%rotate 1
%endrep
%endmacro

; cc_mask: EAX = bit mask built from cc_buf (bytes 0/1).
cc_mask:
    push ecx
    push edx
    xor eax, eax
    mov ecx, 15
.next:
    movzx edx, byte [cc_buf + ecx]
    shl eax, 1
    or eax, edx
    dec ecx
    jns .next
    pop edx
    pop ecx
    ret

; CHECK_CC flags, expected-mask, "name": SETcc, CMOVcc and Jcc agree.
%macro CHECK_CC 3
    push dword (%1) | 2
    popfd
    SETCC_LIST CCS
    call cc_mask
    CHECK_EQ eax, %2, {"setcc: ", %3}
    mov esi, 1
    push dword (%1) | 2
    popfd
    CMOV_LIST CCS
    call cc_mask
    CHECK_EQ eax, %2, {"cmovcc: ", %3}
    push dword (%1) | 2
    popfd
    JCC_LIST CCS
    call cc_mask
    CHECK_EQ eax, %2, {"jcc: ", %3}
%endmacro

test_main:
    ; ---- BT family on registers ----------------------------------------------
    T {bt eax, ebx}, 0x10, 4, ZF, 0x10, CF|ZF, CF|ZF, "bt eax, 4: CF=1, ZF kept"
    T {bt eax, ebx}, 0x10, 36, 0, 0x10, CF|ZF, CF, "bt eax, 36: offset taken mod 32"
    T {bt eax, ebx}, 0x10, 3, CF, 0x10, CF, 0, "bt eax, 3: CF=0"
    T {bts eax, 0}, 0x10, 0, CF, 0x11, CF, 0, "bts eax, 0: sets the bit, CF = old (0)"
    T {btr eax, 31}, 0x80000001, 0, 0, 1, CF, CF, "btr eax, 31: clears it, CF = old (1)"
    T {btc eax, 3}, 0, 0, CF, 8, CF, 0, "btc eax, 3: toggles, CF = old (0)"
    T {btc eax, ebx}, 8, 35, 0, 0, CF, CF, "btc eax, 35 (mod 32 = 3): toggles back"
    T {bt ax, bx}, 0x0002, 17, 0, 0x0002, CF, CF, "bt ax, 17: offset mod 16 = 1"
    ; ---- BT family on memory ---------------------------------------------------------
    mov dword [bits_mem], 0x00000001
    mov dword [bits_mem + 4], 0x00000008
    mov dword [bits_mem - 4], 0x80000000
    mov ebx, 35
    bt [bits_mem], ebx
    CHECK_FLAGS FL_CF, FL_CF, "bt [m], 35: bit 3 of the next dword"
    bt dword [bits_mem], 35
    CHECK_FLAGS FL_CF, 0, "bt dword [m], imm 35: immediate is mod 32 -> bit 3 of [m]"
    mov ebx, -1
    bt [bits_mem], ebx
    CHECK_FLAGS FL_CF, FL_CF, "bt [m], -1: bit 31 of the dword below"
    mov ebx, 100
    bts [bits_mem], ebx
    CHECK_FLAGS FL_CF, 0, "bts [m], 100: old bit 0"
    CHECK_EQ [bits_mem + 12], 0x10, "bts [m], 100: sets bit 4 of dword 3"
    mov ebx, -32
    btr [bits_mem], ebx
    CHECK_EQ [bits_mem - 4], 0x80000000, "btr [m], -32: bit 0 of the dword below (already 0)"
    mov ebx, -1
    btc [bits_mem], ebx
    CHECK_EQ [bits_mem - 4], 0, "btc [m], -1: toggles bit 31 below"
    mov bx, 16
    lock bts word [bits_mem], bx
    CHECK_EQ [bits_mem], 0x00010001, "lock bts word [m], 16: bit 0 of the next word"
    ; ---- BSF, BSR -------------------------------------------------------------------------
    T {bsf eax, ebx}, 0, 0x00100100, ZF, 8, ZF, 0, "bsf 0x00100100 = 8, ZF=0"
    T {bsr eax, ebx}, 0, 0x00100100, ZF, 20, ZF, 0, "bsr 0x00100100 = 20"
    T {bsf eax, ebx}, 0x1234, 0, 0, 0x1234, ZF, ZF, "bsf 0: ZF=1 (destination left as it was)"
    T {bsr ax, bx}, 0xFFFF0000, 0x8000, 0, 0xFFFF000F, ZF, 0, "bsr ax, 0x8000 = 15"
    ; ---- BSWAP ------------------------------------------------------------------------------
    T {bswap eax}, 0x12345678, 0, ALL6, 0x78563412, ALL6, ALL6, "bswap eax, flags unchanged"
    ; ---- condition codes ------------------------------------------------------------------
    CHECK_CC 0, 0xAAAA, "all flags clear"
    CHECK_CC CF|ZF, 0x6A56, "CF=1 ZF=1"
    CHECK_CC SF|PF, 0x55AA, "SF=1 PF=1 OF=0"
    CHECK_CC SF|OF, 0xA9A9, "SF=1 OF=1"
    CHECK_CC OF, 0x5AA9, "OF=1 only"
    call bits_64                ; ends the test

bits_64:
    ENTER_LONG_MODE
    T {bt rax, rbx}, 0x8000000000000000, 63, 0, 0x8000000000000000, CF, CF, "64: bt rax, 63"
    T {bts rax, rbx}, 0, 64 + 5, 0, 0x20, CF, 0, "64: bts rax, 69: offset mod 64"
    mov qword [bits_mem], 0
    mov qword [bits_mem + 8], 0
    mov rbx, 64 + 5
    bts [bits_mem], rbx
    CHECK_EQ [bits_mem + 8], 0x20, "64: bts [m], 69: bit 5 of the next qword"
    mov rbx, -65
    bts [bits_mem], rbx
    CHECK_EQ [bits_mem - 16], 0x8000000000000000, "64: bts [m], -65: bit 63 two qwords below"
    T {bsr rax, rbx}, 0, 0x8000000000000000, 0, 63, ZF, 0, "64: bsr = 63"
    T {bsf rax, rbx}, 0, 0x0000010000000000, 0, 40, ZF, 0, "64: bsf = 40"
    T {bswap rax}, 0x0102030405060708, 0, 0, 0x0807060504030201, 0, 0, "64: bswap rax"
    ; CMOVcc with a 32-bit destination writes it (zero-extends) even when false
    T {cmovz eax, ebx}, 0xFFFFFFFFFFFFFFFF, 0, 0, 0x00000000FFFFFFFF, 0, 0, "64: cmovz eax (false) still zero-extends RAX"
    T {cmovz rax, rbx}, 0xFFFFFFFFFFFFFFFF, 5, 0, 0xFFFFFFFFFFFFFFFF, 0, 0, "64: cmovz rax (false) leaves RAX"
    T {cmovnz rax, rbx}, 0xFFFFFFFFFFFFFFFF, 5, 0, 5, 0, 0, "64: cmovnz rax (true) moves"
    TEST_PASS
