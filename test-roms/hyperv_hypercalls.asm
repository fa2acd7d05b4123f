; hyperv_hypercalls.asm — the hypercall dispatcher through the hypercall
; page (TLFS 3): one check per status code path of the input value and of
; the memory and register conventions, then what the implemented calls do:
;
;   HV_STATUS_INVALID_HYPERCALL_CODE for unknown codes; _INVALID_HYPERCALL_INPUT
;     for reserved bits, rep counts on simple calls, rep calls without reps,
;     a start index past the count, a variable header where none is taken,
;     a memory-only call made fast (TLFS 3.7, 3.12);
;   HV_STATUS_INVALID_ALIGNMENT for misaligned, page-crossing and
;     out-of-RAM input GPAs (TLFS 3.6);
;   HV_STATUS_INVALID_PARAMETER for reserved flush flags, bad IPI vectors,
;     bad message types and sizes; HV_STATUS_INVALID_CONNECTION_ID for a
;     connection nobody offers (TLFS 11.11);
;   rep hypercalls: reps completed = rep count (however many continuations
;     the hypervisor needed) and a start index honoured;
;   TLB flushes: a changed PDE is seen after HvCallFlushVirtualAddressList,
;     HvCallFlushVirtualAddressSpace (memory and XMM-fast form) and the Ex
;     forms, without INVLPG (TLFS 9.4);
;   HvCallNotifyLongSpinWait and a cluster IPI to no VP succeed.

%define ROM_NAME "hyperv_hypercalls"
%include "rom.inc"
%include "hyperv.inc"

; A 2 MiB window whose PDE the flush tests retarget between two markers.
; The markers sit 0x80000 into the pages: linear page 0x80080 takes soft-TLB
; slot 0x80 (page mod 256), which none of the image's pages at 1 MiB
; (slots 0x00 onwards) evicts, so the old translation stays cached until a
; flush (at offset 0 the image's first page shared the slot and every
; remap showed through at once, flush or not).
WINDOW          equ 0x80000000
PAGE_A          equ 0x00600000
PAGE_B          equ 0x00800000
MARKER_OFFSET   equ 0x80000
MARKER_A        equ 0x2AAA5555
MARKER_B        equ 0x3BBB6666
WINDOW_PDE      equ lm_pd + (WINDOW >> 21) * 8

section .bss
alignb 8
saved_pde:      resq 1

section .text
bits 32
test_main:
    ENTER_LONG_MODE
    call hv_enable_hypercalls
    call input_value_tests
    call gpa_tests
    call parameter_tests
    call rep_tests
    call flush_tests
    call misc_call_tests
    TEST_PASS

bits 64
; ---- The hypercall input value ------------------------------------------------------
input_value_tests:
    ; An input block the flushes below accept: no flags, processor mask 1.
    mov qword [hv_input_page], 0
    mov qword [hv_input_page + 8], 0
    mov qword [hv_input_page + 16], 1
    mov eax, WINDOW             ; above 2 GiB: no sign-extended immediates
    mov [hv_input_page + 24], rax
    HVS 0x0001, 0, 0, HV_STATUS_INVALID_HYPERCALL_CODE, "call code 0x0001 -> INVALID_HYPERCALL_CODE"
    HVS 0x7FFF | HV_FAST, 0, 0, HV_STATUS_INVALID_HYPERCALL_CODE, "call code 0x7FFF -> INVALID_HYPERCALL_CODE"
    HVS HVCALL_SPIN_WAIT | HV_FAST | (1 << 27), 0, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "RsvdZ bit 27 -> INVALID_HYPERCALL_INPUT"
    HVS HVCALL_SPIN_WAIT | HV_FAST | (1 << 46), 0, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "RsvdZ bit 46 -> INVALID_HYPERCALL_INPUT"
    HVS HVCALL_SPIN_WAIT | HV_FAST | (1 << 62), 0, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "RsvdZ bit 62 -> INVALID_HYPERCALL_INPUT"
    HVS HVCALL_SPIN_WAIT | HV_FAST | HV_REPS(1, 0), 0, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "rep count on a simple call -> INVALID_HYPERCALL_INPUT"
    HVS HVCALL_SPIN_WAIT | HV_FAST | HV_REPS(0, 1), 0, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "rep start on a simple call -> INVALID_HYPERCALL_INPUT"
    HVS HVCALL_FLUSH_LIST, hv_input_page, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "rep call with rep count 0 -> INVALID_HYPERCALL_INPUT"
    HVS HVCALL_FLUSH_LIST | HV_REPS(1, 1), hv_input_page, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "rep start index = rep count -> INVALID_HYPERCALL_INPUT"
    HVS HVCALL_FLUSH_SPACE | HV_VARHEAD(1), hv_input_page, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "variable header on a fixed-header call -> INVALID_HYPERCALL_INPUT"
    HVS HVCALL_POST_MESSAGE | HV_FAST, 0, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "HvCallPostMessage made fast -> INVALID_HYPERCALL_INPUT"
    ret

; ---- Input GPAs ------------------------------------------------------------------------------
gpa_tests:
    HVS HVCALL_FLUSH_SPACE, hv_input_page + 4, 0, HV_STATUS_INVALID_ALIGNMENT, "input GPA not 8-byte aligned -> INVALID_ALIGNMENT"
    HVS HVCALL_FLUSH_SPACE, hv_input_page + 4096 - 16, 0, HV_STATUS_INVALID_ALIGNMENT, "input block crossing a page -> INVALID_ALIGNMENT"
    mov rax, 0x0000800000000000
    HVS HVCALL_FLUSH_SPACE, rax, 0, HV_STATUS_INVALID_ALIGNMENT, "input GPA beyond RAM -> INVALID_ALIGNMENT"
    HVS HVCALL_FLUSH_LIST | HV_REPS(510, 0), hv_input_page, 0, HV_STATUS_INVALID_ALIGNMENT, "rep list running off its page -> INVALID_ALIGNMENT"
    ; The output GPA of a call without output is ignored.
    mov rax, 0xFFFFFFFFFFFFFFF3
    HVS HVCALL_FLUSH_SPACE, hv_input_page, rax, HV_STATUS_SUCCESS, "output GPA of a call without output is ignored"
    ret

; ---- Parameters --------------------------------------------------------------------------------
parameter_tests:
    mov qword [hv_input_page + 8], 1 << 3      ; extended GVA ranges: not offered
    HVS HVCALL_FLUSH_SPACE, hv_input_page, 0, HV_STATUS_INVALID_PARAMETER, "reserved flush flag -> INVALID_PARAMETER"
    mov qword [hv_input_page + 8], 1 << 2      ; NON_GLOBAL_MAPPINGS_ONLY
    HVS HVCALL_FLUSH_LIST | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_INVALID_PARAMETER, "NON_GLOBAL_MAPPINGS_ONLY on a list flush -> INVALID_PARAMETER"
    mov qword [hv_input_page + 8], 0
    HVS HVCALL_SEND_IPI | HV_FAST, 0x0F, 1, HV_STATUS_INVALID_PARAMETER, "cluster IPI with vector 0x0F -> INVALID_PARAMETER"
    HVS HVCALL_SEND_IPI | HV_FAST, 0x100, 1, HV_STATUS_INVALID_PARAMETER, "cluster IPI with vector 0x100 -> INVALID_PARAMETER"
    ; HvCallPostMessage: connection 0x123456, type 1, 8 bytes.
    mov qword [hv_input_page + 0x100], 0x123456
    mov rax, (8 << 32) | 1
    mov [hv_input_page + 0x108], rax
    HVS HVCALL_POST_MESSAGE, hv_input_page + 0x100, 0, HV_STATUS_INVALID_CONNECTION_ID, "HvCallPostMessage to an unknown connection -> INVALID_CONNECTION_ID"
    mov rax, (8 << 32) | 0x80000001
    mov [hv_input_page + 0x108], rax
    HVS HVCALL_POST_MESSAGE, hv_input_page + 0x100, 0, HV_STATUS_INVALID_PARAMETER, "HvCallPostMessage with the type's top bit set -> INVALID_PARAMETER"
    mov rax, (241 << 32) | 1
    mov [hv_input_page + 0x108], rax
    HVS HVCALL_POST_MESSAGE, hv_input_page + 0x100, 0, HV_STATUS_INVALID_PARAMETER, "HvCallPostMessage with 241 payload bytes -> INVALID_PARAMETER"
    HVS HVCALL_SIGNAL_EVENT | HV_FAST, 0x123456, 0, HV_STATUS_INVALID_CONNECTION_ID, "HvCallSignalEvent to an unknown connection -> INVALID_CONNECTION_ID"
    mov qword [hv_input_page + 0x200], 0x123456
    HVS HVCALL_SIGNAL_EVENT, hv_input_page + 0x200, 0, HV_STATUS_INVALID_CONNECTION_ID, "HvCallSignalEvent from memory -> INVALID_CONNECTION_ID"
    ret

; ---- Rep hypercalls ---------------------------------------------------------------------------
rep_tests:
    ; 300 GVA ranges, every processor: more than one continuation's worth
    ; on some hypervisors, none on others; the caller sees the same result.
    mov qword [hv_input_page], 0
    mov qword [hv_input_page + 8], HV_FLUSH_ALL_PROCESSORS
    mov qword [hv_input_page + 16], 0
    mov ecx, 300
    lea rdi, [hv_input_page + 24]
    mov eax, WINDOW
.fill:
    mov [rdi], rax
    add rdi, 8
    add rax, 4096
    dec ecx
    jnz .fill
    mov rbx, HVCALL_FLUSH_LIST | HV_REPS(300, 0)
    HVS rbx, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressList with 300 reps -> success"
    CHECK_REPS 300, "reps completed = 300"
    ; RCX may carry a new start index, never a new count or call code.
    mov rax, rcx
    mov rdx, ~(0xFFF << 48)
    and rax, rdx
    CHECK_EQ rax, rbx, "continuations change only the rep start index of RCX"
    mov rbx, HVCALL_FLUSH_LIST | HV_REPS(300, 250)
    HVS rbx, hv_input_page, 0, HV_STATUS_SUCCESS, "rep call started at index 250 -> success"
    CHECK_REPS 300, "reps completed counts from 0, not from the start index"
    ret

; ---- TLB flushes -----------------------------------------------------------------------------
; RAX = the dword the window shows.
read_window:
    mov eax, WINDOW + MARKER_OFFSET
    mov eax, [rax]
    ret

; Points WINDOW at physical page EAX and requires the window to show the
; old page still: only a flush may make the new one appear.
remap_window:
    push rbx
    push rax
    call read_window
    mov ebx, eax                ; what the window shows now
    pop rax
    call set_window
    call read_window
    cmp eax, ebx
    pop rbx
    je .stale
    TEST_FAIL "the window changed before any flush (the TLB must hold the old translation for the flush checks to mean anything)"
.stale:
    ret

; Points WINDOW at physical page EAX without flushing anything.
set_window:
    or eax, PTE_P | PTE_RW | PTE_PS
    mov [WINDOW_PDE], rax
    ret

flush_tests:
    mov dword [PAGE_A + MARKER_OFFSET], MARKER_A
    mov dword [PAGE_B + MARKER_OFFSET], MARKER_B
    mov rax, [WINDOW_PDE]
    mov [saved_pde], rax
    mov eax, PAGE_A
    call set_window
    mov eax, WINDOW
    invlpg [rax]
    call read_window
    CHECK_EQ rax, MARKER_A, "window shows page A"

    ; HvCallFlushVirtualAddressList for the window (this VP only).
    mov eax, PAGE_B
    call remap_window
    mov qword [hv_input_page], 0
    mov qword [hv_input_page + 8], 0
    mov qword [hv_input_page + 16], 1
    mov eax, WINDOW
    mov [hv_input_page + 24], rax
    HVS HVCALL_FLUSH_LIST | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressList -> success"
    call read_window
    CHECK_EQ rax, MARKER_B, "after the list flush the window shows page B"

    ; HvCallFlushVirtualAddressSpace, all address spaces.
    mov eax, PAGE_A
    call remap_window
    mov qword [hv_input_page + 8], HV_FLUSH_ALL_SPACES
    HVS HVCALL_FLUSH_SPACE, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpace -> success"
    call read_window
    CHECK_EQ rax, MARKER_A, "after the space flush the window shows page A"

    ; The same, XMM-fast: address space in RDX, flags in R8, mask in XMM0.
    call hv_enable_sse
    mov eax, PAGE_B
    call remap_window
    mov eax, 1
    movq xmm0, rax
    HVS HVCALL_FLUSH_SPACE | HV_FAST, 0, HV_FLUSH_ALL_SPACES, HV_STATUS_SUCCESS, "XMM-fast HvCallFlushVirtualAddressSpace -> success"
    call read_window
    CHECK_EQ rax, MARKER_B, "after the XMM-fast flush the window shows page B"

    ; HvCallFlushVirtualAddressListEx with a sparse VP set {0}.
    mov eax, PAGE_A
    call remap_window
    mov qword [hv_input_page + 8], 0
    mov qword [hv_input_page + 16], 0          ; HV_GENERIC_SET_SPARSE_4K
    mov qword [hv_input_page + 24], 1          ; valid banks: bank 0
    mov qword [hv_input_page + 32], 1          ; bank 0: VP 0
    mov eax, WINDOW
    mov [hv_input_page + 40], rax
    HVS HVCALL_FLUSH_LIST_EX | HV_VARHEAD(1) | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressListEx -> success"
    call read_window
    CHECK_EQ rax, MARKER_A, "after the Ex list flush the window shows page A"
    HVS HVCALL_FLUSH_LIST_EX | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "Ex VP set without its bank in the variable header -> INVALID_HYPERCALL_INPUT"

    ; HvCallFlushVirtualAddressSpaceEx with the set of all VPs.
    mov eax, PAGE_B
    call remap_window
    mov qword [hv_input_page + 16], 1          ; HV_GENERIC_SET_ALL
    mov qword [hv_input_page + 24], 0
    HVS HVCALL_FLUSH_SPACE_EX, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpaceEx -> success"
    call read_window
    CHECK_EQ rax, MARKER_B, "after the Ex space flush the window shows page B"

    mov rax, [saved_pde]
    mov [WINDOW_PDE], rax
    mov eax, WINDOW
    invlpg [rax]
    ret

; ---- Other calls ---------------------------------------------------------------------------------
misc_call_tests:
    HVS HVCALL_SPIN_WAIT | HV_FAST, 0x1000, 0, HV_STATUS_SUCCESS, "HvCallNotifyLongSpinWait -> success"
    HVS HVCALL_SEND_IPI | HV_FAST, 0x40, 0, HV_STATUS_SUCCESS, "cluster IPI to an empty processor mask -> success"
    mov qword [hv_input_page], 0x41
    mov qword [hv_input_page + 8], 0            ; sparse set, no banks
    mov qword [hv_input_page + 16], 0
    HVS HVCALL_SEND_IPI_EX, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallSendSyntheticClusterIpiEx to an empty set -> success"
    ret
