; syscall.asm — fast system calls and IRET transitions.
;
;   SYSENTER/SYSEXIT in 32-bit protected mode (SDM Vol 2B): selectors
;     derived from IA32_SYSENTER_CS, ESP/EIP from the MSRs and ECX/EDX,
;     IF cleared; #GP(0) with SYSENTER_CS = 0 and for SYSEXIT at CPL 3;
;   IRET: same privilege (EFLAGS restored), ring 3 -> INT -> ring 0 ->
;     IRET back to ring 3, twice (stack reset from TSS.ESP0 each time);
;   SYSCALL/SYSRET in 64-bit mode (SDM Vol 2B, Vol 3A 5.8.8): RCX/R11,
;     STAR selectors, FMASK, RSP untouched; SYSRET to 64-bit and to
;     compatibility mode; #UD with EFER.SCE=0; #GP(0) for SYSRET at CPL 3;
;   IRETQ: same privilege with a new RSP, to compatibility mode, and the
;     nested ring-3 INT/IRETQ round trip;
;   SWAPGS, IA32_GS_BASE / IA32_KERNEL_GS_BASE, FS base from a selector
;     load; #GP(0) at CPL 3, #UD in compatibility mode.
;
; Vendor-specific behaviour (SYSCALL in compatibility mode, SYSENTER in
; 64-bit mode, SYSRET to a non-canonical RIP) is not tested.

%define ROM_NAME "syscall"
%include "rom.inc"

VEC_NEST        equ 0x81        ; DPL-3 gate for the nested IRET checks

section .bss
alignb 16
sysenter_stack: resb 1024
sysenter_top:
se_esp:     resd 1
se_cs:      resd 1
se_ss:      resd 1
se_eflags:  resd 1
nest_count: resd 1
nest_esp:   resd 1
alignb 8
sc_rcx:     resq 1
sc_r11:     resq 1
sc_rsp:     resq 1
sc_cs:      resq 1
sc_ss:      resq 1
sc_rflags:  resq 1
gs_a:       resq 1
gs_b:       resq 1
compat_cs:  resq 1

section .text
bits 32
test_main:
    ; Mask both PICs: ring-3 code below runs with IF=1.
    mov al, 0xFF
    out 0x21, al
    out 0xA1, al
    call sysenter_tests
    call iret32_tests
    call long_mode_tests        ; ends the test
    ret

; ---- SYSENTER / SYSEXIT -----------------------------------------------------------
sysenter_tests:
    xor edx, edx
    mov ecx, MSR_SYSENTER_CS
    mov eax, SEL_KCODE32
    wrmsr
    mov ecx, MSR_SYSENTER_ESP
    mov eax, sysenter_top
    wrmsr
    mov ecx, MSR_SYSENTER_EIP
    mov eax, sysenter_entry
    wrmsr
    mov dword [ring3_eflags], 0x2 | FL_IF
    RING3_RUN32 u_sysenter, .b1
.b1:
    mov dword [ring3_eflags], 0x2
    CHECK_EQ [exc_vector], VEC_SYSCALL, "SYSENTER -> SYSEXIT -> back in ring 3"
    CHECK_EQ [se_cs], SEL_KCODE32, "SYSENTER: CS = IA32_SYSENTER_CS"
    CHECK_EQ [se_ss], SEL_KDATA, "SYSENTER: SS = IA32_SYSENTER_CS + 8"
    CHECK_EQ [se_esp], sysenter_top, "SYSENTER: ESP = IA32_SYSENTER_ESP"
    mov eax, [se_eflags]
    and eax, FL_IF
    CHECK_EQ eax, 0, "SYSENTER clears EFLAGS.IF"
    CHECK_EQ [exc_rax], SEL_UCODE32 | 3, "SYSEXIT: CS = IA32_SYSENTER_CS + 16, RPL 3"
    CHECK_EQ [exc_rbx], SEL_UDATA | 3, "SYSEXIT: SS = IA32_SYSENTER_CS + 24, RPL 3"
    CHECK_EQ [exc_rsi], ustack_top - 16, "SYSEXIT: ESP = ECX"
    CHECK_EQ [exc_rdi], u_sysenter.back, "SYSEXIT: EIP = EDX"
    ; SYSEXIT at CPL 3
    RING3_RUN32 u_sysexit, .b2
.b2:
    CHECK_EQ [exc_vector], VEC_GP, "SYSEXIT at CPL 3 -> #GP"
    CHECK_EQ [exc_error], 0, "SYSEXIT at CPL 3 -> #GP(0)"
    ; SYSENTER with IA32_SYSENTER_CS = 0
    xor eax, eax
    xor edx, edx
    mov ecx, MSR_SYSENTER_CS
    wrmsr
    RING3_RUN32 u_sysenter, .b3
.b3:
    CHECK_EQ [exc_vector], VEC_GP, "SYSENTER with IA32_SYSENTER_CS = 0 -> #GP"
    CHECK_EQ [exc_error], 0, "SYSENTER with IA32_SYSENTER_CS = 0 -> #GP(0)"
    ret

sysenter_entry:
    mov [se_esp], esp
    mov word [se_cs], cs
    mov word [se_ss], ss
    pushfd
    pop dword [se_eflags]
    sub ecx, 16                 ; return to a different ESP
    sysexit

u_sysenter:
    mov ecx, esp
    mov edx, .back
    sysenter
.back:
    xor eax, eax
    mov ax, cs
    xor ebx, ebx
    mov bx, ss
    mov esi, esp
    mov edi, .back
    int 0x80
u_sysexit:
    sysexit

; ---- IRET in protected mode ------------------------------------------------------------
iret32_tests:
    ; same privilege: pops EIP, CS, EFLAGS only
    mov ebx, esp
    pushfd
    or dword [esp], FL_CF | FL_ZF
    push cs
    push dword .target
    clc
    iretd
.target:
    CHECK_FLAGS FL_CF | FL_ZF, FL_CF | FL_ZF, "IRET same privilege: EFLAGS restored from the frame"
    mov ecx, esp
    CHECK_EQ ecx, ebx, "IRET same privilege: pops 12 bytes, no SS:ESP"
    ; ring 3 -> INT (DPL-3 gate) -> ring 0 handler -> IRET -> ring 3, twice
    mov eax, VEC_NEST
    mov ebx, nest_handler32
    mov cl, ACC_INTGATE | ACC_DPL3
    call idt32_set_gate
    mov dword [nest_count], 0
    RING3_RUN32 u_nest, .b1
.b1:
    CHECK_EQ [exc_vector], VEC_SYSCALL, "ring 3 -> INT -> IRET -> ring 3 (twice) -> INT back"
    CHECK_EQ [nest_count], 2, "nested: handler ran twice"
    CHECK_EQ [nest_esp], kstack0_top - 20, "nested: each entry starts at TSS.ESP0"
    CHECK_EQ [exc_rax], 7, "nested: ring-3 EAX updated by the handler through the frame"
    CHECK_EQ [exc_rbx], SEL_UCODE32 | 3, "nested: still CPL 3 after IRET"
    ret

nest_handler32:
    mov [nest_esp], esp
    inc dword [nest_count]
    inc eax                     ; visible to ring 3: registers are not saved
    iretd

u_nest:
    mov eax, 5
    int VEC_NEST
    int VEC_NEST
    xor ebx, ebx
    mov bx, cs
    int 0x80

; ---- long mode -----------------------------------------------------------------------
long_mode_tests:
    ENTER_LONG_MODE
    call syscall_tests
    call iretq_tests
    call swapgs_tests
    TEST_PASS

bits 64
; STAR: SYSCALL CS = 0x38, SS = 0x40; SYSRET base 0x18 (SDM Vol 2B SYSRET)
STAR_VALUE equ (SEL_UCODE32 << 48) | (SEL_KCODE64 << 32)

syscall_tests:
    ; SYSCALL with EFER.SCE = 0
    TRY syscall
    CHECK_FAULT VEC_UD, NOERR, "SYSCALL with EFER.SCE=0 -> #UD"
    mov ecx, MSR_EFER
    rdmsr
    or eax, EFER_SCE
    wrmsr
    mov ecx, MSR_STAR
    mov rax, STAR_VALUE
    mov rdx, rax
    shr rdx, 32
    wrmsr
    mov ecx, MSR_LSTAR
    mov rax, syscall_entry64
    xor edx, edx
    wrmsr
    mov ecx, MSR_FMASK
    mov eax, FL_DF | FL_TF | FL_IF
    xor edx, edx
    wrmsr
    mov qword [ring3_eflags], 0x2 | FL_IF
    RING3_RUN64 u_syscall64, .b1, SEL_UCODE64
.b1:
    mov qword [ring3_eflags], 0x2
    CHECK_EQ [exc_vector], VEC_SYSCALL, "SYSCALL -> SYSRETQ -> ring 3"
    CHECK_EQ [sc_rcx], u_syscall64.ret, "SYSCALL: RCX = return RIP"
    mov rax, [sc_r11]
    and eax, FL_DF | FL_IF
    CHECK_EQ rax, FL_DF | FL_IF, "SYSCALL: R11 = caller RFLAGS (DF=1, IF=1)"
    mov rax, [sc_rflags]
    and eax, FL_DF | FL_IF | FL_TF
    CHECK_EQ rax, 0, "SYSCALL: RFLAGS &= ~IA32_FMASK (DF, IF cleared)"
    CHECK_EQ [sc_cs], SEL_KCODE64, "SYSCALL: CS = STAR[47:32]"
    CHECK_EQ [sc_ss], SEL_KDATA64, "SYSCALL: SS = STAR[47:32] + 8"
    CHECK_EQ [sc_rsp], ustack_top - 8, "SYSCALL: RSP not switched"
    CHECK_EQ [exc_rax], SEL_UCODE64 | 3, "SYSRETQ: CS = STAR[63:48] + 16, RPL 3"
    CHECK_EQ [exc_rsi], SEL_UDATA | 3, "SYSRETQ: SS = STAR[63:48] + 8, RPL 3"
    mov rax, [exc_rdx]
    and eax, FL_DF | FL_IF
    CHECK_EQ rax, FL_DF | FL_IF, "SYSRETQ: RFLAGS = R11"
    ; SYSRET (32-bit operand size) to compatibility mode
    mov ecx, MSR_LSTAR
    mov rax, syscall_entry_compat
    xor edx, edx
    wrmsr
    RING3_RUN64 u_syscall64, .b2, SEL_UCODE64
.b2:
    CHECK_EQ [exc_vector], VEC_SYSCALL, "SYSCALL -> SYSRETD -> compatibility mode ring 3"
    CHECK_EQ [exc_rax], SEL_UCODE32 | 3, "SYSRETD: CS = STAR[63:48], RPL 3 (32-bit code)"
    CHECK_EQ [exc_rbx], 0x1234, "SYSRETD: ran the compatibility-mode target (ECX)"
    ; SYSRET at CPL 3
    RING3_RUN64 u_sysret, .b3, SEL_UCODE64
.b3:
    CHECK_EQ [exc_vector], VEC_GP, "SYSRET at CPL 3 -> #GP"
    CHECK_EQ [exc_error], 0, "SYSRET at CPL 3 -> #GP(0)"
    ret

syscall_entry64:
    mov [sc_rcx], rcx
    mov [sc_r11], r11
    mov [sc_rsp], rsp
    xor eax, eax
    mov ax, cs
    mov [sc_cs], rax
    mov ax, ss
    mov [sc_ss], rax
    pushfq
    pop qword [sc_rflags]
    o64 sysret

syscall_entry_compat:
    mov ecx, u_compat_target
    mov ebx, 0x1234
    sysret                      ; 32-bit operand size: to compatibility mode

u_syscall64:
    push rax                    ; RSP = ustack_top - 8 at the SYSCALL
    std
    syscall
.ret:
    pushfq
    pop rdx
    cld
    xor eax, eax
    mov ax, cs
    xor esi, esi
    mov si, ss
    int 0x80
u_sysret:
    o64 sysret

bits 32
u_compat_target:
    xor eax, eax
    mov ax, cs
    int 0x80
bits 64

; ---- IRETQ -----------------------------------------------------------------------------
iretq_tests:
    ; same privilege: IRETQ always pops SS:RSP in 64-bit mode
    mov rbx, rsp
    lea rcx, [rsp - 0x100]
    and rcx, -16
    push qword SEL_KDATA
    push rcx
    pushfq
    or qword [rsp], FL_CF
    push qword SEL_KCODE64
    push qword .t1
    clc
    iretq
.t1:
    CHECK_FLAGS FL_CF, FL_CF, "IRETQ same privilege: RFLAGS restored"
    mov rdx, rsp
    CHECK_EQ rdx, rcx, "IRETQ same privilege: RSP loaded from the frame"
    mov rsp, rbx
    ; IRETQ to compatibility mode, CPL 0
    push qword SEL_KDATA
    push rbx
    pushfq
    push qword SEL_KCODE32
    push qword .compat
    iretq
bits 32
.compat:
    xor eax, eax
    mov ax, cs
    mov [compat_cs], eax
    jmp SEL_KCODE64:.back64
bits 64
.back64:
    mov esp, esp
    CHECK_EQ [compat_cs], SEL_KCODE32, "IRETQ to a 32-bit code segment: compatibility mode"
    ; nested: ring 3 -> INT -> ring 0 -> IRETQ -> ring 3, twice
    mov eax, VEC_NEST
    mov rbx, nest_handler64
    mov cl, ACC_INTGATE | ACC_DPL3
    mov ch, 0
    call idt64_set_gate
    mov dword [nest_count], 0
    RING3_RUN64 u_nest64, .b1, SEL_UCODE64
.b1:
    CHECK_EQ [exc_vector], VEC_SYSCALL, "64: ring 3 -> INT -> IRETQ -> ring 3 (twice)"
    CHECK_EQ32 [nest_count], 2, "64 nested: handler ran twice"
    CHECK_EQ32 [nest_esp], kstack0_top - 40, "64 nested: each entry starts at TSS.RSP0"
    CHECK_EQ [exc_rax], 7, "64 nested: ring-3 RAX updated by the handler"
    ret

nest_handler64:
    mov [nest_esp], esp
    inc dword [nest_count]
    inc rax
    iretq

u_nest64:
    mov eax, 5
    int VEC_NEST
    int VEC_NEST
    int 0x80

; ---- SWAPGS and segment bases ------------------------------------------------------------
swapgs_tests:
    mov qword [gs_a], 0xAAAA
    mov qword [gs_b], 0xBBBB
    mov ecx, MSR_GS_BASE
    mov eax, gs_a
    xor edx, edx
    wrmsr
    mov ecx, MSR_KERNEL_GS_BASE
    mov eax, gs_b
    wrmsr
    mov rax, [gs:0]
    CHECK_EQ rax, 0xAAAA, "GS base from IA32_GS_BASE"
    swapgs
    mov rax, [gs:0]
    CHECK_EQ rax, 0xBBBB, "SWAPGS: GS base = old IA32_KERNEL_GS_BASE"
    mov ecx, MSR_KERNEL_GS_BASE
    rdmsr
    CHECK_EQ rax, gs_a, "SWAPGS: IA32_KERNEL_GS_BASE = old GS base"
    mov ecx, MSR_GS_BASE
    rdmsr
    CHECK_EQ rax, gs_b, "SWAPGS: IA32_GS_BASE reads the new base"
    swapgs
    mov rax, [gs:0]
    CHECK_EQ rax, 0xAAAA, "SWAPGS twice: back to the original"
    ; loading FS with a selector sets FS.base from the descriptor
    mov ecx, MSR_FS_BASE
    mov eax, 0x12345000
    xor edx, edx
    wrmsr
    mov ax, SEL_KDATA
    mov fs, ax
    mov ecx, MSR_FS_BASE
    rdmsr
    shl rdx, 32
    or rax, rdx
    CHECK_EQ rax, 0, "mov fs, selector: IA32_FS_BASE = descriptor base (0)"
    RING3_RUN64 u_swapgs, .b1, SEL_UCODE64
.b1:
    CHECK_EQ [exc_vector], VEC_GP, "SWAPGS at CPL 3 -> #GP"
    CHECK_EQ [exc_error], 0, "SWAPGS at CPL 3 -> #GP(0)"
    push qword SEL_KCODE32
    push qword .compat
    o64 retf
bits 32
.compat:
    TRY db 0x0F, 0x01, 0xF8     ; swapgs
    jmp SEL_KCODE64:.back64
bits 64
.back64:
    mov esp, esp
    CHECK_FAULT VEC_UD, NOERR, "SWAPGS in compatibility mode -> #UD"
    ret

u_swapgs:
    swapgs
    int 0x80
