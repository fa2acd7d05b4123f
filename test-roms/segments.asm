; segments.asm — protected-mode segmentation and privilege (SDM Vol 3A
; chapter 5 "Protection", 3.4 "Segment selectors and descriptors", 16.5
; "I/O permission bit map").
;
;   descriptor inspection: LSL (byte/page granularity), LAR, VERR, VERW,
;     at ring 0 and ring 3;
;   segment bases, 32-bit wrap-around of base + offset;
;   privilege checks on loading DS/SS (CPL, RPL, DPL) at ring 0 and 3;
;   ring 3 entry by IRET (DPL-0 data segments nulled) and by RETF, and
;   back by an interrupt gate with the TSS stack switch;
;   32-bit call gates: ring 3 -> 0 with parameter copy and stack switch,
;     RETF n back; gate DPL, not-present gate, gate to outer privilege,
;     JMP through a gate; conforming code segments;
;   far JMP beyond the CS limit;
;   privileged instructions at ring 3, IOPL, the TSS I/O permission bitmap;
;   a 64-bit call gate from 64-bit ring 3.
;
; Not tested: #GP/#SS for data/stack accesses beyond a segment limit and
; expand-down segments.  QEMU 7.2 TCG does not check data segment limits,
; so it cannot be the oracle for them (see README.md).

%define ROM_NAME "segments"
%include "rom.inc"

SEL_BYTELIM     equ SEL_SPARE + 0x00    ; data, base 0x1000, limit 0xFFF (bytes)
SEL_PAGELIM     equ SEL_SPARE + 0x08    ; data, limit 0xF pages = 0xFFFF
SEL_XONLY       equ SEL_SPARE + 0x10    ; execute-only code
SEL_RODATA      equ SEL_SPARE + 0x18    ; read-only data
SEL_BASED       equ SEL_SPARE + 0x20    ; data with a non-zero base
SEL_GATE3       equ SEL_SPARE + 0x28    ; call gate, DPL 3 -> KCODE32, 2 params
SEL_GATE0       equ SEL_SPARE + 0x30    ; call gate, DPL 0
SEL_GATE_NP     equ SEL_SPARE + 0x38    ; call gate, not present
SEL_GATE_OUT    equ SEL_SPARE + 0x40    ; call gate, DPL 0 -> UCODE32 (outer)
SEL_CONF0       equ SEL_SPARE + 0x48    ; conforming code, DPL 0
SEL_CONF3       equ SEL_SPARE + 0x50    ; conforming code, DPL 3
SEL_LIMCODE     equ SEL_SPARE + 0x58    ; 32-bit code, limit 1 MiB
SEL_TSS_IO      equ SEL_SPARE + 0x60    ; TSS with an I/O permission bitmap
SEL_GATE64      equ SEL_SPARE + 0x68    ; 64-bit call gate (16 bytes: 0x68, 0x70)
SEL_GATE_J      equ SEL_SPARE + 0x78    ; call gate, DPL 0, for JMP
SEL_BEYOND      equ GDT_ENTRIES * 8

WRAP_PAT        equ 0x5EA70000

section .data
far_gate3:      dd 0
                dw SEL_GATE3 | 3
far_gate64:     dd 0
                dw SEL_GATE64 | 3
section .bss
alignb 16
based_buf:      resb 16
gate_frame:     resd 6          ; what the call gate pushed
gate_esp:       resd 1
gate_cs:        resd 1
gate64_frame:   resq 4
gate64_rsp:     resq 1
gate64_cs:      resq 1
jmp_gate_cs:    resd 1
alignb 16
tss_io:         resb 104 + 128 + 1  ; TSS, bitmap for ports 0..0x3FF, 0xFF end byte
tss_io_end:

section .text
bits 32

; SET_GATE sel, target, target-sel, access, params: a 32-bit call gate.
%macro SET_GATE 5
    mov eax, %2
    mov [gdt + %1 + 0], ax
    mov word [gdt + %1 + 2], %3
    mov byte [gdt + %1 + 4], %5
    mov byte [gdt + %1 + 5], %4
    shr eax, 16
    mov [gdt + %1 + 6], ax
%endmacro

test_main:
    SET_DESC SEL_BYTELIM, 0x1000, 0xFFF, ACC_DATA_RW, FLG_DB
    SET_DESC SEL_PAGELIM, 0, 0xF, ACC_DATA_RW, FLG_G | FLG_DB
    SET_DESC SEL_XONLY, 0, 0xFFFFF, ACC_P | ACC_S | 0x08, FLG_G | FLG_DB
    SET_DESC SEL_RODATA, 0, 0xFFFFF, ACC_DATA_RO, FLG_G | FLG_DB
    SET_DESC SEL_CONF0, 0, 0xFFFFF, ACC_CODE_XRC, FLG_G | FLG_DB
    SET_DESC SEL_CONF3, 0, 0xFFFFF, ACC_CODE_XRC | ACC_DPL3, FLG_G | FLG_DB
    SET_DESC SEL_LIMCODE, 0, 0xFF, ACC_CODE_XR, FLG_G | FLG_DB
    SET_GATE SEL_GATE3, gate_target, SEL_KCODE32, ACC_CALLGATE | ACC_DPL3, 2
    SET_GATE SEL_GATE0, gate_target, SEL_KCODE32, ACC_CALLGATE, 0
    SET_GATE SEL_GATE_NP, gate_target, SEL_KCODE32, ACC_CALLGATE & ~ACC_P, 0
    SET_GATE SEL_GATE_J, jmp_gate_target, SEL_KCODE32, ACC_CALLGATE, 0
    SET_GATE SEL_GATE_OUT, u_after_gate_out, SEL_UCODE32 | 3, ACC_CALLGATE, 0

    call inspect_descriptors
    call bases
    call privilege_loads
    call ring_transitions
    call call_gates
    call conforming
    call cs_limit
    call privileged_instructions
    call io_bitmap
    call call_gate_64          ; ends the test
    ret

; ---- LSL, LAR, VERR, VERW ----------------------------------------------------
inspect_descriptors:
    mov ax, SEL_KDATA
    lsl eax, ax
    CHECK_FLAGS FL_ZF, FL_ZF, "lsl flat data: ZF=1"
    CHECK_EQ eax, 0xFFFFFFFF, "lsl flat 4 GiB data segment -> 0xFFFFFFFF"
    mov ax, SEL_BYTELIM
    lsl eax, ax
    CHECK_EQ eax, 0xFFF, "lsl byte-granular limit 0xFFF -> 0xFFF"
    mov ax, SEL_PAGELIM
    lsl eax, ax
    CHECK_EQ eax, 0xFFFF, "lsl page-granular limit 0xF -> 0xFFFF"
    mov ax, SEL_TSS32
    lsl eax, ax
    CHECK_EQ eax, 103, "lsl TSS -> 103"
    mov ebx, 0x1234
    xor eax, eax
    lsl ebx, ax
    CHECK_FLAGS FL_ZF, 0, "lsl null selector: ZF=0"
    CHECK_EQ ebx, 0x1234, "lsl null selector: destination unchanged"
    mov ax, SEL_BEYOND
    lsl ebx, ax
    CHECK_FLAGS FL_ZF, 0, "lsl selector beyond GDT limit: ZF=0"
    mov ax, SEL_KCODE32
    lar eax, ax
    CHECK_FLAGS FL_ZF, FL_ZF, "lar code segment: ZF=1"
    ; bits 19:16 are undefined (SDM LAR); the accessed bit of CS is not
    ; compared: hardware sets it on a CS load, QEMU 7.2 TCG does not.
    and eax, 0x00F0FE00
    CHECK_EQ eax, 0x00C09A00, "lar KCODE32 -> G, D, P, S, DPL 0, code type"
    SET_DESC SEL_BASED, 0, 0xFFFFF, ACC_DATA_RW, FLG_G | FLG_DB
    mov ax, SEL_BASED
    lar eax, ax
    and eax, 0x00F0FF00
    CHECK_EQ eax, 0x00C09200, "lar fresh data segment -> type 2 (not accessed)"
    mov ax, SEL_BASED
    mov es, ax
    lar eax, ax
    and eax, 0x00F0FF00
    CHECK_EQ eax, 0x00C09300, "loading a data segment sets its accessed bit"
    mov ax, SEL_KDATA
    mov es, ax
    mov ax, SEL_TSS32
    lar eax, ax
    and eax, 0x00F0FF00
    CHECK_EQ eax, 0x00008B00, "lar busy 32-bit TSS -> P, type 0xB"
    mov ax, SEL_XONLY
    verr ax
    CHECK_FLAGS FL_ZF, 0, "verr execute-only code: ZF=0"
    mov ax, SEL_KCODE32
    verr ax
    CHECK_FLAGS FL_ZF, FL_ZF, "verr readable code: ZF=1"
    mov ax, SEL_RODATA
    verw ax
    CHECK_FLAGS FL_ZF, 0, "verw read-only data: ZF=0"
    mov ax, SEL_KDATA
    verw ax
    CHECK_FLAGS FL_ZF, FL_ZF, "verw writable data: ZF=1"
    RING3_RUN32 u_inspect, .back
.back:
    CHECK_EQ [exc_vector], VEC_SYSCALL, "ring 3: descriptor inspection ran"
    CHECK_EQ [exc_rax], 0x0100, "ring 3: lsl DPL-0 segment ZF=0, lsl DPL-3 segment ZF=1"
    CHECK_EQ [exc_rbx], 0x0100, "ring 3: verr DPL-0 segment ZF=0, verr DPL-3 segment ZF=1"
    ret

u_inspect:
    xor ebx, ebx
    mov cx, SEL_KDATA
    lsl eax, cx
    setz bl                     ; 0: privilege check fails
    mov cx, SEL_UDATA | 3
    lsl eax, cx
    setz bh
    mov eax, ebx
    xor ebx, ebx
    mov cx, SEL_KDATA
    verr cx
    setz bl
    mov cx, SEL_UDATA | 3
    verr cx
    setz bh
    int 0x80

; ---- segment bases ----------------------------------------------------------
bases:
    mov dword [based_buf + 4], 0xBA5E0004
    mov eax, based_buf - 0x1000
    SET_DESC SEL_BASED, eax, 0xFFFFF, ACC_DATA_RW, FLG_G | FLG_DB
    mov ax, SEL_BASED
    mov es, ax
    mov eax, [es:0x1004]
    CHECK_EQ eax, 0xBA5E0004, "segment base: ES.base + 0x1004 reaches the buffer"
    mov dword [es:0x1008], 0xBA5E0008
    CHECK_EQ [based_buf + 8], 0xBA5E0008, "segment base: write through ES.base"
    ; base + offset wraps at 4 GiB
    mov dword [0x1000], WRAP_PAT
    SET_DESC SEL_BASED, 0xFFFFF000, 0xFFFFF, ACC_DATA_RW, FLG_G | FLG_DB
    mov ax, SEL_BASED
    mov es, ax
    mov eax, [es:0x2000]
    CHECK_EQ eax, WRAP_PAT, "segment base 0xFFFFF000 + offset 0x2000 wraps to linear 0x1000"
    mov ax, SEL_KDATA
    mov es, ax
    ret

; ---- privilege checks on segment loads -------------------------------------------
privilege_loads:
    mov ax, SEL_KDATA | 3
    TRY mov ds, ax
    CHECK_FAULT VEC_GP, SEL_KDATA, "CPL 0: mov ds, DPL-0 data with RPL 3 -> #GP(sel)"
    mov ax, SEL_UDATA
    TRY mov es, ax
    CHECK_NOEXC "CPL 0: mov es, DPL-3 data with RPL 0 -> allowed"
    mov ax, SEL_KDATA
    mov es, ax
    RING3_RUN32 u_load_kdata, .b1
.b1:
    CHECK_EQ [exc_vector], VEC_GP, "CPL 3: mov ds, DPL-0 data -> #GP"
    CHECK_EQ [exc_error], SEL_KDATA, "CPL 3: mov ds, DPL-0 data -> error code = selector"
    CHECK_EQ [exc_rip], u_load_kdata.fault, "CPL 3: #GP at the mov"
    RING3_RUN32 u_load_udata_rpl0, .b2
.b2:
    CHECK_EQ [exc_vector], VEC_SYSCALL, "CPL 3: mov ds, DPL-3 data with RPL 0 -> allowed"
    RING3_RUN32 u_load_ss_rpl0, .b3
.b3:
    CHECK_EQ [exc_vector], VEC_GP, "CPL 3: mov ss, selector with RPL 0 != CPL -> #GP"
    CHECK_EQ [exc_error], SEL_UDATA, "CPL 3: mov ss, RPL != CPL -> error code = selector"
    RING3_RUN32 u_load_ss_kdata, .b4
.b4:
    CHECK_EQ [exc_vector], VEC_GP, "CPL 3: mov ss, DPL-0 data -> #GP"
    ret

u_load_kdata:
    mov ax, SEL_KDATA | 3
.fault:
    mov ds, ax
    int 0x80
u_load_udata_rpl0:
    mov ax, SEL_UDATA
    mov ds, ax
    int 0x80
u_load_ss_rpl0:
    mov ax, SEL_UDATA
    mov ss, ax
    int 0x80
u_load_ss_kdata:
    mov ax, SEL_KDATA | 3
    mov ss, ax
    int 0x80

; ---- into ring 3 by IRET and RETF, back by an interrupt gate --------------------
ring_transitions:
    ; IRET to ring 3 nulls data segment registers whose DPL < 3 (SDM IRET,
    ; "RETURN-TO-OUTER-PRIVILEGE-LEVEL").
    ARM_RING3 .b1
    mov ax, SEL_UDATA | 3
    mov ds, ax
    mov es, ax
    mov ax, SEL_KDATA
    mov fs, ax
    mov gs, ax
    push dword SEL_UDATA | 3
    push dword ustack_top
    push dword 0x2
    push dword SEL_UCODE32 | 3
    push dword u_show_segs
    iretd
.b1:
    CHECK_EQ [exc_vector], VEC_SYSCALL, "IRET to ring 3: ran at ring 3"
    CHECK_EQ [exc_rax], (SEL_UCODE32 | 3), "IRET to ring 3: CS = UCODE32|3"
    CHECK_EQ [exc_rbx], (SEL_UDATA | 3) << 16, "IRET to ring 3: SS loaded; FS (DPL 0) nulled"
    CHECK_EQ [exc_rcx], (SEL_UDATA | 3) << 16, "IRET to ring 3: DS (DPL 3) kept; GS (DPL 0) nulled"
    CHECK_EQ [exc_rdx], ustack_top, "IRET to ring 3: ESP from the frame"
    CHECK_EQ [exc_frame], 20, "ring 3 -> 0 via INT: 20-byte frame on TSS.ESP0"
    CHECK_EQ [exc_rsp], ustack_top, "ring 3 -> 0 via INT: user ESP saved"
    CHECK_EQ [exc_ss], SEL_UDATA | 3, "ring 3 -> 0 via INT: user SS saved"
    ; RETF to an outer level pops CS:EIP and then SS:ESP.
    ARM_RING3 .b2
    mov ax, SEL_UDATA | 3
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    push dword SEL_UDATA | 3
    push dword ustack_top - 64
    push dword SEL_UCODE32 | 3
    push dword u_show_segs
    retf
.b2:
    CHECK_EQ [exc_rax], (SEL_UCODE32 | 3), "RETF to ring 3: CS = UCODE32|3"
    CHECK_EQ [exc_rdx], ustack_top - 64, "RETF to ring 3: ESP popped from the stack"
    CHECK_EQ [exc_rbx], ((SEL_UDATA | 3) << 16) | (SEL_UDATA | 3), "RETF to ring 3: SS popped"
    ret

; EAX = CS, EBX = SS << 16 | FS, ECX = DS << 16 | GS, EDX = ESP
u_show_segs:
    xor eax, eax
    xor ebx, ebx
    xor ecx, ecx
    mov ax, ss
    mov bx, ax
    shl ebx, 16
    mov ax, fs
    mov bx, ax
    mov ax, ds
    mov cx, ax
    shl ecx, 16
    mov ax, gs
    mov cx, ax
    mov ax, cs
    mov edx, esp
    int 0x80

; ---- call gates --------------------------------------------------------------------
call_gates:
    RING3_RUN32 u_call_gate3, .b1
.b1:
    CHECK_EQ [exc_vector], VEC_SYSCALL, "call gate ring 3 -> 0 -> RETF 8 -> ring 3"
    CHECK_EQ [gate_cs], SEL_KCODE32, "call gate: target runs with CS = KCODE32 (CPL 0)"
    CHECK_EQ [gate_esp], kstack0_top - 24, "call gate: stack switched to TSS.ESP0"
    CHECK_EQ [gate_frame + 0], u_call_gate3.ret, "call gate: pushed return EIP"
    CHECK_EQ [gate_frame + 4], SEL_UCODE32 | 3, "call gate: pushed caller CS"
    CHECK_EQ [gate_frame + 8], 0x2222, "call gate: copied parameter 1 (nearest the caller's ESP)"
    CHECK_EQ [gate_frame + 12], 0x1111, "call gate: copied parameter 2"
    CHECK_EQ [gate_frame + 16], ustack_top - 8, "call gate: pushed caller ESP"
    CHECK_EQ [gate_frame + 20], SEL_UDATA | 3, "call gate: pushed caller SS"
    CHECK_EQ [exc_rbx], ustack_top, "RETF 8 to ring 3: parameters released from the caller's stack"
    CHECK_EQ [exc_rax], SEL_UCODE32 | 3, "RETF 8 to ring 3: back at CPL 3"
    RING3_RUN32 u_call_gate0, .b2
.b2:
    CHECK_EQ [exc_vector], VEC_GP, "call gate with DPL 0 from ring 3 -> #GP"
    CHECK_EQ [exc_error], SEL_GATE0, "call gate with DPL 0 from ring 3 -> error code = gate selector"
    TRY call SEL_GATE_NP:0
    CHECK_FAULT VEC_NP, SEL_GATE_NP, "call through a not-present gate -> #NP(gate)"
    TRY call SEL_GATE_OUT:0
    CHECK_FAULT VEC_GP, SEL_UCODE32, "call gate to a less privileged (DPL 3) segment -> #GP(target)"
    mov dword [jmp_gate_cs], 0
    mov ebx, esp
    jmp SEL_GATE_J:0            ; JMP through a gate: same privilege only
.jmp_back:
    CHECK_EQ [jmp_gate_cs], SEL_KCODE32, "jmp through a DPL-0 call gate at CPL 0"
    mov ecx, esp
    CHECK_EQ ebx, ecx, "jmp through a call gate pushes nothing"
    ret

; Call gate target, CPL 0.  DS is still the caller's (flat, DPL 3).
gate_target:
    mov [gate_esp], esp
    push eax
    push ecx
    xor ecx, ecx
.copy:
    mov eax, [esp + 8 + ecx * 4]
    mov [gate_frame + ecx * 4], eax
    inc ecx
    cmp ecx, 6
    jb .copy
    xor eax, eax
    mov ax, cs
    mov [gate_cs], eax
    pop ecx
    pop eax
    retf 8

; Target of the gate used with JMP (same privilege; nothing is pushed).
jmp_gate_target:
    push eax
    xor eax, eax
    mov ax, cs
    mov [jmp_gate_cs], eax
    pop eax
    jmp call_gates.jmp_back

u_call_gate3:
    push dword 0x1111
    push dword 0x2222
    call far [far_gate3]
.ret:
    mov ebx, esp
    xor eax, eax
    mov ax, cs
    int 0x80
u_call_gate0:
    call SEL_GATE0 | 3:0
    int 0x80
u_after_gate_out:
    int 0x80

; ---- conforming code ---------------------------------------------------------------
conforming:
    RING3_RUN32 u_call_conf0, .b1
.b1:
    CHECK_EQ [exc_vector], VEC_SYSCALL, "ring 3 far call to a DPL-0 conforming segment -> allowed"
    CHECK_EQ [exc_rax], SEL_CONF0 | 3, "conforming segment runs at the caller's CPL (CS.RPL = 3)"
    RING3_RUN32 u_call_nonconf, .b2
.b2:
    CHECK_EQ [exc_vector], VEC_GP, "ring 3 far call to a DPL-0 non-conforming segment -> #GP"
    CHECK_EQ [exc_error], SEL_KCODE32, "... error code = target selector"
    TRY call SEL_CONF3:conf_fn
    CHECK_FAULT VEC_GP, SEL_CONF3, "ring 0 far call to a DPL-3 conforming segment -> #GP(sel)"
    ret

conf_fn:
    xor eax, eax
    mov ax, cs
    retf
u_call_conf0:
    call SEL_CONF0 | 3:conf_fn
    int 0x80
u_call_nonconf:
    call SEL_KCODE32 | 3:conf_fn
    int 0x80

; ---- CS limit ---------------------------------------------------------------------
cs_limit:
    TRY jmp SEL_LIMCODE:0x100000
    CHECK_FAULT VEC_GP, 0, "far jmp to an offset beyond the CS limit -> #GP(0)"
    ; (The same for a far CALL is #GP(0) per the SDM, but QEMU 7.2 TCG
    ; reports #GP(selector), so it is not checked.)
    ret

; ---- privileged instructions, IOPL ---------------------------------------------------
%macro USER_EXPECT_GP0 2        ; code label, "name"
    RING3_RUN32 %1, %%back
%%back:
    CHECK_EQ [exc_vector], VEC_GP, %2
    CHECK_EQ [exc_error], 0, {%2, ": error code 0"}
    CHECK_EQ [exc_rip], %1, {%2, ": fault at the instruction"}
%endmacro

privileged_instructions:
    USER_EXPECT_GP0 u_cli, "CPL 3, IOPL 0: cli -> #GP(0)"
    USER_EXPECT_GP0 u_hlt, "CPL 3: hlt -> #GP(0)"
    USER_EXPECT_GP0 u_movcr0, "CPL 3: mov eax, cr0 -> #GP(0)"
    USER_EXPECT_GP0 u_lgdt, "CPL 3: lgdt -> #GP(0)"
    USER_EXPECT_GP0 u_in, "CPL 3, IOPL 0, no I/O bitmap: in al, 0x80 -> #GP(0)"
    USER_EXPECT_GP0 u_wrmsr, "CPL 3: wrmsr -> #GP(0)"
    RING3_RUN32 u_popf, .b1
.b1:
    CHECK_EQ [exc_vector], VEC_SYSCALL, "CPL 3: popf is not privileged"
    and dword [exc_rax], FL_IF | FL_IOPL3
    CHECK_EQ [exc_rax], 0, "CPL 3, IOPL 0: popf leaves IF and IOPL unchanged"
    mov dword [ring3_eflags], 0x2 | FL_IOPL3
    RING3_RUN32 u_iopl3, .b2
.b2:
    mov dword [ring3_eflags], 0x2
    CHECK_EQ [exc_vector], VEC_SYSCALL, "CPL 3, IOPL 3: cli, in, out allowed"
    ret

u_cli:      cli
            int 0x80
u_hlt:      hlt
            int 0x80
u_movcr0:   mov eax, cr0
            int 0x80
u_lgdt:     lgdt [gdt_ptr]
            int 0x80
u_in:       in al, 0x80
            int 0x80
u_wrmsr:    wrmsr
            int 0x80
u_popf:     push dword FL_IF | FL_IOPL3 | 0x2
            popf
            pushf
            pop eax
            int 0x80
u_iopl3:    cli
            in al, 0x80
            out 0x80, al
            int 0x80

; ---- I/O permission bitmap ------------------------------------------------------------
io_bitmap:
    ; a second TSS whose bitmap allows only port 0x80 (bit = 0: allowed)
    mov dword [tss_io + TSS32_ESP0], kstack0_top
    mov dword [tss_io + TSS32_SS0], SEL_KDATA
    mov word [tss_io + TSS32_IOMAP], 104
    mov edi, tss_io + 104
    mov ecx, 129
    mov al, 0xFF
    cld
    rep stosb
    and byte [tss_io + 104 + 0x80 / 8], ~(1 << (0x80 % 8))
    SET_DESC SEL_TSS_IO, tss_io, tss_io_end - tss_io - 1, ACC_TSS_AVAIL, 0
    mov ax, SEL_TSS_IO
    ltr ax
    RING3_RUN32 u_in80, .b1
.b1:
    CHECK_EQ [exc_vector], VEC_SYSCALL, "I/O bitmap: in al, 0x80 (bit clear) -> allowed"
    RING3_RUN32 u_in81, .b2
.b2:
    CHECK_EQ [exc_vector], VEC_GP, "I/O bitmap: in al, 0x81 (bit set) -> #GP"
    RING3_RUN32 u_in80w, .b3
.b3:
    CHECK_EQ [exc_vector], VEC_GP, "I/O bitmap: in ax, 0x80 (port 0x81 denied) -> #GP"
    RING3_RUN32 u_in400, .b4
.b4:
    CHECK_EQ [exc_vector], VEC_GP, "I/O bitmap: port 0x400, beyond the TSS limit -> #GP"
    call tss32_load
    ret

u_in80:     in al, 0x80
            int 0x80
u_in81:     in al, 0x81
            int 0x80
u_in80w:    in ax, 0x80
            int 0x80
u_in400:    mov dx, 0x400
            in al, dx
            int 0x80

; ---- 64-bit call gate --------------------------------------------------------------
call_gate_64:
    ENTER_LONG_MODE
    ; 16-byte call gate (SDM Vol 3A 5.8.3.1): offset 63:0, selector, type 0xC
    mov rax, gate64_target
    mov [gdt + SEL_GATE64 + 0], ax
    mov word [gdt + SEL_GATE64 + 2], SEL_KCODE64
    mov byte [gdt + SEL_GATE64 + 4], 0
    mov byte [gdt + SEL_GATE64 + 5], ACC_CALLGATE | ACC_DPL3
    shr rax, 16
    mov [gdt + SEL_GATE64 + 6], ax
    shr rax, 16
    mov [gdt + SEL_GATE64 + 8], eax
    mov dword [gdt + SEL_GATE64 + 12], 0
    RING3_RUN64 u_call_gate64, .back, SEL_UCODE64
.back:
    CHECK_EQ [exc_vector], VEC_SYSCALL, "64-bit call gate: ring 3 -> 0 -> RETFQ -> ring 3"
    CHECK_EQ [gate64_cs], SEL_KCODE64, "64-bit call gate: target CS = KCODE64"
    CHECK_EQ [gate64_rsp], kstack0_top - 32, "64-bit call gate: stack switched to TSS.RSP0"
    CHECK_EQ [gate64_frame + 0], u_call_gate64.ret, "64-bit call gate: pushed RIP"
    CHECK_EQ [gate64_frame + 8], SEL_UCODE64 | 3, "64-bit call gate: pushed CS"
    CHECK_EQ [gate64_frame + 16], ustack_top, "64-bit call gate: pushed RSP"
    CHECK_EQ [gate64_frame + 24], SEL_UDATA | 3, "64-bit call gate: pushed SS"
    CHECK_EQ [exc_rax], SEL_UCODE64 | 3, "64-bit call gate: RETFQ back to CPL 3"
    TEST_PASS

bits 64
gate64_target:
    mov [gate64_rsp], rsp
    push rax
    mov rax, [rsp + 8]
    mov [gate64_frame + 0], rax
    mov rax, [rsp + 16]
    mov [gate64_frame + 8], rax
    mov rax, [rsp + 24]
    mov [gate64_frame + 16], rax
    mov rax, [rsp + 32]
    mov [gate64_frame + 24], rax
    xor eax, eax
    mov ax, cs
    mov [gate64_cs], rax
    pop rax
    o64 retf

u_call_gate64:
    call far dword [far_gate64] ; m16:32 (NASM would pick m16:64 with REX.W)
.ret:
    xor eax, eax
    mov ax, cs
    int 0x80
bits 32
