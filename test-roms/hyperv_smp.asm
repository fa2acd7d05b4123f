; hyperv_smp.asm — the Hyper-V partition interface seen from two vCPUs
; (TLFS v6.0b). Run with two vCPUs (ROM_CPUS=2: --cpus 2).
;
;   HV_X64_MSR_VP_INDEX reads 0 on the BSP and 1 on the AP (TLFS 7.8.1);
;   HV_X64_MSR_REFERENCE_TSC is partition-wide: the AP reads the value the
;     BSP wrote (TLFS 12.7);
;   HV_X64_MSR_TIME_REF_COUNT never goes back across vCPUs: the two take
;     turns through a shared word, and every reading is >= the other vCPU's
;     reading just before it (TLFS 12.4);
;   the reference TSC page's time ((TSC * scale) >> 64 + offset, read
;     under its sequence number; the AP does the 64x64 multiply with 32-bit
;     MULs) does not go back across vCPUs either, in the same turns;
;   HvCallSendSyntheticClusterIpi (fast) from the BSP with processor mask
;     1 << 1 interrupts the AP on the requested vector, twice (the AP's EOI
;     through its xAPIC lets the second in) (TLFS 10.5.2).
;
; The BSP runs in long mode and does all printing; the AP is started with
; INIT/SIPI/SIPI into a real-mode trampoline, switches to 32-bit flat
; protected mode with the ROM's GDT and reports only through memory. Every
; wait of the BSP is bounded by reference time, so a missing AP fails
; instead of hanging; the AP's waits are unbounded (the BSP ends the run).

%define ROM_NAME "hyperv_smp"
%include "rom.inc"
%include "hyperv.inc"
%include "smp.inc"

VEC_IPI         equ 0x61
ROUNDS          equ 200         ; turns each vCPU takes in the ping-pong

section .bss
alignb 8
last_ref:       resq 1          ; latest TIME_REF_COUNT reading, either vCPU
last_page:      resq 1          ; latest reference TSC page time, either vCPU
ap_product:     resq 1          ; the AP's (TSC * scale) >> 64 in the making
turn:           resd 1          ; 0: the BSP's turn, 1: the AP's
ap_up:          resd 1          ; the AP reached 32-bit protected mode
ap_vp_index:    resd 1
ap_reftsc_msr:  resd 1          ; low half of REFERENCE_TSC as the AP read it
ap_turns:       resd 1
ap_backwards:   resd 1          ; AP readings below the BSP's previous one
bsp_backwards:  resd 1
ap_page_back:   resd 1          ; the same for the TSC page time
bsp_page_back:  resd 1
page_invalid:   resd 1          ; page reads that found sequence 0
ap_ipi_ready:   resd 1          ; the AP waits with IF=1
ap_ipi_count:   resd 1

section .text
bits 32
test_main:
    SMP_INSTALL_TRAMPOLINE
    ENTER_LONG_MODE
    call hv_enable_hypercalls
    RDMSR64 HV_MSR_VP_INDEX
    CHECK_EQ rax, 0, "VP_INDEX on the BSP is 0"
    WRMSR64 HV_MSR_REFERENCE_TSC, hv_tsc_page + 1
    call smp_start_ap64
    lea rdi, [ap_up]
    mov esi, 1
    call hv_wait_dword
    CHECK_EQ32 [ap_up], 1, "the AP reached 32-bit protected mode"
    CHECK_EQ32 [ap_vp_index], 1, "VP_INDEX on the AP is 1"
    CHECK_EQ32 [ap_reftsc_msr], hv_tsc_page + 1, "the AP reads the BSP's REFERENCE_TSC (partition-wide)"
    call ping_pong
    call cluster_ipi
    TEST_PASS

; The BSP's half of the ping-pong: it goes first, the AP answers.
ping_pong:
    mov r12d, ROUNDS
.round:
    lea rdi, [turn]
    xor esi, esi
    call hv_wait_dword
    cmp dword [turn], 0
    jne .lost
    call hv_ref_now
    cmp rax, [last_ref]
    jae .forward
    inc dword [bsp_backwards]
.forward:
    mov [last_ref], rax
    call bsp_page_time
    cmp rax, [last_page]
    jae .page_forward
    inc dword [bsp_page_back]
.page_forward:
    mov [last_page], rax
    mov eax, 1
    xchg [turn], eax
    dec r12d
    jnz .round
    lea rdi, [turn]
    xor esi, esi
    call hv_wait_dword         ; the AP's last turn
    cmp dword [turn], 0
    jne .lost
    CHECK_EQ32 [ap_turns], ROUNDS, "the AP took its 200 turns"
    CHECK_EQ32 [bsp_backwards], 0, "TIME_REF_COUNT on the BSP never below the AP's previous reading"
    CHECK_EQ32 [ap_backwards], 0, "TIME_REF_COUNT on the AP never below the BSP's previous reading"
    CHECK_EQ32 [page_invalid], 0, "the reference TSC page is valid (sequence not 0) on both vCPUs"
    CHECK_EQ32 [bsp_page_back], 0, "TSC page time on the BSP never below the AP's previous one"
    CHECK_EQ32 [ap_page_back], 0, "TSC page time on the AP never below the BSP's previous one"
    ret
.lost:
    TEST_FAIL "the AP stopped taking its turn"

; RAX = the reference TSC page's time (TLFS 12.7.3.1), retried while the
; sequence changes under the read.
bsp_page_time:
    push rbx
    push rcx
    push rdx
.retry:
    mov ebx, [hv_tsc_page]
    test ebx, ebx
    jnz .valid
    lock inc dword [page_invalid]
.valid:
    rdtsc
    shl rdx, 32
    or rax, rdx
    mul qword [hv_tsc_page + 8]
    add rdx, [hv_tsc_page + 16]
    cmp ebx, [hv_tsc_page]
    jne .retry
    mov rax, rdx
    pop rdx
    pop rcx
    pop rbx
    ret

cluster_ipi:
    lea rdi, [ap_ipi_ready]
    mov esi, 1
    call hv_wait_dword
    CHECK_EQ32 [ap_ipi_ready], 1, "the AP waits for interrupts"
    HVS HVCALL_SEND_IPI | HV_FAST, VEC_IPI, 1 << 1, HV_STATUS_SUCCESS, "HvCallSendSyntheticClusterIpi to VP 1 -> success"
    lea rdi, [ap_ipi_count]
    mov esi, 1
    call hv_wait_dword
    CHECK_EQ32 [ap_ipi_count], 1, "the cluster IPI interrupts the AP"
    HVS HVCALL_SEND_IPI | HV_FAST, VEC_IPI, 1 << 1, HV_STATUS_SUCCESS, "a second cluster IPI to VP 1 -> success"
    lea rdi, [ap_ipi_count]
    mov esi, 2
    call hv_wait_dword
    CHECK_EQ32 [ap_ipi_count], 2, "after its EOI the AP takes a second cluster IPI"
    ret

; ---- The AP ---------------------------------------------------------------------------------------------
bits 32
ap_entry32:
    lidt [idt32_ptr]
    mov ecx, HV_MSR_VP_INDEX
    rdmsr
    mov [ap_vp_index], eax
    mov ecx, HV_MSR_REFERENCE_TSC
    rdmsr
    mov [ap_reftsc_msr], eax
    mov dword [ap_up], 1

    mov esi, ROUNDS
.round:
    cmp dword [turn], 1
    je .mine
    pause
    jmp .round
.mine:
    mov ecx, HV_MSR_TIME_REF_COUNT
    rdmsr
    cmp edx, [last_ref + 4]     ; EDX:EAX >= last_ref, unsigned 64-bit
    ja .forward
    jb .backwards
    cmp eax, [last_ref]
    jae .forward
.backwards:
    inc dword [ap_backwards]
.forward:
    mov [last_ref], eax
    mov [last_ref + 4], edx
    call ap_page_time
    cmp edx, [last_page + 4]
    ja .page_forward
    jb .page_backwards
    cmp eax, [last_page]
    jae .page_forward
.page_backwards:
    inc dword [ap_page_back]
.page_forward:
    mov [last_page], eax
    mov [last_page + 4], edx
    inc dword [ap_turns]
    xor eax, eax
    xchg [turn], eax
    dec esi
    jnz .round

    mov eax, VEC_IPI
    mov ebx, ap_ipi_isr
    mov cl, ACC_INTGATE
    call idt32_set_gate
    or dword [LAPIC_SVR], 0x1FF
    sti
    mov dword [ap_ipi_ready], 1
.wait:
    pause
    jmp .wait

; EDX:EAX = the reference TSC page's time, in 32-bit code. With the TSC
; T = th:tl and the scale S = sh:sl, (T * S) >> 64 is th*sh plus the high
; halves of tl*sh and th*sl plus the carries out of the middle column
; (hi(tl*sl) + lo(tl*sh) + lo(th*sl)). Clobbers EBX, ECX, EDI, EBP.
ap_page_time:
.retry:
    mov ebp, [hv_tsc_page]
    test ebp, ebp
    jnz .valid
    lock inc dword [page_invalid]
.valid:
    rdtsc
    mov ebx, eax                ; tl
    mov edi, edx                ; th
    mov dword [ap_product], 0
    mov dword [ap_product + 4], 0
    mul dword [hv_tsc_page + 8] ; tl * sl
    mov ecx, edx                ; middle column
    mov eax, ebx
    mul dword [hv_tsc_page + 12] ; tl * sh
    add ecx, eax
    adc [ap_product], edx
    adc dword [ap_product + 4], 0
    mov eax, edi
    mul dword [hv_tsc_page + 8] ; th * sl
    add ecx, eax
    adc [ap_product], edx
    adc dword [ap_product + 4], 0
    mov eax, edi
    mul dword [hv_tsc_page + 12] ; th * sh
    add [ap_product], eax
    adc [ap_product + 4], edx
    mov eax, [hv_tsc_page + 16] ; + offset
    add [ap_product], eax
    mov eax, [hv_tsc_page + 20]
    adc [ap_product + 4], eax
    cmp ebp, [hv_tsc_page]
    jne .retry
    mov eax, [ap_product]
    mov edx, [ap_product + 4]
    ret

ap_ipi_isr:
    lock inc dword [ap_ipi_count]
    mov dword [LAPIC_EOI], 0
    iretd

SMP_PM32_TRAMPOLINE ap_entry32
