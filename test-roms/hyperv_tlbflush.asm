; hyperv_tlbflush.asm — the TLB flush hypercalls (TLFS v6.0b 9.4) acting on
; ANOTHER virtual processor. Run with two vCPUs (ROM_CPUS=2: --cpus 2).
;
; Both vCPUs run in long mode on the same page tables. A test window at
; 512 GiB maps two linear pages, X_N (non-global) and X_G (global, CR4.PGE
; on the AP), through a 4 KiB page table the BSP rewrites. Each round:
;   VP 1 INVLPGs and reads the window: page A;
;   VP 0 points both PTEs at page B without any INVLPG on VP 1;
;   VP 1 reads again: still page A (its TLB holds the translation; without
;     that the round could not tell a flush from no flush, so it is required);
;   VP 0 makes the flush hypercall naming VP 1;
;   VP 1 reads again: page B — "the observable effects of all flushes on the
;     specified virtual processors have occurred" when the call returns.
; Covered: HvCallFlushVirtualAddressSpace (processor mask, ALL_PROCESSORS,
; ALL_VIRTUAL_ADDRESS_SPACES, NON_GLOBAL_MAPPINGS_ONLY, XMM-fast), ...List
; (one page, several entries with a global one and a non-canonical one,
; the additional-page count
; in bits 11:0, 100 reps with continuations), ...SpaceEx and ...ListEx
; (HV_VP_SET sparse with one and two banks, and the ALL format), code VP 1
; executes through a third window page (X_C; the flush must also reach what
; it decoded from the old page), a flush VP 1 makes for VP 0, flushes of
; the caller only, and the status codes of
; malformed Ex inputs and of rep counts on the flush calls. A set that
; leaves VP 1 out may still flush it (a TLB may drop entries at any time),
; so those rounds print a note, not a check; the same for global pages
; after a NON_GLOBAL_MAPPINGS_ONLY flush.
;
; The AP is started with INIT/SIPI/SIPI into a real-mode trampoline (as in
; hyperv_smp), enters long mode itself and then runs commands the BSP posts
; in memory; only the BSP prints. The BSP bounds every wait by 10 s of
; reference time.

%define ROM_NAME "hyperv_tlbflush"
%include "rom.inc"
%include "hyperv.inc"
%include "smp.inc"


; The window: PML4 entry 1 -> tlb_pdpt -> tlb_pd -> tlb_pt. The PT indexes
; put X_N and X_G in soft-TLB slots (linear page mod 256) 0x80 and 0x81,
; away from the image's own pages at 1 MiB (slots 0x00 onwards), so that
; nothing but a flush evicts them.
X_BASE          equ 0x0000008000000000
PT_N            equ 0x80
PT_G            equ 0x81
X_N             equ X_BASE + PT_N * 4096
X_G             equ X_BASE + PT_G * 4096
PT_C            equ 0x82
X_C             equ X_BASE + PT_C * 4096    ; code: `mov eax, marker; ret`
X_OTHER         equ X_BASE + 0x100 * 4096   ; unmapped pages for list padding
MARKER_A        equ 0x2AAA5555
MARKER_B        equ 0x3BBB6666

; AP commands.
OP_RELOAD       equ 1           ; INVLPG X_N and X_G, then read them
OP_READ         equ 2           ; read X_N and X_G
OP_FLUSH_VP0    equ 3           ; HvCallFlushVirtualAddressSpace for VP 0, then read
OP_EXEC_RELOAD  equ 4           ; INVLPG X_C, then call it
OP_EXEC         equ 5           ; call X_C

HV_FLUSH_NON_GLOBAL equ 1 << 2

section .bss
alignb 4096
tlb_pdpt:       resb 4096
tlb_pd:         resb 4096
tlb_pt:         resb 4096
tlb_page_a:     resb 4096
tlb_page_b:     resb 4096
tlb_code_a:     resb 4096
tlb_code_b:     resb 4096
ap_input_page:  resb 4096
alignb 8
ap_up:          resd 1
cmd_op:         resd 1
cmd_seq:        resd 1          ; the BSP bumps it to post a command
ap_done_seq:    resd 1          ; the AP copies it when the command is done
ap_seen_n:      resd 1          ; what the AP read through X_N
ap_seen_g:      resd 1          ; ... and through X_G
ap_status:      resd 1          ; low dword of the AP's hypercall result
ap_exec:        resd 1          ; EAX from the AP's call of X_C

section .text
bits 32
test_main:
    SMP_INSTALL_TRAMPOLINE
    ENTER_LONG_MODE
    call hv_enable_hypercalls
    call build_window
    call hv_enable_sse
    call smp_start_ap64
    lea rdi, [ap_up]
    mov esi, 1
    call hv_wait_dword
    CHECK_EQ32 [ap_up], 1, "VP 1 runs in long mode on the BSP's page tables"
    call space_tests
    call list_tests
    call ex_tests
    call untargeted_notes
    call reverse_and_self_tests
    call code_tests
    call malformed_tests
    TEST_PASS

bits 64
; REQUIRE32 dword, value, "name": a precondition; silent when it holds.
%macro REQUIRE32 3
    cmp %1, %2
    je %%ok
    TEST_FAIL %3
%%ok:
%endmacro

; The flush input header: address space = CR3, flags, then the qword at
; offset 16 (processor mask, or an HV_VP_SET's format).
%macro FLUSH_HEADER 2
    mov rax, cr3
    mov [hv_input_page], rax
    mov qword [hv_input_page + 8], %1
    mov qword [hv_input_page + 16], %2
%endmacro

; STORE_GVA offset, address: a 64-bit GVA (list entry) into the input page.
%macro STORE_GVA 2
    mov rax, %2
    mov [hv_input_page + %1], rax
%endmacro

; ---- Set-up -------------------------------------------------------------------------------------
build_window:
    mov dword [tlb_page_a], MARKER_A
    mov dword [tlb_page_b], MARKER_B
    mov eax, tlb_pdpt + (PTE_P | PTE_RW)
    mov [lm_pml4 + 8], rax
    mov eax, tlb_pd + (PTE_P | PTE_RW)
    mov [tlb_pdpt], rax
    mov eax, tlb_pt + (PTE_P | PTE_RW)
    mov [tlb_pd], rax
    mov rdi, tlb_code_a
    mov eax, MARKER_A
    call write_code
    mov rdi, tlb_code_b
    mov eax, MARKER_B
    call write_code
    mov eax, tlb_code_a
    call set_code_mapping
    mov eax, tlb_page_a
    jmp set_mapping

; `mov eax, EAX; ret` at RDI.
write_code:
    mov byte [rdi], 0xB8
    mov [rdi + 1], eax
    mov byte [rdi + 5], 0xC3
    ret

; Points X_C at physical page EAX. No INVLPG.
set_code_mapping:
    push rdx
    mov edx, eax
    or edx, PTE_P | PTE_RW
    mov [tlb_pt + PT_C * 8], rdx
    pop rdx
    ret

; Points X_N (non-global) and X_G (global) at physical page EAX. No INVLPG.
set_mapping:
    push rdx
    mov edx, eax
    or edx, PTE_P | PTE_RW
    mov [tlb_pt + PT_N * 8], rdx
    or edx, PTE_G
    mov [tlb_pt + PT_G * 8], rdx
    pop rdx
    ret

; Runs AP command EDI and waits for it to finish.
ap_do:
    push rax
    push rsi
    push rdi
    mov [cmd_op], edi
    mov esi, [cmd_seq]
    inc esi
    mov [cmd_seq], esi          ; posted after cmd_op (stores stay in order)
    lea rdi, [ap_done_seq]
    call hv_wait_dword
    cmp [ap_done_seq], esi
    jne .lost
    pop rdi
    pop rsi
    pop rax
    ret
.lost:
    TEST_FAIL "VP 1 stopped answering"

ap_read:
    push rdi
    mov edi, OP_READ
    call ap_do
    pop rdi
    ret

; A round on VP 1: it caches page A for both window pages, the PTEs move to
; page B, and it still reads A. Afterwards only a flush explains a B.
begin_round:
    mov eax, tlb_page_a
    call set_mapping
    mov edi, OP_RELOAD
    call ap_do
    REQUIRE32 dword [ap_seen_n], MARKER_A, "VP 1 reads page A through X_N after INVLPG"
    REQUIRE32 dword [ap_seen_g], MARKER_A, "VP 1 reads page A through X_G after INVLPG"
    mov eax, tlb_page_b
    call set_mapping
    call ap_read
    REQUIRE32 dword [ap_seen_n], MARKER_A, "VP 1 still reads page A through X_N before any flush (its TLB must hold the translation for the flush checks to mean anything)"
    REQUIRE32 dword [ap_seen_g], MARKER_A, "VP 1 still reads page A through X_G before any flush"
    ret

; The same on the BSP itself, for X_N only.
bsp_begin_round:
    mov eax, tlb_page_a
    call set_mapping
    mov rax, X_N
    invlpg [rax]
    call bsp_read
    REQUIRE32 eax, MARKER_A, "VP 0 reads page A through X_N after INVLPG"
    mov eax, tlb_page_b
    call set_mapping
    call bsp_read
    REQUIRE32 eax, MARKER_A, "VP 0 still reads page A through X_N before any flush"
    ret

; EAX = the dword at X_N, read on the BSP.
bsp_read:
    mov rax, X_N
    mov eax, [rax]
    ret

; ---- HvCallFlushVirtualAddressSpace -------------------------------------------------------------
space_tests:
    call begin_round
    FLUSH_HEADER 0, 1 << 1
    HVS HVCALL_FLUSH_SPACE, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpace, mask {VP 1} -> success"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "VP 1 sees the new PTE after HvCallFlushVirtualAddressSpace for VP 1"
    CHECK_EQ32 [ap_seen_g], MARKER_B, "without NON_GLOBAL_MAPPINGS_ONLY VP 1's global page is flushed too"

    call begin_round
    FLUSH_HEADER 0, 3
    HVS HVCALL_FLUSH_SPACE, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpace, mask {VP 0, VP 1} -> success"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "VP 1 sees the new PTE after a flush of VPs 0 and 1"

    ; ALL_PROCESSORS: the mask (VP 5 only) is ignored; ALL_VIRTUAL_ADDRESS_SPACES:
    ; so is the address space (not this CR3).
    call begin_round
    FLUSH_HEADER HV_FLUSH_ALL_PROCESSORS | HV_FLUSH_ALL_SPACES, 1 << 5
    mov qword [hv_input_page], 0x12345000
    HVS HVCALL_FLUSH_SPACE, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpace, ALL_PROCESSORS | ALL_VIRTUAL_ADDRESS_SPACES -> success"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "ALL_PROCESSORS flushes VP 1 whatever the mask"

    call begin_round
    FLUSH_HEADER HV_FLUSH_NON_GLOBAL, 1 << 1
    HVS HVCALL_FLUSH_SPACE, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpace, NON_GLOBAL_MAPPINGS_ONLY -> success"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "NON_GLOBAL_MAPPINGS_ONLY flushes VP 1's non-global page"
    cmp dword [ap_seen_g], MARKER_A
    jne .global_gone
    PRINTLN "note: VP 1 kept its global translation (NON_GLOBAL_MAPPINGS_ONLY)"
    jmp .global_done
.global_gone:
    PRINTLN "note: VP 1 dropped its global translation too (allowed)"
.global_done:
    FLUSH_HEADER 0, 1 << 1
    HVS HVCALL_FLUSH_SPACE, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpace, mask {VP 1} -> success"
    call ap_read
    CHECK_EQ32 [ap_seen_g], MARKER_B, "then a flush without the flag drops VP 1's global page"

    ; XMM fast: address space in RDX, flags in R8, processor mask in XMM0.
    call begin_round
    mov eax, 1 << 1
    movq xmm0, rax
    mov rbx, cr3
    HVS HVCALL_FLUSH_SPACE | HV_FAST, rbx, 0, HV_STATUS_SUCCESS, "XMM-fast HvCallFlushVirtualAddressSpace, mask {VP 1} -> success"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "VP 1 sees the new PTE after the XMM-fast flush"
    ret

; ---- HvCallFlushVirtualAddressList ---------------------------------------------------------------
list_tests:
    call begin_round
    FLUSH_HEADER 0, 1 << 1
    STORE_GVA 24, X_N
    HVS HVCALL_FLUSH_LIST | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressList [X_N], mask {VP 1} -> success"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "VP 1 sees the new PTE of the listed page"

    ; Three entries: a GVA beyond the GVA space (non-canonical), which is
    ; ignored, and the global page (INVLPG semantics).
    call begin_round
    FLUSH_HEADER HV_FLUSH_ALL_SPACES, 1 << 1
    STORE_GVA 24, 0x8000000000000000
    STORE_GVA 32, X_G
    STORE_GVA 40, X_N
    HVCALL HVCALL_FLUSH_LIST | HV_REPS(3, 0), hv_input_page, 0
    CHECK_HVSTATUS HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressList [non-canonical, X_G, X_N] -> success"
    CHECK_REPS 3, "reps completed = 3"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "VP 1 sees the new PTE of the third entry"
    CHECK_EQ32 [ap_seen_g], MARKER_B, "VP 1 sees the new PTE of a listed global page"

    ; One entry: the page before X_N plus 2 additional pages (X_N, X_G).
    call begin_round
    FLUSH_HEADER 0, 1 << 1
    STORE_GVA 24, (X_N - 4096) | 2
    HVS HVCALL_FLUSH_LIST | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressList, one entry of 3 pages -> success"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "the additional-page count (bits 11:0) covers the second page"
    CHECK_EQ32 [ap_seen_g], MARKER_B, "... and the third"

    ; 100 entries, X_N last: more than one batch on this hypervisor.
    call begin_round
    FLUSH_HEADER 0, 1 << 1
    lea rdi, [hv_input_page + 24]
    mov rax, X_OTHER
    mov ecx, 99
.fill:
    mov [rdi], rax
    add rdi, 8
    add rax, 4096
    dec ecx
    jnz .fill
    mov rax, X_N
    mov [rdi], rax
    HVCALL HVCALL_FLUSH_LIST | HV_REPS(100, 0), hv_input_page, 0
    CHECK_HVSTATUS HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressList with 100 entries -> success"
    CHECK_REPS 100, "reps completed = 100"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "VP 1 sees the new PTE of the 100th entry"
    ret

; ---- The Ex forms (HV_VP_SET) --------------------------------------------------------------------
ex_tests:
    call begin_round
    FLUSH_HEADER 0, 0                           ; HV_GENERIC_SET_SPARSE_4K
    mov qword [hv_input_page + 24], 1           ; valid banks: bank 0
    mov qword [hv_input_page + 32], 1 << 1      ; bank 0: VP 1
    HVS HVCALL_FLUSH_SPACE_EX | HV_VARHEAD(1), hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpaceEx, sparse set {VP 1} -> success"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "VP 1 sees the new PTE after the Ex space flush"
    CHECK_EQ32 [ap_seen_g], MARKER_B, "... its global page too"

    call begin_round
    FLUSH_HEADER 0, 0
    mov qword [hv_input_page + 24], 3           ; banks 0 and 1
    mov qword [hv_input_page + 32], 1 << 1
    mov qword [hv_input_page + 40], 0
    HVS HVCALL_FLUSH_SPACE_EX | HV_VARHEAD(2), hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpaceEx, two banks {VP 1} {} -> success"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "VP 1 sees the new PTE after a two-bank Ex flush"

    call begin_round
    FLUSH_HEADER 0, 1                           ; HV_GENERIC_SET_ALL
    mov qword [hv_input_page + 24], 0
    HVS HVCALL_FLUSH_SPACE_EX, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpaceEx, set ALL -> success"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "VP 1 sees the new PTE after an Ex flush of all VPs"

    call begin_round
    FLUSH_HEADER 0, 0
    mov qword [hv_input_page + 24], 1
    mov qword [hv_input_page + 32], 1 << 1
    STORE_GVA 40, X_N
    STORE_GVA 48, X_G
    HVCALL HVCALL_FLUSH_LIST_EX | HV_VARHEAD(1) | HV_REPS(2, 0), hv_input_page, 0
    CHECK_HVSTATUS HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressListEx [X_N, X_G], sparse set {VP 1} -> success"
    CHECK_REPS 2, "reps completed = 2"
    call ap_read
    CHECK_EQ32 [ap_seen_n], MARKER_B, "VP 1 sees the new PTE of the first Ex list entry"
    CHECK_EQ32 [ap_seen_g], MARKER_B, "VP 1 sees the new PTE of the second (global) entry"
    ret

; ---- Sets without VP 1 ---------------------------------------------------------------------------
; The TLFS only promises that the named VPs are flushed; the others may be
; flushed or not, so these print what happened.
untargeted_notes:
    call begin_round
    FLUSH_HEADER 0, 1 << 0
    HVS HVCALL_FLUSH_SPACE, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpace, mask {VP 0} -> success"
    call ap_read
    call note_untargeted

    call begin_round
    FLUSH_HEADER 0, 0
    mov qword [hv_input_page + 24], 1
    mov qword [hv_input_page + 32], 1 << 0      ; VP 0 only
    STORE_GVA 40, X_N
    HVS HVCALL_FLUSH_LIST_EX | HV_VARHEAD(1) | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressListEx [X_N], sparse set {VP 0} -> success"
    call ap_read
    call note_untargeted
    ret

note_untargeted:
    cmp dword [ap_seen_n], MARKER_A
    jne .flushed
    PRINTLN "note: VP 1, not in the set, kept its translation"
    ret
.flushed:
    PRINTLN "note: VP 1, not in the set, was flushed anyway (allowed)"
    ret

; ---- VP 1 flushing VP 0, and flushes of the caller only ------------------------------------------
reverse_and_self_tests:
    call bsp_begin_round
    mov edi, OP_FLUSH_VP0
    call ap_do
    CHECK_EQ32 [ap_status], HV_STATUS_SUCCESS, "VP 1's HvCallFlushVirtualAddressSpace, mask {VP 0} -> success"
    call bsp_read
    CHECK_EQ rax, MARKER_B, "VP 0 sees the new PTE after VP 1 flushed it"

    call bsp_begin_round
    FLUSH_HEADER 0, 1 << 0
    HVS HVCALL_FLUSH_SPACE, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpace, mask {caller} -> success"
    call bsp_read
    CHECK_EQ rax, MARKER_B, "the caller sees the new PTE after flushing itself"

    call bsp_begin_round
    FLUSH_HEADER 0, 0
    mov qword [hv_input_page + 24], 1
    mov qword [hv_input_page + 32], 1 << 0
    STORE_GVA 40, X_N
    HVS HVCALL_FLUSH_LIST_EX | HV_VARHEAD(1) | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressListEx [X_N], sparse set {caller} -> success"
    call bsp_read
    CHECK_EQ rax, MARKER_B, "the caller sees the new PTE after an Ex list flush of itself"
    ret

; ---- Code: the flush must reach what VP 1 executes ---------------------------------------------------
; X_C runs `mov eax, MARKER_A; ret` from code page A, then the PTE moves to
; code page B; VP 1 keeps running A (its instruction translation, and
; whatever it decoded from it) until a flush names it.
code_round:
    mov eax, tlb_code_a
    call set_code_mapping
    mov edi, OP_EXEC_RELOAD
    call ap_do
    REQUIRE32 dword [ap_exec], MARKER_A, "VP 1 runs code page A through X_C after INVLPG"
    mov eax, tlb_code_b
    call set_code_mapping
    mov edi, OP_EXEC
    call ap_do
    REQUIRE32 dword [ap_exec], MARKER_A, "VP 1 still runs code page A through X_C before any flush"
    ret

code_tests:
    call code_round
    FLUSH_HEADER 0, 1 << 1
    STORE_GVA 24, X_C
    HVS HVCALL_FLUSH_LIST | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressList [X_C], mask {VP 1} -> success"
    mov edi, OP_EXEC
    call ap_do
    CHECK_EQ32 [ap_exec], MARKER_B, "VP 1 runs the new code page after the list flush"

    call code_round
    FLUSH_HEADER 0, 1 << 1
    HVS HVCALL_FLUSH_SPACE, hv_input_page, 0, HV_STATUS_SUCCESS, "HvCallFlushVirtualAddressSpace, mask {VP 1} -> success"
    mov edi, OP_EXEC
    call ap_do
    CHECK_EQ32 [ap_exec], MARKER_B, "VP 1 runs the new code page after the space flush"
    ret

; ---- Malformed flush input (hyperv_hypercalls covers the rest) --------------------------------
malformed_tests:
    FLUSH_HEADER 0, 2                           ; no such HV_VP_SET format
    mov qword [hv_input_page + 24], 1
    mov qword [hv_input_page + 32], 1 << 1
    HVS HVCALL_FLUSH_SPACE_EX | HV_VARHEAD(1), hv_input_page, 0, HV_STATUS_INVALID_PARAMETER, "HV_VP_SET format 2 -> INVALID_PARAMETER"
    mov qword [hv_input_page + 16], 0
    HVS HVCALL_FLUSH_SPACE_EX | HV_VARHEAD(2), hv_input_page, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "a variable header longer than the valid banks -> INVALID_HYPERCALL_INPUT"
    mov qword [hv_input_page + 24], 3
    HVS HVCALL_FLUSH_LIST_EX | HV_VARHEAD(1) | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "two valid banks, one bank qword -> INVALID_HYPERCALL_INPUT"
    mov qword [hv_input_page + 24], 1
    mov qword [hv_input_page + 8], 1 << 3       ; reserved flag
    HVS HVCALL_FLUSH_SPACE_EX | HV_VARHEAD(1), hv_input_page, 0, HV_STATUS_INVALID_PARAMETER, "reserved flag on HvCallFlushVirtualAddressSpaceEx -> INVALID_PARAMETER"
    mov qword [hv_input_page + 8], HV_FLUSH_NON_GLOBAL
    HVS HVCALL_FLUSH_LIST_EX | HV_VARHEAD(1) | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_INVALID_PARAMETER, "NON_GLOBAL_MAPPINGS_ONLY on HvCallFlushVirtualAddressListEx -> INVALID_PARAMETER"
    mov qword [hv_input_page + 8], 0
    HVS HVCALL_FLUSH_SPACE_EX | HV_VARHEAD(1) | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "rep count on HvCallFlushVirtualAddressSpaceEx -> INVALID_HYPERCALL_INPUT"
    HVS HVCALL_FLUSH_SPACE | HV_REPS(1, 0), hv_input_page, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "rep count on HvCallFlushVirtualAddressSpace -> INVALID_HYPERCALL_INPUT"
    HVS HVCALL_FLUSH_LIST_EX | HV_VARHEAD(1), hv_input_page, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "HvCallFlushVirtualAddressListEx with rep count 0 -> INVALID_HYPERCALL_INPUT"
    HVS HVCALL_FLUSH_LIST_EX | HV_VARHEAD(1) | HV_REPS(2, 2), hv_input_page, 0, HV_STATUS_INVALID_HYPERCALL_INPUT, "HvCallFlushVirtualAddressListEx with start index = rep count -> INVALID_HYPERCALL_INPUT"
    ret

; ---- The AP ---------------------------------------------------------------------------------------
bits 32
ap_entry32:
    call lm_prepare32           ; the BSP's tables (already built); compatibility mode
    jmp SEL_KCODE64:ap_entry64
bits 64
ap_entry64:
    mov ax, SEL_KDATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    lidt [idt64_ptr]
    mov rax, cr4
    or eax, CR4_PGE             ; X_G's G bit counts
    mov cr4, rax
    mov dword [ap_up], 1
.idle:
    mov eax, [cmd_seq]
    cmp eax, [ap_done_seq]
    jne .command
    pause
    jmp .idle
.command:
    mov ebx, [cmd_op]
    cmp ebx, OP_RELOAD
    jne .not_reload
    mov rax, X_N
    invlpg [rax]
    mov rax, X_G
    invlpg [rax]
.not_reload:
    cmp ebx, OP_FLUSH_VP0
    jne .not_flush
    mov rax, cr3
    mov [ap_input_page], rax
    mov qword [ap_input_page + 8], 0
    mov qword [ap_input_page + 16], 1 << 0
    HVCALL HVCALL_FLUSH_SPACE, ap_input_page, 0
    mov [ap_status], eax
.not_flush:
    cmp ebx, OP_EXEC_RELOAD
    jne .not_exec_reload
    mov rax, X_C
    invlpg [rax]
    jmp .exec
.not_exec_reload:
    cmp ebx, OP_EXEC
    jne .read
.exec:
    mov rax, X_C
    call rax
    mov [ap_exec], eax
.read:
    mov rax, X_N
    mov eax, [rax]
    mov [ap_seen_n], eax
    mov rax, X_G
    mov eax, [rax]
    mov [ap_seen_g], eax
    mov eax, [cmd_seq]
    mov [ap_done_seq], eax
    jmp .idle

SMP_PM32_TRAMPOLINE ap_entry32
