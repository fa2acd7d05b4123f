; hyperv_synic.asm — the SynIC and the synthetic timers (TLFS 11, 12).
;
; Polled, with the SINT masked (a masked SINT still gets its messages, it
; only loses the interrupt, TLFS 11.2.1):
;   a one-shot timer message arrives in its SINT slot no earlier than its
;     expiration, with HV_TIMER_MESSAGE_PAYLOAD filled in, and the timer
;     disables itself (TLFS 12.5, 13.3);
;   a second message for a full slot sets MessagePending and arrives after
;     the guest empties the slot and writes EOM (TLFS 11.2.1, 11.8.5);
;   a periodic timer expires on period boundaries;
;   AutoEnable, and SINTx 0 refusing to enable a message-mode timer.
; Interrupts, through the local APIC (EOI through HV_X64_MSR_EOI):
;   a SINT interrupt with the message; a direct-mode timer's vector with no
;   message (TLFS 12.2); a cluster IPI to this VP; AutoEOI (a second
;   interrupt on the same vector arrives although the handler never EOIs).

%define ROM_NAME "hyperv_synic"
%include "rom.inc"
%include "hyperv.inc"

SINT            equ 2
SLOT            equ hv_simp_page + SINT * 256
VEC_MSG         equ 0x50
VEC_DIRECT      equ 0x51
VEC_IPI         equ 0x52
VEC_AUTOEOI     equ 0x53
TIMEOUT         equ 1000000     ; 100 ms of reference time
CONFIG_MSG      equ HV_STIMER_ENABLE | (SINT << 16)

section .bss
alignb 8
expirations:    resq 4
deadline:       resq 1
count_msg:      resq 1
count_direct:   resq 1
count_ipi:      resq 1
count_autoeoi:  resq 1
isr_timer:      resq 1          ; timer index the message ISR saw
isr_type:       resq 1
period_bad:     resq 1

section .text
bits 32
test_main:
    ENTER_LONG_MODE
    call synic_setup
    call oneshot_test
    call pending_test
    call periodic_test
    call enable_rules_test
    call interrupt_tests
    TEST_PASS

bits 64
synic_setup:
    call hv_enable_hypercalls
    WRMSR64 HV_MSR_SIMP, hv_simp_page + 1
    WRMSR64 HV_MSR_SIEFP, hv_siefp_page + 1
    WRMSR64 HV_MSR_SINT0 + SINT, VEC_MSG | HV_SINT_MASKED
    WRMSR64 HV_MSR_SCONTROL, 1
    RDMSR64 HV_MSR_SCONTROL
    CHECK_EQ rax, 1, "SCONTROL enabled"
    ret

; Waits until the slot holds a message (RAX = its type) or TIMEOUT passes
; (RAX = 0).
wait_slot:
    call hv_ref_now
    add rax, TIMEOUT
    mov [deadline], rax
.poll:
    mov eax, [SLOT]
    test eax, eax
    jnz .done
    call hv_ref_now
    cmp rax, [deadline]
    jb .poll
    xor eax, eax
.done:
    ret

; Empties the slot as a guest ISR does, with EOM when a message waits.
consume_slot:
    push rax
    push rbx
    push rcx
    push rdx
    movzx ebx, byte [SLOT + 5]
    mov dword [SLOT], 0
    test ebx, 1
    jz .no_eom
    WRMSR64 HV_MSR_EOM, 0
.no_eom:
    pop rdx
    pop rcx
    pop rbx
    pop rax
    ret

; Starts timer EBX (0-3) as a one-shot in message mode, RDI reference-time
; ticks from now; RAX = its expiration time.
start_oneshot:
    call hv_ref_now
    add rax, rdi
    push rax
    lea ecx, [HV_MSR_STIMER0_COUNT + rbx * 2]
    mov rdx, rax
    shr rdx, 32
    wrmsr
    lea ecx, [HV_MSR_STIMER0_CONFIG + rbx * 2]
    mov eax, CONFIG_MSG
    xor edx, edx
    wrmsr
    pop rax
    ret

oneshot_test:
    mov ebx, 0
    mov edi, 2000
    call start_oneshot
    mov r12, rax                ; expiration
    call wait_slot
    CHECK_EQ rax, HV_MESSAGE_TIMER_EXPIRED, "one-shot timer: HvMessageTimerExpired in the SINT slot"
    movzx eax, byte [SLOT + 4]
    CHECK_EQ rax, 24, "timer message payload is 24 bytes"
    mov eax, [SLOT + 16]
    CHECK_EQ rax, 0, "timer message names timer 0"
    CHECK_EQ [SLOT + 24], r12, "timer message ExpirationTime = the count"
    mov rax, [SLOT + 32]
    cmp rax, r12
    setae al
    movzx eax, al
    CHECK_EQ rax, 1, "timer message DeliveryTime >= ExpirationTime"
    call hv_ref_now
    cmp rax, [SLOT + 32]
    setae al
    movzx eax, al
    CHECK_EQ rax, 1, "timer message DeliveryTime is not in the future"
    RDMSR64 HV_MSR_STIMER0_CONFIG
    and eax, HV_STIMER_ENABLE
    CHECK_EQ rax, 0, "a one-shot timer disables itself on expiration"
    call consume_slot
    ret

pending_test:
    mov ebx, 0
    mov edi, 500
    call start_oneshot
    call wait_slot              ; timer 0's message stays in the slot
    mov ebx, 1
    mov edi, 500
    call start_oneshot
    mov r12, rax
    ; Wait for the hypervisor to flag the pending message.
    call hv_ref_now
    lea r13, [rax + TIMEOUT]
.poll:
    test byte [SLOT + 5], 1
    jnz .flagged
    call hv_ref_now
    cmp rax, r13
    jb .poll
.flagged:
    movzx eax, byte [SLOT + 5]
    and eax, 1
    CHECK_EQ rax, 1, "a message for a full slot sets MessagePending"
    mov eax, [SLOT + 16]
    CHECK_EQ rax, 0, "the slot still holds the first message"
    mov dword [SLOT], 0
    WRMSR64 HV_MSR_EOM, 0
    mov eax, [SLOT]
    CHECK_EQ rax, HV_MESSAGE_TIMER_EXPIRED, "EOM delivers the pending message"
    mov eax, [SLOT + 16]
    CHECK_EQ rax, 1, "the redelivered message is timer 1's"
    CHECK_EQ [SLOT + 24], r12, "its ExpirationTime is timer 1's count"
    call consume_slot
    ret

periodic_test:
    mov qword [period_bad], 0
    WRMSR64 HV_MSR_STIMER0_COUNT + 4, 1000
    call hv_ref_now
    mov r12, rax                ; before enabling
    WRMSR64 HV_MSR_STIMER0_CONFIG + 4, CONFIG_MSG | HV_STIMER_PERIODIC
    xor r13d, r13d
.next:
    call wait_slot
    CHECK_EQ rax, HV_MESSAGE_TIMER_EXPIRED, "periodic timer message"
    mov rax, [SLOT + 24]
    mov [expirations + r13 * 8], rax
    call consume_slot
    inc r13d
    cmp r13d, 4
    jb .next
    WRMSR64 HV_MSR_STIMER0_CONFIG + 4, 0
    call consume_slot
    ; Every expiration is a whole number of periods after the previous one.
    mov rax, [expirations]
    sub rax, r12
    cmp rax, 1000
    setae al
    movzx eax, al
    CHECK_EQ rax, 1, "the first period ends a period after enabling"
    mov ecx, 1
.diff:
    mov rax, [expirations + rcx * 8]
    sub rax, [expirations + rcx * 8 - 8]
    jz .bad
    xor edx, edx
    mov r8d, 1000
    div r8
    test rdx, rdx
    jz .ok
.bad:
    inc qword [period_bad]
.ok:
    inc ecx
    cmp ecx, 4
    jb .diff
    CHECK_EQ [period_bad], 0, "periodic expirations are whole periods apart"
    ret

enable_rules_test:
    WRMSR64 HV_MSR_STIMER0_CONFIG + 6, HV_STIMER_AUTO_ENABLE | (SINT << 16)
    RDMSR64 HV_MSR_STIMER0_CONFIG + 6
    and eax, HV_STIMER_ENABLE
    CHECK_EQ rax, 0, "AutoEnable alone leaves the timer disabled"
    call hv_ref_now
    lea rbx, [rax + 300]
    WRMSR64 HV_MSR_STIMER0_COUNT + 6, rbx
    RDMSR64 HV_MSR_STIMER0_CONFIG + 6
    and eax, HV_STIMER_ENABLE
    CHECK_EQ rax, HV_STIMER_ENABLE, "writing the count of an AutoEnable timer enables it"
    call wait_slot
    mov eax, [SLOT + 16]
    CHECK_EQ rax, 3, "the auto-enabled timer 3 expires"
    call consume_slot
    WRMSR64 HV_MSR_STIMER0_CONFIG + 6, HV_STIMER_ENABLE
    RDMSR64 HV_MSR_STIMER0_CONFIG + 6
    and eax, HV_STIMER_ENABLE
    CHECK_EQ rax, 0, "a message-mode timer with SINTx 0 stays disabled"
    ret

; ---- Interrupts ----------------------------------------------------------------------------------------
; Waits with interrupts on until the qword at RDI reaches RSI or TIMEOUT passes.
wait_count:
    call hv_ref_now
    lea r13, [rax + TIMEOUT]
    sti
.poll:
    cmp [rdi], rsi
    jae .done
    call hv_ref_now
    cmp rax, r13
    jb .poll
.done:
    cli
    ret

%macro ISR_SAVE 0
    push rax
    push rbx
    push rcx
    push rdx
%endmacro
%macro ISR_EOI_RETURN 0
    xor eax, eax
    xor edx, edx
    mov ecx, HV_MSR_EOI
    wrmsr
    pop rdx
    pop rcx
    pop rbx
    pop rax
    iretq
%endmacro

isr_msg:
    ISR_SAVE
    inc qword [count_msg]
    mov eax, [SLOT]
    mov [isr_type], rax
    mov eax, [SLOT + 16]
    mov [isr_timer], rax
    call consume_slot
    ISR_EOI_RETURN

isr_direct:
    ISR_SAVE
    inc qword [count_direct]
    ISR_EOI_RETURN

isr_ipi:
    ISR_SAVE
    inc qword [count_ipi]
    ISR_EOI_RETURN

isr_autoeoi:                    ; no EOI: the SINT's AutoEOI did it
    push rbx
    inc qword [count_autoeoi]
    call consume_slot
    pop rbx
    iretq

%macro SET_GATE 2
    mov eax, %1
    mov rbx, %2
    mov cl, ACC_INTGATE
    xor ch, ch
    call idt64_set_gate
%endmacro

interrupt_tests:
    SET_GATE VEC_MSG, isr_msg
    SET_GATE VEC_DIRECT, isr_direct
    SET_GATE VEC_IPI, isr_ipi
    SET_GATE VEC_AUTOEOI, isr_autoeoi
    ; Software-enable the local APIC (SVR bit 8; spurious vector 0xFF).
    mov eax, LAPIC_SVR
    mov dword [rax], 0x1FF
    WRMSR64 HV_MSR_TPR, 0

    ; A SINT interrupt announces the message.
    WRMSR64 HV_MSR_SINT0 + SINT, VEC_MSG
    mov ebx, 0
    mov edi, 500
    call start_oneshot
    lea rdi, [count_msg]
    mov esi, 1
    call wait_count
    CHECK_EQ [count_msg], 1, "the SINT vector interrupts once for a timer message"
    CHECK_EQ [isr_type], HV_MESSAGE_TIMER_EXPIRED, "the ISR finds the timer message in its slot"

    ; Direct mode: the vector, and no message.
    mov eax, [SLOT]
    mov [isr_type], rax
    call hv_ref_now
    lea rbx, [rax + 500]
    WRMSR64 HV_MSR_STIMER0_CONFIG + 2, HV_STIMER_DIRECT | (VEC_DIRECT << 4) | HV_STIMER_AUTO_ENABLE
    WRMSR64 HV_MSR_STIMER0_COUNT + 2, rbx
    lea rdi, [count_direct]
    mov esi, 1
    call wait_count
    CHECK_EQ [count_direct], 1, "a direct-mode timer raises its APIC vector"
    mov eax, [SLOT]
    CHECK_EQ rax, 0, "a direct-mode timer sends no message"

    ; A cluster IPI to this VP (VP 0: processor mask 1).
    HVCALL HVCALL_SEND_IPI | HV_FAST, VEC_IPI, 1
    CHECK_HVSTATUS HV_STATUS_SUCCESS, "HvCallSendSyntheticClusterIpi to VP 0 -> success"
    lea rdi, [count_ipi]
    mov esi, 1
    call wait_count
    CHECK_EQ [count_ipi], 1, "the cluster IPI arrives"

    ; AutoEOI: two interrupts on one vector without an EOI in between.
    WRMSR64 HV_MSR_SINT0 + SINT, VEC_AUTOEOI | HV_SINT_AUTO_EOI
    mov ebx, 0
    mov edi, 300
    call start_oneshot
    lea rdi, [count_autoeoi]
    mov esi, 1
    call wait_count
    mov ebx, 0
    mov edi, 300
    call start_oneshot
    lea rdi, [count_autoeoi]
    mov esi, 2
    call wait_count
    CHECK_EQ [count_autoeoi], 2, "AutoEOI lets a second interrupt on the same vector in"
    WRMSR64 HV_MSR_SINT0 + SINT, VEC_MSG | HV_SINT_MASKED
    ret
