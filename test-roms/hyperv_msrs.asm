; hyperv_msrs.asm — discovery and synthetic MSRs of the Hyper-V interface.
;
;   CPUID: hypervisor-present bit, "Microsoft Hv", "Hv#1", leaf range and
;     the privilege bits every Hv#1 guest relies on (TLFS 2.4);
;   hypercall page: enable bit kept clear without a guest OS ID, the page
;     holds the calling sequence (VMCALL/VMMCALL; RET), a hypercall through
;     it works, VMCALL without an enabled page and from ring 3 is #UD,
;     clearing the guest OS ID disables the page, Locked freezes the MSR
;     (TLFS 2.6, 3.5, 3.13);
;   VP index, frequencies, the time reference counter (TLFS 12.4);
;   the reference TSC page: non-zero sequence, and (RDTSC * scale >> 64) +
;     offset lies between two reads of the reference counter, monotonically
;     (TLFS 12.7);
;   crash MSRs: capabilities and parameter registers (TLFS 4.3);
;   #GP for read-only registers, reserved bits and unimplemented synthetic
;     MSRs (TLFS 4.2.2, 11.8, 12.5, 10.2.3).

%define ROM_NAME "hyperv_msrs"
%include "rom.inc"
%include "hyperv.inc"

section .bss
alignb 8
last_page_time: resq 1
page_time_bad:  resq 1
page_time_back: resq 1
tsc_scale:      resq 1
tsc_offset:     resq 1

section .text
bits 32
test_main:
    call cpuid_tests
    ENTER_LONG_MODE
    call hypercall_page_tests
    call register_tests
    call reference_tsc_tests
    call crash_tests
    call reserved_bit_tests
    call lock_tests
    TEST_PASS

; ---- CPUID (32-bit) ---------------------------------------------------------------
bits 32
cpuid_tests:
    mov eax, 1
    cpuid
    shr ecx, 31
    CHECK_EQ ecx, 1, "CPUID.1:ECX[31] hypervisor present"
    mov eax, 0x40000000
    cpuid
    CHECK_EQ ebx, 0x7263694D, "CPUID 0x40000000 EBX = 'Micr'"
    CHECK_EQ ecx, 0x666F736F, "CPUID 0x40000000 ECX = 'osof'"
    CHECK_EQ edx, 0x76482074, "CPUID 0x40000000 EDX = 't Hv'"
    cmp eax, 0x40000005
    setae al
    movzx eax, al
    CHECK_EQ eax, 1, "CPUID 0x40000000 max leaf >= 0x40000005"
    mov eax, 0x40000001
    cpuid
    CHECK_EQ eax, 0x31237648, "CPUID 0x40000001 interface 'Hv#1'"
    mov eax, 0x40000003
    cpuid
    and eax, HV_PRIV_HYPERCALL | HV_PRIV_VP_INDEX | HV_PRIV_TIME_REF_COUNT | HV_PRIV_REFERENCE_TSC | HV_PRIV_SYNIC | HV_PRIV_STIMER
    CHECK_EQ eax, HV_PRIV_HYPERCALL | HV_PRIV_VP_INDEX | HV_PRIV_TIME_REF_COUNT | HV_PRIV_REFERENCE_TSC | HV_PRIV_SYNIC | HV_PRIV_STIMER, "CPUID 0x40000003 grants hypercall, VP index, time, SynIC, timer MSRs"
    ret

bits 64
; ---- Hypercall page -------------------------------------------------------------
hypercall_page_tests:
    ; Before any setup, VMCALL is undefined.
    TRY vmcall
    CHECK_FAULT VEC_UD, NOERR, "VMCALL without a hypercall page -> #UD"
    ; No guest OS identity yet: the enable bit stays clear (TLFS 3.13).
    WRMSR64 HV_MSR_HYPERCALL, hv_hypercall_page + 1
    RDMSR64 HV_MSR_HYPERCALL
    CHECK_EQ rax, hv_hypercall_page, "HYPERCALL enable stays 0 without a guest OS ID"
    call hv_enable_hypercalls
    RDMSR64 HV_MSR_GUEST_OS_ID
    CHECK_EQ rax, HV_GUEST_OS_ID_VALUE, "GUEST_OS_ID reads back"
    RDMSR64 HV_MSR_HYPERCALL
    CHECK_EQ rax, hv_hypercall_page + 1, "HYPERCALL reads back page | enable"
    movzx eax, word [hv_hypercall_page]
    CHECK_EQ rax, 0x010F, "hypercall page starts with VMCALL/VMMCALL (0F 01)"
    movzx eax, byte [hv_hypercall_page + 3]
    CHECK_EQ rax, 0xC3, "hypercall page returns with RET"
    HVCALL HVCALL_SPIN_WAIT | HV_FAST, 1, 0
    CHECK_EQ rax, HV_STATUS_SUCCESS, "HvCallNotifyLongSpinWait through the page -> success"
    ; From ring 3, VMCALL is #UD (TLFS 3.5).
    RING3_RUN64 .user_vmcall, .back, SEL_UCODE64 | 3
.back:
    CHECK_EQ [exc_vector], VEC_UD, "VMCALL at CPL 3 -> #UD"
    ; Clearing the guest OS identity disables the page.
    WRMSR64 HV_MSR_GUEST_OS_ID, 0
    RDMSR64 HV_MSR_HYPERCALL
    and eax, 1
    CHECK_EQ rax, 0, "clearing GUEST_OS_ID clears the hypercall enable bit"
    xor ecx, ecx
    TRY vmcall
    CHECK_FAULT VEC_UD, NOERR, "VMCALL with the hypercall page disabled -> #UD"
    call hv_enable_hypercalls
    ret
.user_vmcall:
    mov ecx, HVCALL_SPIN_WAIT | HV_FAST
    vmcall
    int 0x80

; ---- Registers ---------------------------------------------------------------------
register_tests:
    RDMSR64 HV_MSR_VP_INDEX
    CHECK_EQ rax, 0, "VP_INDEX of the boot processor is 0"
    RDMSR64 HV_MSR_TSC_FREQUENCY
    test rax, rax
    setnz al
    movzx eax, al
    CHECK_EQ rax, 1, "TSC_FREQUENCY is not zero"
    RDMSR64 HV_MSR_APIC_FREQUENCY
    test rax, rax
    setnz al
    movzx eax, al
    CHECK_EQ rax, 1, "APIC_FREQUENCY is not zero"
    RDMSR64 HV_MSR_SVERSION
    CHECK_EQ rax, 1, "SVERSION = 1"
    RDMSR64 HV_MSR_SINT0 + 5
    CHECK_EQ rax, HV_SINT_MASKED, "SINT5 starts masked (0x10000)"
    RDMSR64 HV_MSR_STIMER0_CONFIG + 2
    CHECK_EQ rax, 0, "STIMER1_CONFIG starts at 0"
    RDMSR64 HV_MSR_EOM
    CHECK_EQ rax, 0, "EOM reads as 0"
    ; The reference counter moves forward.
    call hv_ref_now
    mov rbx, rax
    mov ecx, 20000
.spin:
    dec ecx
    jnz .spin
    call hv_ref_now
    cmp rax, rbx
    seta al
    movzx eax, al
    CHECK_EQ rax, 1, "TIME_REF_COUNT advances"
    ret

; ---- Reference TSC page -----------------------------------------------------------
reference_tsc_tests:
    WRMSR64 HV_MSR_REFERENCE_TSC, hv_tsc_page + 1
    RDMSR64 HV_MSR_REFERENCE_TSC
    CHECK_EQ rax, hv_tsc_page + 1, "REFERENCE_TSC reads back page | enable"
    mov eax, [hv_tsc_page]
    test eax, eax
    setnz al
    movzx eax, al
    CHECK_EQ rax, 1, "reference TSC page sequence is not 0"
    mov rax, [hv_tsc_page + 8]
    mov [tsc_scale], rax
    mov rax, [hv_tsc_page + 16]
    mov [tsc_offset], rax
    mov qword [last_page_time], 0
    mov qword [page_time_bad], 0
    mov qword [page_time_back], 0
    mov r12d, 200
.loop:
    call hv_ref_now
    mov r13, rax                ; before
    rdtsc
    shl rdx, 32
    or rax, rdx
    mul qword [tsc_scale]       ; RDX = (TSC * scale) >> 64
    add rdx, [tsc_offset]
    mov r14, rdx                ; page time
    call hv_ref_now             ; after
    cmp r14, r13
    jb .bad
    cmp r14, rax
    jbe .in_range
.bad:
    inc qword [page_time_bad]
.in_range:
    cmp r14, [last_page_time]
    jae .forward
    inc qword [page_time_back]
.forward:
    mov [last_page_time], r14
    mov ecx, 37                 ; vary the spacing a little
.pause:
    dec ecx
    jnz .pause
    dec r12d
    jnz .loop
    CHECK_EQ [page_time_bad], 0, "TSC page time lies between reference counter reads"
    CHECK_EQ [page_time_back], 0, "TSC page time never goes backwards"
    ; A new enable publishes a new sequence (TLFS 12.7.3.2).
    mov ebx, [hv_tsc_page]
    WRMSR64 HV_MSR_REFERENCE_TSC, hv_tsc_page + 1
    mov eax, [hv_tsc_page]
    cmp eax, ebx
    setne al
    movzx eax, al
    CHECK_EQ rax, 1, "re-enabling the reference TSC page changes the sequence"
    ret

; ---- Crash MSRs -----------------------------------------------------------------------
crash_tests:
    RDMSR64 HV_MSR_CRASH_CTL
    shr rax, 62
    CHECK_EQ rax, 3, "CRASH_CTL reports CrashNotify and CrashMessage"
    WRMSR64 HV_MSR_CRASH_P0 + 4, 0x1122334455667788
    RDMSR64 HV_MSR_CRASH_P0 + 4
    CHECK_EQ rax, 0x1122334455667788, "CRASH_P4 reads back"
    ret

; ---- #GP ----------------------------------------------------------------------------------
; GP_WRMSR index, value, "name": WRMSR must raise #GP(0).
%macro GP_WRMSR 3
    mov ecx, %1
    mov rax, %2
    mov rdx, rax
    shr rdx, 32
    TRY wrmsr
    CHECK_FAULT VEC_GP, 0, %3
%endmacro
%macro GP_RDMSR 2
    mov ecx, %1
    TRY rdmsr
    CHECK_FAULT VEC_GP, 0, %2
%endmacro

reserved_bit_tests:
    GP_WRMSR HV_MSR_VP_INDEX, 1, "WRMSR VP_INDEX -> #GP"
    GP_WRMSR HV_MSR_TIME_REF_COUNT, 0, "WRMSR TIME_REF_COUNT -> #GP"
    GP_WRMSR HV_MSR_TSC_FREQUENCY, 0, "WRMSR TSC_FREQUENCY -> #GP"
    GP_WRMSR HV_MSR_SVERSION, 1, "WRMSR SVERSION -> #GP"
    GP_RDMSR HV_MSR_EOI, "RDMSR EOI (write-only) -> #GP"
    GP_RDMSR 0x40000004, "RDMSR of an unimplemented synthetic MSR -> #GP"
    GP_WRMSR 0x400000FF, 0, "WRMSR of an unimplemented synthetic MSR -> #GP"
    GP_WRMSR HV_MSR_HYPERCALL, hv_hypercall_page + 1 + 4, "HYPERCALL reserved bit 2 -> #GP"
    GP_WRMSR HV_MSR_REFERENCE_TSC, hv_tsc_page + 1 + 2, "REFERENCE_TSC reserved bit 1 -> #GP"
    GP_WRMSR HV_MSR_VP_ASSIST_PAGE, hv_assist_page + 1 + 0x800, "VP_ASSIST_PAGE reserved bit 11 -> #GP"
    GP_WRMSR HV_MSR_STIMER0_CONFIG, (1 << 13) | (2 << 16), "STIMER0_CONFIG reserved bit 13 -> #GP"
    GP_WRMSR HV_MSR_STIMER0_CONFIG, (1 << 20) | (2 << 16), "STIMER0_CONFIG reserved bit 20 -> #GP"
    GP_WRMSR HV_MSR_SINT0 + 3, 0x0F, "unmasked SINT with vector 15 -> #GP"
    GP_WRMSR HV_MSR_EOM, 1, "EOM with a non-zero value -> #GP"
    GP_WRMSR HV_MSR_TPR, 0x100, "TPR reserved bit 8 -> #GP"
    GP_WRMSR HV_MSR_CRASH_CTL, 1, "CRASH_CTL reserved bit 0 -> #GP"
    ; The hypercall MSR survived the refused writes.
    RDMSR64 HV_MSR_HYPERCALL
    CHECK_EQ rax, hv_hypercall_page + 1, "refused writes leave HYPERCALL unchanged"
    ret

; ---- Locked hypercall MSR (last: only a reset unlocks it) -----------------------------------
lock_tests:
    WRMSR64 HV_MSR_HYPERCALL, hv_hypercall_page + 3
    RDMSR64 HV_MSR_HYPERCALL
    CHECK_EQ rax, hv_hypercall_page + 3, "HYPERCALL reads back page | locked | enable"
    GP_WRMSR HV_MSR_HYPERCALL, hv_hypercall_page + 1, "writing a locked HYPERCALL MSR -> #GP"
    HVCALL HVCALL_SPIN_WAIT | HV_FAST, 1, 0
    CHECK_EQ rax, HV_STATUS_SUCCESS, "hypercalls still work with the MSR locked"
    ret
