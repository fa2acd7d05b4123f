; arith_shift.asm — shifts and rotates with counts 0, 1 and > 1 (SDM Vol 2B
; SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR, SHLD, SHRD).  Only defined flags are
; compared: count 0 changes nothing; count 1 defines OF; count > 1 leaves
; OF undefined; AF is always undefined; rotates touch only CF and OF.
; Counts are masked to 5 bits (6 with REX.W), so 32 is a count of 0 and
; 33 a count of 1; RCL/RCR on 8 bits rotate through 9 bits.
; Expected values are hand-computed and were confirmed on QEMU.

%define ROM_NAME "arith_shift"
%include "rom.inc"
%include "alu.inc"

NOTCO   equ FL_PF | FL_AF | FL_ZF | FL_SF   ; flags a rotate must keep

section .text
bits 32
test_main:
    ; ---- SHL / SHR / SAR, 32-bit ------------------------------------------------
    T {shl eax, 1}, 0x80000001, 0, 0, 0x00000002, SHIFT1, CF|OF, "shl 1: CF = old bit 31, OF = MSB ^ CF"
    T {shl eax, 1}, 0x40000000, 0, 0, 0x80000000, SHIFT1, OF|SF|PF, "shl 1 into the sign bit: OF SF"
    T {shl eax, 4}, 0x12345678, 0, 0, 0x23456780, SHIFTN, CF, "shl 4: CF = old bit 28"
    TC {shl eax, cl}, 0x12345678, 0, ALL6, 0x12345678, ALL6, ALL6, "shl count 0: nothing changes (flags all set)"
    TC {shl eax, cl}, 0x12345678, 0, 0, 0x12345678, ALL6, 0, "shl count 0: nothing changes (flags all clear)"
    TC {shl eax, cl}, 0x12345678, 32, ALL6, 0x12345678, ALL6, ALL6, "shl count 32 is masked to 0"
    TC {shl eax, cl}, 0x80000001, 33, 0, 0x00000002, SHIFT1, CF|OF, "shl count 33 is masked to 1"
    T {shr eax, 1}, 0x80000001, 0, 0, 0x40000000, SHIFT1, CF|OF|PF, "shr 1: CF = old bit 0, OF = old MSB"
    T {shr eax, 4}, 0x1234567F, 0, 0, 0x01234567, SHIFTN, CF, "shr 4: CF = old bit 3"
    T {sar eax, 1}, 0x80000001, 0, OF, 0xC0000000, SHIFT1, CF|SF|PF, "sar 1: sign fills, OF = 0"
    T {sar eax, 31}, 0x80000000, 0, 0, 0xFFFFFFFF, SHIFTN, SF|PF, "sar 31: all ones, CF = old bit 30"
    TC {sar eax, cl}, 0x87654321, 40, 0, 0xFF876543, SHIFTN, SF, "sar count 40 (masked to 8)"
    ; ---- 16- and 8-bit ---------------------------------------------------------------
    T {shl ax, 1}, 0xDEAD8000, 0, 0, 0xDEAD0000, SHIFT1, CF|OF|ZF|PF, "shl ax 1: 0x8000 -> 0, upper EAX kept"
    T {sar ax, 15}, 0x8000, 0, 0, 0xFFFF, SHIFTN, SF|PF, "sar ax 15"
    T {shr al, 1}, 0x81, 0, 0, 0x40, SHIFT1, CF|OF, "shr al 1: OF = old MSB"
    T {sar al, 7}, 0x12345680, 0, 0, 0x123456FF, SHIFTN, SF|PF, "sar al 7, upper EAX kept"
    ; ---- ROL / ROR ----------------------------------------------------------------------
    T {rol eax, 1}, 0x80000001, 0, 0, 0x00000003, ROT1, CF|OF, "rol 1: CF = new bit 0, OF = MSB ^ CF"
    T {rol eax, 1}, 0x80000001, 0, NOTCO, 0x00000003, ALL6, NOTCO|CF|OF, "rol keeps SF ZF AF PF (set)"
    T {rol eax, 1}, 0x00000001, 0, ALL6, 0x00000002, ALL6, NOTCO, "rol keeps SF ZF AF PF; clears CF OF"
    T {ror eax, 1}, 0x00000001, 0, 0, 0x80000000, ROT1, CF|OF, "ror 1: CF = new MSB, OF = MSB ^ next"
    T {ror eax, 4}, 0x12345678, 0, 0, 0x81234567, ROTN, CF, "ror 4: CF = new MSB"
    T {rol eax, 8}, 0x12345678, 0, CF, 0x34567812, ROTN, 0, "rol 8: CF = new bit 0"
    T {rol al, 4}, 0xAB, 0, CF, 0xBA, ROTN, 0, "rol al 4"
    TC {rol eax, cl}, 0x12345678, 0, ALL6, 0x12345678, ALL6, ALL6, "rol count 0: nothing changes"
    ; ---- RCL / RCR ------------------------------------------------------------------------
    T {rcl eax, 1}, 0x80000000, 0, CF, 0x00000001, ROT1, CF|OF, "rcl 1, CF=1: CF in at bit 0, old MSB to CF"
    T {rcl eax, 1}, 0x40000000, 0, 0, 0x80000000, ROT1, OF, "rcl 1, CF=0: OF = MSB ^ CF"
    T {rcr eax, 1}, 0x00000001, 0, CF, 0x80000000, ROT1, CF|OF, "rcr 1, CF=1"
    T {rcr eax, 4}, 0x00000010, 0, CF, 0x10000001, ROTN, 0, "rcr 4 through a 33-bit ring"
    TC {rcl al, cl}, 0x81, 9, 0, 0x81, ROTN, 0, "rcl al by 9: 9-bit ring, back where it was"
    TC {rcl al, cl}, 0x81, 1, 0, 0x02, ROT1, CF|OF, "rcl al by 1"
    TC {rcr ax, cl}, 0x0001, 17, CF, 0x0001, ROTN, CF, "rcr ax by 17: 17-bit ring, unchanged"
    ; ---- SHLD / SHRD --------------------------------------------------------------------------
    T {shld eax, ebx, 4}, 0x12345678, 0x9ABCDEF0, 0, 0x23456789, SHIFTN, CF, "shld 4: bits from EBX's top"
    T {shrd eax, ebx, 4}, 0x12345678, 0x9ABCDEF0, 0, 0x01234567, SHIFTN, CF, "shrd 4: bits from EBX's bottom"
    T {shrd eax, ebx, 1}, 1, 1, 0, 0x80000000, SHIFT1, CF|OF|SF|PF, "shrd 1: OF on sign change"
    T {shld ax, bx, 4}, 0x1234, 0xABCD, 0, 0x234A, SHIFTN, CF, "shld ax, bx, 4"
    TC {shld eax, ebx, cl}, 0x12345678, 0, ALL6, 0x12345678, ALL6, ALL6, "shld count 0: nothing changes"

    call shifts_64              ; ends the test

shifts_64:
    ENTER_LONG_MODE
    T {shl rax, 63}, 1, 0, 0, 0x8000000000000000, SHIFTN, SF|PF, "64: shl 63"
    TC {shl rax, cl}, 0x123, 64, ALL6, 0x123, ALL6, ALL6, "64: shl count 64 is masked to 0"
    TC {shl rax, cl}, 0x8000000000000001, 65, 0, 2, SHIFT1, CF|OF, "64: shl count 65 is masked to 1"
    TC {shl eax, cl}, 0x80000001, 33, 0, 2, SHIFT1, CF|OF, "64: shl eax count 33 (5-bit mask for 32-bit)"
    T {shr rax, 1}, 0x8000000000000001, 0, 0, 0x4000000000000000, SHIFT1, CF|OF|PF, "64: shr 1"
    T {sar rax, 32}, 0x8000000012345678, 0, 0, 0xFFFFFFFF80000000, SHIFTN, SF|PF, "64: sar 32"
    T {rol rax, 1}, 0x8000000000000000, 0, 0, 1, ROT1, CF|OF, "64: rol 1"
    T {ror rax, 4}, 0x123456789ABCDEF0, 0, CF, 0x0123456789ABCDEF, ROTN, 0, "64: ror 4"
    T {shld rax, rbx, 8}, 0x1122334455667788, 0xAABBCCDDEEFF0099, 0, 0x22334455667788AA, SHIFTN, CF|PF, "64: shld 8"
    T {shl eax, 1}, 0xFFFFFFFF80000000, 0, 0, 0, SHIFT1, CF|OF|ZF|PF, "64: shl eax 1 zero-extends into RAX"
    TEST_PASS
