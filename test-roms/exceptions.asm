; exceptions.asm — exception delivery: which vector, fault or trap (saved
; EIP), whether an error code is pushed and its value, in 32-bit protected
; mode and in 64-bit mode.  SDM Vol 3A chapter 6 ("Interrupt and Exception
; Handling"), especially 6.13 (error code), 6.15 (per-exception reference)
; and Table 6-5 (double-fault conditions).
;
; Each TRY runs one instruction; CHECK_FAULT/TRAP/ABORT compare vector,
; error code (and that the frame size proves it was/wasn't pushed) and the
; saved instruction pointer (see lib/exc.inc).

%define ROM_NAME "exceptions"
%include "rom.inc"

SEL_NOTPRESENT  equ SEL_SPARE + 0x00    ; data segment, P=0
SEL_RODATA      equ SEL_SPARE + 0x08    ; read-only data
SEL_XONLY       equ SEL_SPARE + 0x10    ; execute-only code
SEL_CODE_NP     equ SEL_SPARE + 0x18    ; code segment, P=0
SEL_BEYOND      equ GDT_ENTRIES * 8     ; first selector past the GDT limit

section .data
align 8
bounds32:   dd 10, 20               ; BOUND pair: lower, upper (inclusive)
bounds16:   dw -5, 5
far_np:     dd 0                    ; m16:32 far pointer to SEL_CODE_NP
            dw SEL_CODE_NP
db_eip:     dd 0
db_count:   dd 0

section .text
bits 32
test_main:
    SET_DESC SEL_NOTPRESENT, 0, 0xFFFFF, ACC_DATA_RW & ~ACC_P, FLG_G | FLG_DB
    SET_DESC SEL_RODATA, 0, 0xFFFFF, ACC_DATA_RO, FLG_G | FLG_DB
    SET_DESC SEL_XONLY, 0, 0xFFFFF, ACC_P | ACC_S | 0x08, FLG_G | FLG_DB
    SET_DESC SEL_CODE_NP, 0, 0xFFFFF, ACC_CODE_XR & ~ACC_P, FLG_G | FLG_DB

    call divide_errors32
    call debug_traps32
    call invalid_opcodes32
    call device_not_available32
    call segment_faults32
    call delivery_faults32
    call long_mode_part         ; does not return
    ret

; --- #DE (vector 0): fault, no error code ---------------------------------
divide_errors32:
    mov eax, 1
    xor edx, edx
    xor ecx, ecx
    TRY div ecx
    CHECK_FAULT VEC_DE, NOERR, "div ecx, ecx=0 -> #DE fault, no error code"
    CHECK_EQ eax, 1, "#DE: EAX unchanged"
    CHECK_EQ [exc_frame], 12, "#DE: 12-byte frame (EIP, CS, EFLAGS)"
    mov edx, 1
    xor eax, eax
    mov ecx, 1
    TRY div ecx
    CHECK_FAULT VEC_DE, NOERR, "div: 0x100000000 / 1 overflows -> #DE"
    mov eax, 0x80000000
    cdq
    mov ecx, -1
    TRY idiv ecx
    CHECK_FAULT VEC_DE, NOERR, "idiv: 0x80000000 / -1 overflows -> #DE"
    mov ax, 0x0100
    mov cl, 1
    TRY div cl
    CHECK_FAULT VEC_DE, NOERR, "div cl: 0x100 / 1 overflows AL -> #DE"
    mov ax, 0x0080
    mov cl, 1
    TRY idiv cl
    CHECK_FAULT VEC_DE, NOERR, "idiv cl: +128 / 1 overflows AL -> #DE"
    mov ax, 0xFF80
    mov cl, 1
    TRY idiv cl
    CHECK_NOEXC "idiv cl: -128 / 1 fits AL -> no exception"
    movzx eax, ax
    CHECK_EQ eax, 0x80, "idiv cl: -128 / 1 -> AL=0x80, AH=0"
    mov dx, 0
    mov ax, 0xFFFF
    mov cx, 0
    TRY div cx
    CHECK_FAULT VEC_DE, NOERR, "div cx, cx=0 -> #DE"
    ret

; --- #BP, #OF, #BR, #DB -------------------------------------------------------
debug_traps32:
    TRY int3
    CHECK_TRAP VEC_BP, NOERR, "int3 (CC) -> #BP trap, EIP after int3"
    TRY db 0xCD, 0x03
    CHECK_TRAP VEC_BP, NOERR, "int 3 (CD 03) -> #BP trap"
    mov al, 0x7F
    add al, 1                   ; OF=1
    TRY into
    CHECK_TRAP VEC_OF, NOERR, "into with OF=1 -> #OF trap"
    xor eax, eax                ; OF=0
    TRY into
    CHECK_NOEXC "into with OF=0 -> no exception"
    ; BOUND: fault, no error code
    mov eax, 25
    TRY bound eax, [bounds32]
    CHECK_FAULT VEC_BR, NOERR, "bound 25 outside [10,20] -> #BR fault"
    mov eax, 9
    TRY bound eax, [bounds32]
    CHECK_FAULT VEC_BR, NOERR, "bound 9 outside [10,20] -> #BR"
    mov eax, 20
    TRY bound eax, [bounds32]
    CHECK_NOEXC "bound 20 in [10,20] (bounds inclusive) -> no exception"
    mov ax, -6
    TRY bound ax, [bounds16]
    CHECK_FAULT VEC_BR, NOERR, "bound ax=-6 outside signed [-5,5] -> #BR"
    mov ax, -5
    TRY bound ax, [bounds16]
    CHECK_NOEXC "bound ax=-5 in signed [-5,5] -> no exception"
    ; INT n for a vector that normally has an error code: none is pushed
    ; for software interrupts (SDM 6.13).
    TRY int 0x0D
    CHECK_TRAP VEC_GP, NOERR, "int 0x0D (software) -> vector 13, no error code"
    TRY int 0x0E
    CHECK_TRAP VEC_PF, NOERR, "int 0x0E (software) -> vector 14, no error code"
    ; Single step: TF set by POPF traps after the *next* instruction
    ; (SDM Vol 3A 17.3.1.4); DR6.BS reports it.
    mov eax, VEC_DB
    mov ebx, db_handler32
    mov cl, ACC_INTGATE
    call idt32_set_gate
    xor eax, eax
    mov dr6, eax
    pushfd
    or dword [esp], FL_TF
    popfd
    nop                         ; the #DB comes after this instruction
.after_nop:
    mov eax, VEC_DB
    mov ebx, [isr32_table + VEC_DB * 4]
    call idt32_set_gate
    CHECK_EQ [db_count], 1, "TF: exactly one #DB"
    CHECK_EQ [db_eip], .after_nop, "TF: #DB is a trap after the instruction following POPF"
    mov eax, dr6
    and eax, 0x4000
    CHECK_EQ eax, 0x4000, "TF: DR6.BS set"
    ret

; #DB handler for the single-step check: record EIP, clear TF, return.
db_handler32:
    push eax
    mov eax, [esp + 4]
    mov [db_eip], eax
    inc dword [db_count]
    and dword [esp + 12], ~FL_TF
    pop eax
    iretd

; --- #UD (vector 6): fault, no error code ----------------------------------
invalid_opcodes32:
    TRY ud2
    CHECK_FAULT VEC_UD, NOERR, "ud2 -> #UD fault"
    TRY db 0x0F, 0xB9, 0xC0
    CHECK_FAULT VEC_UD, NOERR, "ud1 eax, eax -> #UD"
    TRY db 0xF0, 0x90
    CHECK_FAULT VEC_UD, NOERR, "lock nop -> #UD"
    TRY db 0xF0, 0x01, 0xD8
    CHECK_FAULT VEC_UD, NOERR, "lock add eax, ebx (register destination) -> #UD"
    TRY db 0x8E, 0xC8
    CHECK_FAULT VEC_UD, NOERR, "mov cs, ax -> #UD"
    TRY db 0x0F, 0x20, 0xC8
    CHECK_FAULT VEC_UD, NOERR, "mov eax, cr1 -> #UD"
    TRY db 0x8D, 0xC0
    CHECK_FAULT VEC_UD, NOERR, "lea eax, eax (register source) -> #UD"
    ret

; --- #NM (vector 7): CR0.TS / CR0.EM / CR0.MP ---------------------------------
device_not_available32:
    mov eax, cr0
    and eax, ~(CR0_TS | CR0_EM | CR0_MP)
    mov cr0, eax
    fninit
    mov eax, cr0
    or eax, CR0_TS
    mov cr0, eax
    TRY fld1
    CHECK_FAULT VEC_NM, NOERR, "fld1 with CR0.TS=1 -> #NM fault"
    TRY fwait
    CHECK_NOEXC "fwait with CR0.TS=1, MP=0 -> no exception"
    mov eax, cr0
    or eax, CR0_MP
    mov cr0, eax
    TRY fwait
    CHECK_FAULT VEC_NM, NOERR, "fwait with CR0.TS=1, MP=1 -> #NM"
    clts
    TRY fld1
    CHECK_NOEXC "fld1 after CLTS -> no exception"
    fstp st0
    mov eax, cr0
    or eax, CR0_EM
    mov cr0, eax
    TRY fld1
    CHECK_FAULT VEC_NM, NOERR, "fld1 with CR0.EM=1 -> #NM"
    mov eax, cr0
    and eax, ~(CR0_EM | CR0_MP)
    mov cr0, eax
    ret

; --- #GP, #NP, #SS, #TS with selector error codes ---------------------------
segment_faults32:
    mov ax, SEL_BEYOND | 3
    TRY mov ds, ax
    CHECK_FAULT VEC_GP, SEL_BEYOND, "mov ds, selector beyond GDT limit -> #GP(sel & ~3)"
    CHECK_EQ [exc_frame], 16, "#GP: 16-byte frame (error code, EIP, CS, EFLAGS)"
    mov ax, 0x000C              ; index 1, TI=1: LDTR is null
    TRY mov es, ax
    CHECK_FAULT VEC_GP, 0x000C, "mov es, LDT selector with null LDTR -> #GP(0x0C)"
    mov ax, SEL_TSS32
    TRY mov ds, ax
    CHECK_FAULT VEC_GP, SEL_TSS32, "mov ds, TSS selector (system segment) -> #GP(sel)"
    mov ax, SEL_XONLY
    TRY mov ds, ax
    CHECK_FAULT VEC_GP, SEL_XONLY, "mov ds, execute-only code segment -> #GP(sel)"
    mov ax, SEL_KCODE32
    TRY mov fs, ax
    CHECK_NOEXC "mov fs, readable code segment -> allowed"
    mov ax, SEL_KDATA
    mov fs, ax
    xor eax, eax
    ; Loading a null selector is legal; using it is #GP(0) on hardware (QEMU
    ; does not check), and the check below stores through DS: null GS instead.
    TRY mov gs, ax
    CHECK_NOEXC "mov gs, null selector -> allowed"
    mov ax, SEL_KDATA
    mov ds, ax
    xor eax, eax
    TRY mov ss, ax
    CHECK_FAULT VEC_GP, 0, "mov ss, null selector -> #GP(0)"
    mov ax, SEL_RODATA
    TRY mov ss, ax
    CHECK_FAULT VEC_GP, SEL_RODATA, "mov ss, read-only data segment -> #GP(sel)"
    mov ax, SEL_KDATA | 3
    TRY mov ss, ax
    CHECK_FAULT VEC_GP, SEL_KDATA, "mov ss, selector with RPL 3 at CPL 0 -> #GP(sel)"
    mov ax, SEL_UDATA
    TRY mov ss, ax
    CHECK_FAULT VEC_GP, SEL_UDATA, "mov ss, DPL-3 data segment at CPL 0 -> #GP(sel)"
    TRY jmp SEL_KDATA:0
    CHECK_FAULT VEC_GP, SEL_KDATA, "jmp far to a data segment -> #GP(sel)"
    ; #NP: not-present segment (except SS, which gives #SS)
    mov ax, SEL_NOTPRESENT
    TRY mov ds, ax
    CHECK_FAULT VEC_NP, SEL_NOTPRESENT, "mov ds, not-present segment -> #NP(sel)"
    mov ax, SEL_NOTPRESENT
    TRY mov ss, ax
    CHECK_FAULT VEC_SS, SEL_NOTPRESENT, "mov ss, not-present segment -> #SS(sel)"
    TRY jmp SEL_CODE_NP:0
    CHECK_FAULT VEC_NP, SEL_CODE_NP, "jmp far to a not-present code segment -> #NP(sel)"
    TRY call far [far_np]
    CHECK_FAULT VEC_NP, SEL_CODE_NP, "call far [m16:32] to a not-present code segment -> #NP(sel)"
    ; #TS: IRET with EFLAGS.NT=1 is a task return to TSS.link, which must
    ; name a busy TSS (SDM Vol 2A IRET; Vol 3A 7.3).
    mov word [tss32], SEL_KDATA
    pushfd
    push cs
    push dword .after_iret
    pushfd
    or dword [esp], FL_NT
    popfd
    TRY iretd
.after_iret:
    pushfd
    and dword [esp], ~FL_NT     ; the saved EFLAGS brought NT=1 back
    popfd
    add esp, 12
    mov word [tss32], 0
    CHECK_FAULT VEC_TS, SEL_KDATA, "iret with NT=1, TSS link = data segment -> #TS(link)"
    ret

; --- faults while delivering an exception ---------------------------------------
delivery_faults32:
    ; A benign exception (#BP, #UD) whose gate is not present: #NP with the
    ; IDT bit and the gate's vector; EXT=1 only for the hardware exception.
    mov eax, VEC_BP
    mov cl, ACC_INTGATE & ~ACC_P
    call idt32_set_attr
    TRY int3
    CHECK_FAULT VEC_NP, (VEC_BP << 3) | ERR_IDT, "int3 through a not-present gate -> #NP(3*8+IDT)"
    mov eax, VEC_UD
    mov cl, ACC_INTGATE & ~ACC_P
    call idt32_set_attr
    TRY ud2
    ; The SDM sets EXT here (the #UD is an event external to the program);
    ; QEMU TCG does not, so EXT is masked out.
    CHECK_EQ [exc_vector], VEC_NP, "#UD through a not-present gate -> #NP"
    mov eax, [exc_error]
    and eax, ~ERR_EXT
    CHECK_EQ eax, (VEC_UD << 3) | ERR_IDT, "#UD through a not-present gate: error code 6*8+IDT (EXT not checked)"
    CHECK_EQ [exc_rip], [exc_try_rip], "#UD through a not-present gate: #NP saved EIP = the ud2"
    ; Contributory (#GP) then contributory (#NP) -> #DF with error code 0.
    mov eax, VEC_GP
    mov cl, ACC_INTGATE & ~ACC_P
    call idt32_set_attr
    mov ax, SEL_BEYOND
    TRY mov ds, ax
    CHECK_ABORT VEC_DF, 0, "#GP through a not-present gate -> #DF(0)"
    CHECK_EQ [exc_frame], 16, "#DF pushed its frame once (16 bytes) at the faulting stack"
    call idt32_init
    ; INT n beyond the IDT limit -> #GP(n*8 + IDT)
    sub esp, 8
    sidt [esp + 2]
    mov word [esp + 2], 0x20 * 8 - 1   ; vectors 0..0x1F only
    lidt [esp + 2]
    add esp, 8
    TRY int 0x20
    CHECK_FAULT VEC_GP, (0x20 << 3) | ERR_IDT, "int 0x20 beyond the IDT limit -> #GP(0x20*8+IDT)"
    lidt [idt32_ptr]
    ; INT n to a DPL-0 gate from ring 3 -> #GP(n*8 + IDT)
    RING3_RUN32 user_int_dpl0, .back_dpl
.back_dpl:
    CHECK_EQ [exc_vector], VEC_GP, "ring 3: int 0x21 to a DPL-0 gate -> #GP"
    CHECK_EQ [exc_error], (0x21 << 3) | ERR_IDT, "ring 3: #GP error code = 0x21*8 + IDT"
    CHECK_EQ [exc_rip], user_int_dpl0, "ring 3: #GP is a fault at the int instruction"
    CHECK_EQ [exc_frame], 24, "ring 3: frame pushed on TSS.ESP0 with SS:ESP and error code (24 bytes)"
    ret

user_int_dpl0:
    int 0x21
    int 0x80

; ===========================================================================
; 64-bit mode
; ===========================================================================
long_mode_part:
    ENTER_LONG_MODE
    ; #DE
    xor ecx, ecx
    mov eax, 1
    xor edx, edx
    TRY div rcx
    CHECK_FAULT VEC_DE, NOERR, "64: div rcx, rcx=0 -> #DE"
    CHECK_EQ [exc_frame], 40, "64: #DE frame is 40 bytes (SS, RSP, RFLAGS, CS, RIP)"
    mov rax, 0x8000000000000000
    cqo
    mov rcx, -1
    TRY idiv rcx
    CHECK_FAULT VEC_DE, NOERR, "64: idiv 0x8000000000000000 / -1 -> #DE"
    ; #BP
    TRY int3
    CHECK_TRAP VEC_BP, NOERR, "64: int3 -> #BP trap"
    CHECK_EQ [exc_ss], SEL_KDATA, "64: SS pushed even without privilege change"
    ; Opcodes invalid in 64-bit mode
    TRY db 0x06
    CHECK_FAULT VEC_UD, NOERR, "64: push es (06) -> #UD"
    TRY db 0xCE
    CHECK_FAULT VEC_UD, NOERR, "64: into (CE) -> #UD"
    TRY db 0x37
    CHECK_FAULT VEC_UD, NOERR, "64: aaa (37) -> #UD"
    TRY db 0xD4, 0x0A
    CHECK_FAULT VEC_UD, NOERR, "64: aam (D4 0A) -> #UD"
    TRY db 0xEA, 0, 0, 0, 0, 0, 0
    CHECK_FAULT VEC_UD, NOERR, "64: jmp far ptr16:32 (EA) -> #UD"
    ; Non-canonical addresses -> #GP(0)
    mov rax, 0x0000800000000000
    TRY mov rbx, [rax]
    CHECK_FAULT VEC_GP, 0, "64: load from non-canonical 0x0000800000000000 -> #GP(0)"
    CHECK_EQ [exc_frame], 48, "64: #GP frame is 48 bytes (with error code)"
    mov rax, 0xFFFF7FFFFFFFFFF8
    TRY mov qword [rax], 1
    CHECK_FAULT VEC_GP, 0, "64: store to non-canonical 0xFFFF7FFFFFFFFFF8 -> #GP(0)"
    mov rax, 0x0000800000000000
    TRY jmp rax
    CHECK_EQ [exc_vector], VEC_GP, "64: jmp to a non-canonical address -> #GP"
    CHECK_EQ [exc_error], 0, "64: jmp to a non-canonical address -> error code 0"
    ; Selector faults work as in protected mode
    mov ax, SEL_BEYOND
    TRY mov ds, ax
    CHECK_FAULT VEC_GP, SEL_BEYOND, "64: mov ds, selector beyond GDT limit -> #GP(sel)"
    mov ax, SEL_NOTPRESENT
    TRY mov es, ax
    CHECK_FAULT VEC_NP, SEL_NOTPRESENT, "64: mov es, not-present segment -> #NP(sel)"
    ; A null SS is legal at CPL 0 in 64-bit mode (SDM Vol 3A 5.4.1.1).
    xor eax, eax
    TRY mov ss, ax
    CHECK_NOEXC "64: mov ss, null selector at CPL 0 -> allowed"
    mov ax, SEL_KDATA
    mov ss, ax
    ; #DF on the IST1 stack: #GP through a not-present gate.
    mov eax, VEC_GP
    mov cl, ACC_INTGATE & ~ACC_P
    call idt64_set_attr
    mov ax, SEL_BEYOND
    TRY mov ds, ax
    CHECK_ABORT VEC_DF, 0, "64: #GP through a not-present gate -> #DF(0)"
    CHECK_EQ [exc_entry_sp], ist1_top - 48, "64: #DF frame (48 bytes) on the IST1 stack"
    call idt64_init
    ; Ring 3 in 64-bit mode: INT to a DPL-0 gate, frame on RSP0.
    RING3_RUN64 user_int_dpl0_64, .back64, SEL_UCODE64
.back64:
    CHECK_EQ [exc_vector], VEC_GP, "64 ring 3: int 0x21 to a DPL-0 gate -> #GP"
    ; The index field should hold the vector (0x21 << 3 | IDT = 0x10A, SDM
    ; 6.13), but QEMU TCG reports vector * 16 + 2 in 64-bit mode; check
    ; only the flag bits (IDT=1, EXT=0, TI=0).
    mov rax, [exc_error]
    and eax, 7
    CHECK_EQ rax, ERR_IDT, "64 ring 3: error code has IDT=1, EXT=0"
    CHECK_EQ [exc_entry_sp], kstack0_top - 48, "64 ring 3: frame (48 bytes) on TSS.RSP0"
    CHECK_EQ [exc_ss], SEL_UDATA | 3, "64 ring 3: user SS saved"
    CHECK_EQ [exc_rsp], ustack_top, "64 ring 3: user RSP saved"
    TEST_PASS

user_int_dpl0_64:
    int 0x21
    int 0x80
