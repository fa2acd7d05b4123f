; smp.asm — starting an application processor the MP way (SDM Vol 3A 8.4.4):
; the BSP flag in IA32_APIC_BASE, INIT and start-up IPIs through the local
; APIC's ICR, the AP's real-mode start at vector << 12 with its own APIC ID
; in CPUID, a second INIT putting the AP back into wait-for-SIPI so that a
; new SIPI restarts it, a SIPI to a running AP being ignored, and fw_cfg's
; CPU count. Run with two vCPUs (ROM_CPUS=2: --cpus 2 / -smp 2).

%define ROM_NAME "smp"
%include "rom.inc"
%include "smp.inc"

STARTS          equ 0x6000          ; word: how many times an AP started
SEEN_IDS        equ 0x6010          ; byte per APIC ID that ran the trampoline

section .text
bits 32
test_main:
    mov dword [STARTS], 0
    mov dword [SEEN_IDS], 0
    SMP_INSTALL_TRAMPOLINE

    mov ecx, 0x1B
    rdmsr
    and eax, 0xFFFFF900
    CHECK_EQ eax, 0xFEE00900, "IA32_APIC_BASE: default base, enabled, BSP flag set"
    mov eax, [LAPIC_ID]
    shr eax, 24
    CHECK_EQ eax, 0, "the BSP's APIC ID is 0"

    call smp_start_ap
    mov eax, 1
    call wait_for_starts
    CHECK_EQ32 [STARTS], 1, "INIT + SIPI + SIPI: the AP ran the trampoline once"
    movzx eax, byte [SEEN_IDS + 1]
    CHECK_EQ eax, 0xA5, "the AP's CPUID initial APIC ID is 1"
    movzx eax, byte [SEEN_IDS]
    CHECK_EQ eax, 0, "the BSP never ran the trampoline"

    ; A start-up IPI to an AP that is already running is ignored.
    mov eax, SMP_SIPI
    call smp_send_ipi
    mov eax, 1
    call spin_a_while
    CHECK_EQ32 [STARTS], 1, "a SIPI to a running AP is ignored"

    ; INIT puts the AP back into wait-for-SIPI; a new SIPI restarts it.
    call smp_start_ap
    mov eax, 2
    call wait_for_starts
    CHECK_EQ32 [STARTS], 2, "a second INIT + SIPI restarts the AP"

    mov dx, 0x510                   ; fw_cfg selector: key 0x05, CPU count
    mov ax, 0x05
    out dx, ax
    mov dx, 0x511
    in al, dx
    mov ah, al
    in al, dx
    xchg al, ah
    movzx eax, ax
    CHECK_EQ eax, 2, "fw_cfg reports two CPUs"
    ret

; Waits until [STARTS] reaches EAX (or fails after a generous spin).
wait_for_starts:
    mov ecx, 50000000
.poll:
    cmp [STARTS], eax
    jae .done
    pause
    loop .poll
    TEST_FAIL "the AP did not start"
.done:
    ret

; Spins EAX * 1,000,000 iterations, giving the AP time to act.
spin_a_while:
    imul ecx, eax, 1000000
.spin:
    pause
    loop .spin
    ret

; Copied to SMP_TRAMPOLINE; runs in real mode at 0700:0000 on the AP.
bits 16
smp_trampoline:
    cli
    xor ax, ax
    mov ds, ax
    mov eax, 1
    cpuid
    shr ebx, 24
    and bx, 0x0F
    mov byte [SEEN_IDS + bx], 0xA5
    lock inc word [STARTS]
.halt:
    hlt
    jmp .halt
smp_trampoline_end:
bits 32
