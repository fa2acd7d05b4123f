; mode_switch.asm — the operating modes and the transitions between them
; (SDM Vol 3A chapter 9 "Processor Management and Initialization", 9.8-9.9,
; and 2.2 "Modes of Operation").
;
;   protected mode -> real mode (via a 16-bit PM segment) -> back, twice;
;   real-mode segment arithmetic, 16-bit offset wrap, IVT interrupts, far
;   calls, 32-bit operand/address overrides, "unreal" FS;
;   protected -> long mode (PAE, 4-level paging, EFER.LME, CR0.PG);
;   64-bit mode, 32-bit compatibility mode, 16-bit compatibility mode;
;   the same bytes decoding differently in 64-bit and compatibility mode;
;   long mode -> protected mode, and into long mode again.
;
; Not tested: the #GP(0) the SDM requires for illegal transitions (CR0.PG=1
; with EFER.LME=1 but CR4.PAE=0; clearing CR0.PG in 64-bit mode; clearing
; CR4.PAE in long mode): QEMU 7.2 TCG silently ignores or performs them, so
; it cannot serve as the oracle there.

%define ROM_NAME "mode_switch"
%include "rom.inc"

SCRATCH_SEG     equ 0x0100          ; real-mode scratch at linear 0x1000

section .data
unreal_marker:  dd 0xC0DEF00D       ; above 1 MiB: read through unreal FS

section .text
bits 32
test_main:
    mov eax, cr0
    and eax, CR0_PE | CR0_PG
    CHECK_EQ eax, CR0_PE, "start: protected mode, paging off"

    ; ---- real mode and back -------------------------------------------------
    mov dword [0x1000], 0
    mov eax, RMOFF(rm_tests)
    call rm_call
    CHECK_EQ [RMADDR(rm_calls)], 1, "real mode: routine ran once"
    movzx eax, word [RMADDR(rm_msw)]
    and eax, CR0_PE
    CHECK_EQ eax, 0, "real mode: SMSW shows PE=0"
    movzx eax, word [RMADDR(rm_segsum)]
    CHECK_EQ eax, 0xBEEF, "real mode: 1234:5678 and 179B:0008 are the same byte (seg*16+off)"
    CHECK_EQ [0x179B8], 0xBEEF, "real mode: 1234:5678 is linear 0x179B8"
    movzx eax, word [0x1000]
    CHECK_EQ eax, 0xA55A, "real mode: [bx+1] with bx=0xFFFF wraps to offset 0"
    movzx eax, word [RMADDR(rm_int_cs)]
    CHECK_EQ eax, RM_SEG, "real mode: INT pushed CS"
    movzx eax, word [RMADDR(rm_int_ip)]
    CHECK_EQ eax, RMOFF(rm_after_int), "real mode: INT pushed IP of the next instruction"
    movzx eax, word [RMADDR(rm_int_flags)]
    and eax, FL_CF
    CHECK_EQ eax, FL_CF, "real mode: INT pushed FLAGS (CF=1)"
    movzx eax, word [RMADDR(rm_int_ran)]
    CHECK_EQ eax, 0x6060, "real mode: IVT vector 0x60 handler ran and IRET returned"
    movzx eax, word [RMADDR(rm_far_cs)]
    CHECK_EQ eax, RM_SEG, "real mode: far call pushed CS"
    CHECK_EQ [RMADDR(rm_far_ret)], 0x2468, "real mode: far call and RETF"
    CHECK_EQ [RMADDR(rm_o32)], 0x23456789, "real mode: 32-bit operand override (0x12345678 + 0x11111111)"
    CHECK_EQ [RMADDR(rm_unreal)], 0xC0DEF00D, "real mode: FS keeps its 4 GiB limit ('unreal' read above 1 MiB)"
    CHECK_EQ [RMADDR(rm_a32)], 0x600DCAFE, "real mode: 32-bit address override [ebx+ecx*4]"
    ; back in protected mode: exceptions still go through our IDT
    TRY ud2
    CHECK_FAULT VEC_UD, NOERR, "back in protected mode: #UD through IDT32"

    ; ---- 32-bit PM: mode_probe decodes 48 as DEC EAX ----------------------
    mov eax, 10
    call mode_probe
    CHECK_EQ eax, 8, "protected mode: bytes 48 FF C8 are two DEC EAX"

    ; ---- long mode ---------------------------------------------------------
    call enter_and_check_long_mode
bits 64
    call compat_mode_tests

    ; ---- out of long mode -----------------------------------------------------
    LEAVE_LONG_MODE
    mov ecx, MSR_EFER
    rdmsr
    and eax, EFER_LMA | EFER_LME
    CHECK_EQ eax, 0, "left long mode: EFER.LMA=0, LME=0"
    mov eax, cr0
    and eax, CR0_PG
    CHECK_EQ eax, 0, "left long mode: CR0.PG=0"
    mov eax, 10
    call mode_probe
    CHECK_EQ eax, 8, "left long mode: 48 is DEC EAX again"
    TRY ud2
    CHECK_FAULT VEC_UD, NOERR, "left long mode: #UD through IDT32"

    ; real mode once more, then long mode once more
    mov eax, RMOFF(rm_tests)
    call rm_call
    CHECK_EQ [RMADDR(rm_calls)], 2, "real mode again after long mode"
    call enter_and_check_long_mode
bits 64
    TEST_PASS
bits 32

; mode_probe: in 64-bit mode 48 FF C8 is one DEC RAX; in 32-bit code
; (protected or compatibility mode) it is DEC EAX (48) then DEC EAX (FF C8):
; 0x48 is a REX prefix only in 64-bit mode.
mode_probe:
    db 0x48, 0xFF, 0xC8
    ret                         ; C3: near return in every mode

; Returns in 64-bit mode (the 32-bit return address is popped first).
enter_and_check_long_mode:
    pop dword [lm_ret]
    ENTER_LONG_MODE
    mov ecx, MSR_EFER
    rdmsr
    and eax, EFER_LMA | EFER_LME
    CHECK_EQ rax, EFER_LMA | EFER_LME, "long mode: EFER.LMA=1, LME=1"
    mov rax, cr4
    and eax, CR4_PAE
    CHECK_EQ rax, CR4_PAE, "long mode: CR4.PAE=1"
    mov rax, 0x123456789ABCDEF0
    mov rbx, rax
    shr rbx, 32
    CHECK_EQ rbx, 0x12345678, "64-bit mode: 64-bit registers"
    mov rax, -1
    mov eax, 1
    CHECK_EQ rax, 1, "64-bit mode: writing EAX zero-extends into RAX"
    mov eax, 10
    call mode_probe
    CHECK_EQ rax, 9, "64-bit mode: 48 FF C8 is one DEC RAX (REX.W)"
    mov rbx, rsp
    push rax
    sub rbx, rsp
    pop rax
    CHECK_EQ rbx, 8, "64-bit mode: PUSH is 8 bytes"
    TRY ud2
    CHECK_FAULT VEC_UD, NOERR, "64-bit mode: #UD through IDT64"
    mov eax, [lm_ret]
    jmp rax

section .bss
compat_tests_ret: resq 1
lm_ret:         resd 1
compat_push:    resd 1
compat_efer:    resd 1
compat_probe:   resd 1
section .text

bits 64

; 64-bit -> 32-bit compatibility mode -> 16-bit compatibility mode -> 64-bit.
compat_mode_tests:
    pop qword [compat_tests_ret]
    push qword SEL_KCODE32
    push qword .compat32
    o64 retf
bits 32
.compat32:
    mov ecx, MSR_EFER
    rdmsr
    mov [compat_efer], eax
    mov eax, 10
    call mode_probe
    mov [compat_probe], eax
    mov ebx, esp
    push eax
    sub ebx, esp
    pop eax
    mov [compat_push], ebx
    ; into 16-bit code (CS.D=0, CS.L=0), still IA-32e mode
    ; (the real-mode blob is already in low memory: rm_call copied it)
    jmp SEL_CODE16:RMADDR(lm16_code)
.back_from16:
bits 64
    mov esp, esp                ; RSP[63:32] is undefined after compatibility mode
    mov eax, [compat_efer]
    and eax, EFER_LMA
    CHECK_EQ rax, EFER_LMA, "compatibility mode: EFER.LMA=1"
    mov eax, [compat_probe]
    CHECK_EQ rax, 8, "compatibility mode: 48 is DEC EAX"
    mov eax, [compat_push]
    CHECK_EQ rax, 4, "compatibility mode: PUSH is 4 bytes"
    movzx eax, word [RMADDR(lm16_result)]
    CHECK_EQ rax, 0x8642, "16-bit compatibility mode: 16-bit operand size"
    movzx eax, word [RMADDR(lm16_push)]
    CHECK_EQ rax, 2, "16-bit compatibility mode: PUSH is 2 bytes"
    jmp [compat_tests_ret]

; ===========================================================================
; 16-bit code (real mode, and 16-bit compatibility mode)
; ===========================================================================
section .rmblob
bits 16
rm_calls:       dd 0
rm_msw:         dw 0
rm_segsum:      dw 0
rm_int_cs:      dw 0
rm_int_ip:      dw 0
rm_int_flags:   dw 0
rm_int_ran:     dw 0
rm_far_cs:      dw 0
rm_far_ret:     dd 0
rm_o32:         dd 0
rm_unreal:      dd 0
rm_a32:         dd 0
rm_a32_table:   dd 0, 0, 0, 0x600DCAFE
lm16_result:    dw 0
lm16_push:      dw 0

; Called in real mode by rm_call (near, CS = RM_SEG, DS = 0).
rm_tests:
    mov ax, RM_SEG
    mov ds, ax
    inc dword [RMOFF(rm_calls)]
    smsw ax
    mov [RMOFF(rm_msw)], ax
    ; segment arithmetic: 1234:5678 == 179B:0008 == linear 0x179B8
    mov ax, 0x1234
    mov es, ax
    mov word [es:0x5678], 0xBEEF
    mov ax, 0x179B
    mov es, ax
    mov ax, [es:0x0008]
    mov [RMOFF(rm_segsum)], ax
    ; 16-bit effective addresses wrap at 64 KiB
    mov ax, SCRATCH_SEG
    mov es, ax
    mov bx, 0xFFFF
    mov word [es:bx + 1], 0xA55A
    ; INT through the real-mode IVT (vector 0x60 -> rm_int60)
    xor ax, ax
    mov es, ax
    mov word [es:0x60 * 4], RMOFF(rm_int60)
    mov word [es:0x60 * 4 + 2], RM_SEG
    stc                         ; CF=1 must show in the pushed FLAGS
    int 0x60
rm_after_int:
    cli
    ; far call and far return
    call RM_SEG:RMOFF(rm_far)
    ; 32-bit operand size
    mov eax, 0x12345678
    add eax, 0x11111111
    mov [RMOFF(rm_o32)], eax
    ; unreal FS: flat 4 GiB base 0, read above 1 MiB with a 32-bit address
    mov esi, unreal_marker
    mov eax, [fs:esi]
    mov [RMOFF(rm_unreal)], eax
    ; 32-bit addressing with SIB
    mov ebx, RMOFF(rm_a32_table)
    mov ecx, 3
    mov eax, [ebx + ecx * 4]
    mov [RMOFF(rm_a32)], eax
    xor ax, ax
    mov ds, ax
    ret

rm_int60:
    push bp
    mov bp, sp
    push ds
    push ax
    mov ax, RM_SEG
    mov ds, ax
    mov ax, [bp + 2]
    mov [RMOFF(rm_int_ip)], ax
    mov ax, [bp + 4]
    mov [RMOFF(rm_int_cs)], ax
    mov ax, [bp + 6]
    mov [RMOFF(rm_int_flags)], ax
    mov word [RMOFF(rm_int_ran)], 0x6060
    pop ax
    pop ds
    pop bp
    iret

rm_far:
    push bp
    mov bp, sp
    mov ax, [bp + 4]            ; pushed CS
    mov [RMOFF(rm_far_cs)], ax
    mov dword [RMOFF(rm_far_ret)], 0x2468
    pop bp
    retf

; 16-bit compatibility mode: CS = SEL_CODE16 (base 0), so IP = linear.
; Data accesses use DS (flat, base 0): address with linear RMADDR().
lm16_code:
    mov ax, 0x4321
    add ax, ax                  ; 16-bit operation
    mov [RMADDR(lm16_result)], ax
    mov bx, sp
    push ax
    sub bx, sp
    pop ax
    mov [RMADDR(lm16_push)], bx
    jmp dword SEL_KCODE64:compat_mode_tests.back_from16
