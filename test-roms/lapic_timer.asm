; lapic_timer — the local APIC timer (xAPIC MMIO at 0xFEE00000): the divide
; configuration (read back, and the counting rate at /1, /2, /16 and /128
; compared with each other on the PM timer), counting down in one-shot mode
; and stopping at 0, one-shot and periodic interrupts through an IDT with
; IF=1, writing 0 to the initial count to stop a periodic timer, a masked
; LVT (counts, never requests), an interrupt pending in IRR while IF=0 and
; delivered right after STI, ISR set during the handler, and TSC-deadline
; mode (when CPUID.01H:ECX[24] reports it: QEMU's TCG APIC does not).
; The 8259s are masked; every wait is bounded on the PM timer.

%define ROM_NAME "lapic_timer"
%include "rom.inc"
%include "timing.inc"


VEC_TIMER       equ 0x40        ; ISR/IRR word 2, bit 0
LVT_MASKED      equ 1 << 16
LVT_PERIODIC    equ 1 << 17
LVT_TSC_DEADLINE equ 2 << 17
DIV_1           equ 0x0B
DIV_2           equ 0x00
DIV_16          equ 0x03
DIV_128         equ 0x0A
MSR_TSC_DEADLINE equ 0x6E0

section .bss
ticks:          resd 1
isr_seen:       resd 1          ; ISR word 2 as the handler found it
per_ms_div16:   resd 1          ; timer counts per millisecond at /16
tsc_per_ms:     resd 1
rate:           resd 4          ; counts per ms at /1, /2, /16, /128
prev:           resd 1
pm_start:       resd 1

section .text
bits 32

timer_isr:
    push eax
    inc dword [ticks]
    mov eax, [LAPIC_ISR + 0x20]
    mov [isr_seen], eax
    mov dword [LAPIC_EOI], 0
    pop eax
    iret

; read_current: EAX = the timer's current count
read_current:
    mov eax, [LAPIC_CURRENT]
    ret

; rate_per_ms: AL = divide configuration -> EAX = timer counts per
; millisecond, measured over 20 ms of PM time
rate_per_ms:
    movzx eax, al
    mov [LAPIC_DIVIDE], eax
    mov dword [LAPIC_LVT_TIMER], LVT_MASKED | VEC_TIMER
    mov dword [LAPIC_INITIAL], 0xFFFFFFFF
    mov edi, read_current
    call pm_bracket
    mov esi, eax
    mov [pm_start], edx
    mov ecx, PM_MS(20)
    call pm_wait
    call pm_bracket
    mov dword [LAPIC_INITIAL], 0
    sub esi, eax                ; counts
    sub edx, [pm_start]
    and edx, 0xFFFFFF           ; PM ticks
    mov ecx, edx
    mov eax, esi
    jmp per_ms

; wait_ticks: STI, waits until [ticks] >= ECX or EDX PM ticks pass since
; the PM time in EBX, CLI. EAX = PM ticks since EBX.
wait_ticks:
    sti
.loop:
    cmp [ticks], ecx
    jae .done
    call pm_since
    cmp eax, edx
    jb .loop
.done:
    cli
    jmp pm_since

; sti_wait: PM-waits ECX ticks with interrupts on.
sti_wait:
    sti
    call pm_wait
    cli
    ret

; ratio10: EAX = 10 * EAX / ECX
ratio10:
    imul eax, eax, 10
    xor edx, edx
    div ecx
    ret

test_main:
    call pic_mask_all
    mov eax, VEC_TIMER
    mov ebx, timer_isr
    mov cl, ACC_INTGATE
    call idt32_set_gate
    call lapic_enable

    ; ---- divide configuration ------------------------------------------------------
    mov dword [LAPIC_DIVIDE], DIV_128
    mov eax, [LAPIC_DIVIDE]
    and eax, 0x0B
    CHECK_EQ eax, DIV_128, "divide configuration reads back"
    mov al, DIV_1
    call rate_per_ms
    mov [rate], eax
    CHECK_RANGE eax, 1000, 0xFFFFFFFF, "the timer counts at /1 (at least 1 MHz)"
    mov al, DIV_2
    call rate_per_ms
    mov [rate + 4], eax
    mov al, DIV_16
    call rate_per_ms
    mov [rate + 8], eax
    mov al, DIV_128
    call rate_per_ms
    mov [rate + 12], eax
    mov eax, [rate]
    mov ecx, [rate + 4]
    call ratio10
    CHECK_RANGE eax, 14, 26, "divide by 2 counts half as fast as by 1 (x10)"
    mov eax, [rate]
    mov ecx, [rate + 8]
    call ratio10
    CHECK_RANGE eax, 112, 208, "divide by 16 counts 16 times slower than by 1 (x10)"
    mov eax, [rate + 8]
    mov ecx, [rate + 12]
    call ratio10
    CHECK_RANGE eax, 56, 104, "divide by 128 counts 8 times slower than by 16 (x10)"
    mov eax, [rate + 8]
    mov [per_ms_div16], eax

    ; ---- one-shot: counting down, stopping at 0 -----------------------------------------
    mov dword [LAPIC_DIVIDE], DIV_16
    mov dword [LAPIC_LVT_TIMER], LVT_MASKED | VEC_TIMER
    mov eax, [per_ms_div16]
    imul eax, eax, 5
    mov [LAPIC_INITIAL], eax
    mov ecx, [LAPIC_INITIAL]
    CHECK_EQ ecx, eax, "initial count reads back"
    mov [prev], eax
    mov edi, 0                  ; count of increases seen
    call pm_now
    mov ebx, eax
.down:
    mov eax, [LAPIC_CURRENT]
    cmp eax, [prev]
    jbe .not_up
    inc edi
.not_up:
    mov [prev], eax
    call pm_since
    cmp eax, PM_MS(20)
    jb .down
    CHECK_EQ edi, 0, "one-shot: the current count only goes down"
    CHECK_EQ [LAPIC_CURRENT], 0, "one-shot: the current count stops at 0"
    mov eax, [LAPIC_IRR + 0x20]
    and eax, 1
    CHECK_EQ eax, 0, "a masked LVT leaves IRR clear"

    ; ---- one-shot interrupt ---------------------------------------------------------
    mov dword [ticks], 0
    mov dword [LAPIC_LVT_TIMER], VEC_TIMER
    call pm_now
    mov ebx, eax
    mov eax, [per_ms_div16]
    imul eax, eax, 5
    mov [LAPIC_INITIAL], eax
    mov ecx, 1
    mov edx, PM_MS(500)
    call wait_ticks
    CHECK_RANGE eax, PM_MS(3), PM_MS(500), "one-shot: the interrupt comes after about 5 ms, not before"
    mov ecx, PM_MS(20)
    call sti_wait
    CHECK_EQ [ticks], 1, "one-shot: exactly one interrupt"
    mov eax, [isr_seen]
    and eax, 1
    CHECK_EQ eax, 1, "ISR has the vector's bit while its handler runs"
    mov eax, [LAPIC_ISR + 0x20]
    and eax, 1
    CHECK_EQ eax, 0, "EOI cleared the ISR bit"

    ; ---- periodic -------------------------------------------------------------------
    mov dword [ticks], 0
    mov dword [LAPIC_LVT_TIMER], LVT_PERIODIC | VEC_TIMER
    mov eax, [per_ms_div16]
    imul eax, eax, 10           ; 10 ms
    mov [LAPIC_INITIAL], eax
    mov ecx, PM_MS(200)
    call sti_wait
    CHECK_RANGE [ticks], 8, 30, "periodic: about 20 interrupts in 200 ms at 10 ms"
    mov eax, [per_ms_div16]
    imul eax, eax, 10
    mov ecx, [LAPIC_CURRENT]
    CHECK_RANGE ecx, 0, eax, "periodic: the current count stays within the initial count"
    mov dword [LAPIC_INITIAL], 0
    mov ecx, PM_MS(5)
    call sti_wait
    mov eax, [ticks]
    mov ecx, PM_MS(20)
    call sti_wait
    CHECK_EQ [ticks], eax, "periodic: an initial count of 0 stops the timer"

    ; ---- masked LVT ------------------------------------------------------------------------
    mov dword [ticks], 0
    mov dword [LAPIC_LVT_TIMER], LVT_MASKED | VEC_TIMER
    mov eax, [per_ms_div16]
    add eax, eax
    mov [LAPIC_INITIAL], eax
    mov ecx, PM_MS(20)
    call sti_wait
    CHECK_EQ [ticks], 0, "masked LVT: no interrupt"
    CHECK_EQ [LAPIC_CURRENT], 0, "masked LVT: the timer still counted to 0"

    ; ---- IF=0: pending in IRR, delivered after STI --------------------------------------
    mov dword [LAPIC_LVT_TIMER], VEC_TIMER
    mov eax, [per_ms_div16]
    add eax, eax
    mov [LAPIC_INITIAL], eax
    mov ecx, PM_MS(20)
    call pm_wait                ; IF=0
    CHECK_EQ [ticks], 0, "IF=0: the interrupt waits"
    mov eax, [LAPIC_IRR + 0x20]
    and eax, 1
    CHECK_EQ eax, 1, "IF=0: the vector is pending in IRR"
    sti
    nop                         ; the STI shadow ends here
    cli
    CHECK_EQ [ticks], 1, "STI: the pending interrupt arrives after the next instruction"

    ; ---- TSC-deadline --------------------------------------------------------------------
    mov eax, 1
    cpuid
    test ecx, 1 << 24
    jnz .tsc_deadline
    PRINTLN "ok TSC-deadline not in CPUID.01H:ECX[24]: skipped"
    ret
.tsc_deadline:
    ; TSC ticks per millisecond, measured over 20 ms.
    mov edi, read_tsc
    call pm_bracket
    mov esi, eax
    mov [pm_start], edx
    mov ecx, PM_MS(20)
    call pm_wait
    call pm_bracket
    sub eax, esi
    sub edx, [pm_start]
    and edx, 0xFFFFFF
    mov ecx, edx
    call per_ms
    mov [tsc_per_ms], eax
    CHECK_RANGE eax, 1000, 0xFFFFFFFF, "TSC counts at least 1 MHz"

    mov dword [LAPIC_LVT_TIMER], LVT_TSC_DEADLINE | VEC_TIMER
    mov dword [LAPIC_INITIAL], 12345
    CHECK_EQ [LAPIC_CURRENT], 0, "TSC-deadline: the current count reads 0"
    mov dword [ticks], 0
    call pm_now
    mov ebx, eax
    mov eax, [tsc_per_ms]
    imul eax, eax, 5
    call arm_deadline
    mov ecx, 1
    mov edx, PM_MS(500)
    call wait_ticks
    CHECK_RANGE eax, PM_MS(3), PM_MS(500), "TSC-deadline: the interrupt comes after about 5 ms, not before"
    CHECK_EQ [ticks], 1, "TSC-deadline: one interrupt"
    mov ecx, MSR_TSC_DEADLINE
    rdmsr
    or eax, edx
    CHECK_EQ eax, 0, "TSC-deadline: the MSR reads 0 once it fired"

    mov eax, [tsc_per_ms]
    imul eax, eax, 5
    call arm_deadline
    mov ecx, MSR_TSC_DEADLINE
    xor eax, eax
    xor edx, edx
    wrmsr
    mov ecx, PM_MS(20)
    call sti_wait
    CHECK_EQ [ticks], 1, "TSC-deadline: writing 0 disarms it"

    call pm_now
    mov ebx, eax
    rdtsc
    sub eax, 1000
    sbb edx, 0
    mov ecx, MSR_TSC_DEADLINE
    wrmsr
    mov ecx, 2
    mov edx, PM_MS(100)
    call wait_ticks
    CHECK_RANGE eax, 0, PM_MS(50), "TSC-deadline: a deadline in the past fires at once"
    CHECK_EQ [ticks], 2, "TSC-deadline: the past deadline interrupted once"
    ; Leaving TSC-deadline mode disarms the timer (SDM Vol 3A 10.5.4.1).
    mov eax, [tsc_per_ms]
    imul eax, eax, 20
    call arm_deadline
    mov dword [LAPIC_LVT_TIMER], VEC_TIMER
    mov dword [LAPIC_LVT_TIMER], LVT_TSC_DEADLINE | VEC_TIMER
    mov ecx, PM_MS(50)
    call sti_wait
    CHECK_EQ [ticks], 2, "TSC-deadline: a mode change disarms the deadline"
    mov ecx, MSR_TSC_DEADLINE
    rdmsr
    or eax, edx
    CHECK_EQ eax, 0, "TSC-deadline: the MSR reads 0 after the mode change"
    mov dword [LAPIC_LVT_TIMER], LVT_MASKED | VEC_TIMER
    ret

; read_tsc: EAX = the TSC's low half
read_tsc:
    push edx
    rdtsc
    pop edx
    ret

; arm_deadline: IA32_TSC_DEADLINE = TSC + EAX (preserves EBX)
arm_deadline:
    mov esi, eax
    rdtsc
    add eax, esi
    adc edx, 0
    mov ecx, MSR_TSC_DEADLINE
    wrmsr
    ret
