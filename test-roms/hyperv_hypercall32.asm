; hyperv_hypercall32.asm — the x86 (32-bit) hypercall calling convention
; (TLFS v6.0b 3.7, 3.8, "Volatile Registers"): from 32-bit protected mode
; the hypercall page is called with the input value in EDX:EAX, the input
; GPA or first fast parameter in EBX:ECX, the output GPA or second fast
; parameter in EDI:ESI, XMM0-XMM5 for XMM-fast input, and the result comes
; back in EDX:EAX (reps completed in EDX bits 11:0); EBX, ECX, EDI and ESI
; are left alone.
;
; Each check is chosen so that a hypervisor reading the wrong register or
; the halves the wrong way round gets a different status:
;   EDX carries the input value's high half (a rep count on a simple call,
;     a RsvdZ bit 63);
;   EBX is the high half of the input GPA (EBX=1 puts the block beyond RAM);
;   EBX:ECX as the first fast parameter (HvCallSignalEvent: ECX =
;     connection, EBX = flag and RsvdZ; HvCallSendSyntheticClusterIpi: ECX =
;     vector, EBX = target VTL);
;   EDI:ESI as the second (the cluster IPI's processor mask: ESI bit 0 is
;     VP 0 and interrupts the caller, EDI bit 0 is VP 32);
;   slow calls: HvCallPostMessage and HvCallSignalEvent to an unknown
;     connection, misaligned input, an output GPA that is ignored;
;   under 32-bit paging (4 MiB pages): HvCallFlushVirtualAddressList and
;     ...Space (memory) and ...Space XMM-fast make a changed PDE visible
;     without INVLPG (the window reads the old page until then), and EDI is
;     the high half of the flags (bit 32 reserved); 100 reps come back as 100 in EDX across continuations,
;     and a start index is honoured;
;   in compatibility mode (EFER.LMA=1, CS.L=0) the x86 convention applies,
;     in 64-bit mode the x64 one (RCX): the mode is EFER.LMA and CS.L.

%define ROM_NAME "hyperv_hypercall32"
%include "rom.inc"
%include "hyperv.inc"
%include "timing.inc"

VEC_IPI         equ 0x61

; A 4 MiB window whose PDE the flush tests retarget between two markers.
; The markers sit 0x80000 into the pages: linear page 0x80080 takes soft-TLB
; slot 0x80 (page mod 256), which none of the image's pages at 1 MiB
; (slots 0x00 onwards) evicts.
WINDOW          equ 0x80000000
PAGE_A          equ 0x00800000
PAGE_B          equ 0x00C00000
MARKER_OFFSET   equ 0x80000
MARKER_A        equ 0x2AAA5555
MARKER_B        equ 0x3BBB6666

section .bss
alignb 4096
pd32:           resb 4096       ; 1024 PDEs of 4 MiB: identity but for WINDOW
alignb 4
ipi_count:      resd 1
compat_lo:      resd 1          ; EDX:EAX after the call in compatibility mode
compat_hi:      resd 1

section .text
bits 32
test_main:
    call enable_hypercalls32
    call input_value_tests
    call slow_call_tests
    call fast_call_tests
    call ipi_mask_tests
    call paging_on
    call flush_tests
    call rep_tests
    call paging_off
    jmp mode_tests              ; ends in long mode with TEST_PASS

; HV32 control, input, output: a call with 32-bit input and output GPAs or
; parameters (EBX = EDI = 0); `control` is a 64-bit constant.
%macro HV32 3
    mov eax, (%1) & 0xFFFFFFFF
    mov edx, (%1) >> 32
    xor ebx, ebx
    mov ecx, %2
    xor edi, edi
    mov esi, %3
    call hv_hypercall_page
%endmacro

; CHECK_RESULT32 status, reps, "name": the hypercall result value in
; EDX:EAX, status in EAX 15:0 and reps completed in EDX 11:0 (the other
; bits are for callers to ignore). Registers preserved.
%macro CHECK_RESULT32 3
    push eax
    movzx eax, ax
    CHECK_EQ eax, %1, {%3}
    mov eax, edx
    and eax, 0xFFF
    CHECK_EQ eax, %2, {%3, " (EDX)"}
    pop eax
%endmacro

; HV32S control, input, output, status, "name": call, check EDX:EAX.
%macro HV32S 5
    HV32 %1, %2, %3
    CHECK_RESULT32 %4, 0, %5
%endmacro

enable_hypercalls32:
    mov ecx, HV_MSR_GUEST_OS_ID
    xor eax, eax
    mov edx, HV_GUEST_OS_ID_VALUE >> 32
    wrmsr
    mov ecx, HV_MSR_HYPERCALL
    mov eax, hv_hypercall_page + 1
    xor edx, edx
    wrmsr
    ret

; ---- The input value in EDX:EAX, the result in EDX:EAX --------------------------------------------------
input_value_tests:
    HV32S 0x0001, 0, 0, HV_STATUS_INVALID_HYPERCALL_CODE, "call code 0x0001 from 32-bit mode -> INVALID_HYPERCALL_CODE in EDX:EAX"
    HV32S 0x7FFF | HV_FAST, 0, 0, HV_STATUS_INVALID_HYPERCALL_CODE, "call code 0x7FFF (fast) -> INVALID_HYPERCALL_CODE"

    ; The registers that carry input stay as they were.
    mov eax, 0x0001
    xor edx, edx
    mov ebx, 0x11111111
    mov ecx, 0x22222222
    mov edi, 0x33333333
    mov esi, 0x44444444
    mov ebp, 0x55555555
    call hv_hypercall_page
    CHECK_EQ ebx, 0x11111111, "EBX survives the hypercall"
    CHECK_EQ ecx, 0x22222222, "ECX survives the hypercall"
    CHECK_EQ edi, 0x33333333, "EDI survives the hypercall"
    CHECK_EQ esi, 0x44444444, "ESI survives the hypercall"
    CHECK_EQ ebp, 0x55555555, "EBP survives the hypercall"

    HV32S HVCALL_SPIN_WAIT | HV_FAST, 0x100, 0, HV_STATUS_SUCCESS, "HvCallNotifyLongSpinWait, EDX = 0 -> success"
    HV32S HVCALL_SPIN_WAIT | HV_FAST | HV_REPS(1, 0), 0x100, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "EDX = 1 (rep count 1 on a simple call) -> INVALID_HYPERCALL_INPUT"
    HV32S HVCALL_SPIN_WAIT | HV_FAST | (1 << 63), 0x100, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "EDX bit 31 (RsvdZ bit 63) -> INVALID_HYPERCALL_INPUT"
    ret

; ---- Slow calls: input GPA in EBX:ECX, output GPA in EDI:ESI ----------------------------------------------
slow_call_tests:
    ; HvCallPostMessage: connection 0x123456, type 1, 8 bytes.
    mov dword [hv_input_page], 0x123456
    mov dword [hv_input_page + 4], 0
    mov dword [hv_input_page + 8], 1
    mov dword [hv_input_page + 12], 8
    HV32S HVCALL_POST_MESSAGE, hv_input_page, 0, HV_STATUS_INVALID_CONNECTION_ID, "HvCallPostMessage (input GPA in EBX:ECX) to an unknown connection -> INVALID_CONNECTION_ID"
    mov eax, HVCALL_POST_MESSAGE
    xor edx, edx
    mov ebx, 1                  ; GPA 4 GiB + the page: beyond RAM
    mov ecx, hv_input_page
    xor edi, edi
    xor esi, esi
    call hv_hypercall_page
    CHECK_RESULT32 HV_STATUS_INVALID_ALIGNMENT, 0, "EBX = 1 (input GPA above 4 GiB, beyond RAM) -> INVALID_ALIGNMENT"
    HV32S HVCALL_POST_MESSAGE, hv_input_page + 4, 0, HV_STATUS_INVALID_ALIGNMENT, "ECX not 8-byte aligned -> INVALID_ALIGNMENT"
    mov eax, HVCALL_POST_MESSAGE
    xor edx, edx
    xor ebx, ebx
    mov ecx, hv_input_page
    mov edi, 0xFFFFFFFF
    mov esi, 0xFFFFFFF3
    call hv_hypercall_page
    CHECK_RESULT32 HV_STATUS_INVALID_CONNECTION_ID, 0, "an output GPA in EDI:ESI the call does not use is ignored"
    mov dword [hv_input_page + 0x100], 0x123456
    mov dword [hv_input_page + 0x104], 0
    HV32S HVCALL_SIGNAL_EVENT, hv_input_page + 0x100, 0, HV_STATUS_INVALID_CONNECTION_ID, "HvCallSignalEvent from memory -> INVALID_CONNECTION_ID"
    HV32S HVCALL_POST_MESSAGE | HV_FAST, 0, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "HvCallPostMessage made fast -> INVALID_HYPERCALL_INPUT"
    ret

; ---- Fast calls: EBX:ECX and EDI:ESI are the parameters ----------------------------------------------------
fast_call_tests:
    ; HvCallSignalEvent: ConnectionId (ECX), FlagNumber (EBX 15:0), RsvdZ (EBX 31:16).
    HV32S HVCALL_SIGNAL_EVENT | HV_FAST, 5, 0, HV_STATUS_INVALID_CONNECTION_ID, "fast HvCallSignalEvent, ECX = connection 5 -> INVALID_CONNECTION_ID"
    mov eax, HVCALL_SIGNAL_EVENT | HV_FAST
    xor edx, edx
    mov ebx, 0x00010000         ; RsvdZ (were the halves swapped: connection 0x10000)
    mov ecx, 5
    xor edi, edi
    xor esi, esi
    call hv_hypercall_page
    CHECK_RESULT32 HV_STATUS_INVALID_PARAMETER, 0, "fast HvCallSignalEvent, EBX = 0x10000 (its RsvdZ half) -> INVALID_PARAMETER"
    ; HvCallSendSyntheticClusterIpi: Vector (ECX), TargetVtl (EBX 7:0).
    HV32S HVCALL_SEND_IPI | HV_FAST, 0x0F, 0, HV_STATUS_INVALID_PARAMETER, "fast cluster IPI, ECX = vector 0x0F -> INVALID_PARAMETER"
    mov eax, HVCALL_SEND_IPI | HV_FAST
    xor edx, edx
    mov ebx, 0x20               ; TargetVtl RsvdZ bit
    mov ecx, VEC_IPI
    xor edi, edi
    xor esi, esi
    call hv_hypercall_page
    CHECK_RESULT32 HV_STATUS_INVALID_PARAMETER, 0, "fast cluster IPI, EBX = 0x20 (TargetVtl RsvdZ) -> INVALID_PARAMETER"
    ret

; The cluster IPI's processor mask is the second parameter, EDI:ESI.
ipi_mask_tests:
    call pic_mask_all
    mov eax, VEC_IPI
    mov ebx, ipi_isr
    mov cl, ACC_INTGATE
    call idt32_set_gate
    or dword [LAPIC_SVR], 0x1FF
    mov eax, HVCALL_SEND_IPI | HV_FAST
    xor edx, edx
    xor ebx, ebx
    mov ecx, VEC_IPI
    xor edi, edi
    mov esi, 1                  ; VP 0: this one
    call hv_hypercall_page
    CHECK_RESULT32 HV_STATUS_SUCCESS, 0, "fast cluster IPI, ESI = 1 (VP 0) -> success"
    call take_interrupts
    CHECK_EQ32 [ipi_count], 1, "ESI bit 0 names VP 0: the caller takes the IPI"
    mov eax, HVCALL_SEND_IPI | HV_FAST
    xor edx, edx
    xor ebx, ebx
    mov ecx, VEC_IPI
    mov edi, 1                  ; VP 32: none
    xor esi, esi
    call hv_hypercall_page
    CHECK_RESULT32 HV_STATUS_SUCCESS, 0, "fast cluster IPI, EDI = 1 (VP 32) -> success"
    call take_interrupts
    CHECK_EQ32 [ipi_count], 1, "EDI bit 0 names VP 32, not VP 0: no IPI"
    ret

; A window with IF=1 for a pending interrupt to come in.
take_interrupts:
    push ecx
    sti
    mov ecx, 10000
.spin:
    pause
    loop .spin
    cli
    pop ecx
    ret

ipi_isr:
    inc dword [ipi_count]
    mov dword [LAPIC_EOI], 0
    iretd

; ---- 32-bit paging and the flush calls ------------------------------------------------------------------
; Identity map of 4 GiB with 4 MiB pages (CR4.PSE), SSE on for XMM input.
paging_on:
    xor ecx, ecx
.pde:
    mov eax, ecx
    shl eax, 22
    or eax, PTE_P | PTE_RW | PTE_PS
    mov [pd32 + ecx * 4], eax
    inc ecx
    cmp ecx, 1024
    jb .pde
    mov dword [PAGE_A + MARKER_OFFSET], MARKER_A
    mov dword [PAGE_B + MARKER_OFFSET], MARKER_B
    mov eax, cr4
    or eax, CR4_PSE | CR4_OSFXSR
    mov cr4, eax
    mov eax, pd32
    mov cr3, eax
    mov eax, cr0
    and eax, ~CR0_EM
    or eax, CR0_PG | CR0_MP
    mov cr0, eax
    ret

paging_off:
    mov eax, cr0
    and eax, ~CR0_PG
    mov cr0, eax
    ret

; Points WINDOW at physical 4 MiB page EAX without flushing anything.
set_window:
    or eax, PTE_P | PTE_RW | PTE_PS
    mov [pd32 + (WINDOW >> 22) * 4], eax
    ret

read_window:
    mov eax, [WINDOW + MARKER_OFFSET]
    ret

; Points WINDOW at physical page EAX and requires the window to show the
; old page still: the TLB holds the translation, so only a flush can make
; the new page appear (without this the flush checks would prove nothing).
remap_window:
    push ebx
    push eax
    call read_window
    mov ebx, eax                ; what the window shows now
    pop eax
    call set_window
    call read_window
    cmp eax, ebx
    pop ebx
    je .stale
    TEST_FAIL "the window changed before any flush (the TLB must hold the old translation for the flush checks to mean anything)"
.stale:
    ret

; The flush input header: address space = CR3, flags 0, processor mask {VP 0}.
flush_header:
    mov eax, cr3
    mov [hv_input_page], eax
    mov dword [hv_input_page + 4], 0
    mov dword [hv_input_page + 8], 0
    mov dword [hv_input_page + 12], 0
    mov dword [hv_input_page + 16], 1
    mov dword [hv_input_page + 20], 0
    ret

flush_tests:
    mov eax, PAGE_A
    call set_window
    invlpg [WINDOW + MARKER_OFFSET]
    call read_window
    CHECK_EQ eax, MARKER_A, "under 32-bit paging the window shows page A"
    mov eax, PAGE_B
    call remap_window
    ; The entry names another 4 KiB of the 4 MiB page: the whole large
    ; page goes (TLFS 9.4).
    call flush_header
    mov dword [hv_input_page + 24], WINDOW + 0x200000
    mov dword [hv_input_page + 28], 0
    HV32 HVCALL_FLUSH_LIST | HV_REPS(1, 0), hv_input_page, 0
    CHECK_RESULT32 HV_STATUS_SUCCESS, 1, "HvCallFlushVirtualAddressList from 32-bit mode -> success, 1 rep completed in EDX"
    call read_window
    CHECK_EQ eax, MARKER_B, "after a list flush of another 4 KiB of the large page the window shows page B"

    mov eax, PAGE_A
    call remap_window
    call flush_header
    HV32S HVCALL_FLUSH_SPACE, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpace from 32-bit mode -> success"
    call read_window
    CHECK_EQ eax, MARKER_A, "after the space flush the window shows page A"

    ; XMM fast: address space in EBX:ECX, flags in EDI:ESI, mask in XMM0.
    mov eax, PAGE_B
    call remap_window
    mov eax, 1
    movd xmm0, eax
    mov eax, HVCALL_FLUSH_SPACE | HV_FAST
    xor edx, edx
    xor ebx, ebx
    mov ecx, cr3
    xor edi, edi
    xor esi, esi
    call hv_hypercall_page
    CHECK_RESULT32 HV_STATUS_SUCCESS, 0, "XMM-fast HvCallFlushVirtualAddressSpace from 32-bit mode -> success"
    call read_window
    CHECK_EQ eax, MARKER_B, "after the XMM-fast flush the window shows page B"
    mov eax, HVCALL_FLUSH_SPACE | HV_FAST
    xor edx, edx
    xor ebx, ebx
    mov ecx, cr3
    mov edi, 1                  ; flags bit 32: reserved
    xor esi, esi
    call hv_hypercall_page
    CHECK_RESULT32 HV_STATUS_INVALID_PARAMETER, 0, "XMM-fast flush with EDI = 1 (flag bit 32, reserved) -> INVALID_PARAMETER"
    ret

; 100 GVAs: more than one batch here, so the call continues through EDX:EAX.
rep_tests:
    call flush_header
    mov edi, hv_input_page + 24
    mov eax, WINDOW
    mov ecx, 100
.fill:
    mov [edi], eax
    mov dword [edi + 4], 0
    add edi, 8
    add eax, 4096
    loop .fill
    HV32 HVCALL_FLUSH_LIST | HV_REPS(100, 0), hv_input_page, 0
    CHECK_RESULT32 HV_STATUS_SUCCESS, 100, "HvCallFlushVirtualAddressList with 100 reps -> success, 100 completed in EDX"
    CHECK_EQ ecx, hv_input_page, "ECX (input GPA) unchanged by the continuations"
    HV32 HVCALL_FLUSH_LIST | HV_REPS(100, 60), hv_input_page, 0
    CHECK_RESULT32 HV_STATUS_SUCCESS, 100, "the same started at index 60 (EDX bits 27:16) -> 100 completed"
    ret

; ---- The caller's mode picks the convention ---------------------------------------------------------------
; In compatibility mode RCX holds a valid x64 input value and EDX:EAX an
; unknown call code: the x86 convention answers INVALID_HYPERCALL_CODE.
; In 64-bit mode it is the other way round. Reached by a jump: it ends the
; ROM in long mode.
mode_tests:
    ENTER_LONG_MODE
    push qword SEL_KCODE32
    push qword .compat
    o64 retf                    ; CS.L = 0: compatibility mode
bits 32
.compat:
    mov eax, 0x0001
    xor edx, edx
    mov ecx, HVCALL_SPIN_WAIT | HV_FAST
    xor ebx, ebx
    xor edi, edi
    xor esi, esi
    call hv_hypercall_page
    mov [compat_lo], eax
    mov [compat_hi], edx
    jmp SEL_KCODE64:.long64
bits 64
.long64:
    CHECK_EQ32 [compat_lo], HV_STATUS_INVALID_HYPERCALL_CODE, "compatibility mode (LMA=1, CS.L=0) uses EDX:EAX: INVALID_HYPERCALL_CODE"
    CHECK_EQ32 [compat_hi], 0, "compatibility mode: the result's high half in EDX"
    mov rax, HVCALL_SPIN_WAIT | HV_FAST
    xor edx, edx
    HVCALL 0x0001, 0, 0
    CHECK_HVSTATUS HV_STATUS_INVALID_HYPERCALL_CODE, "64-bit mode uses RCX: INVALID_HYPERCALL_CODE"
    TEST_PASS
