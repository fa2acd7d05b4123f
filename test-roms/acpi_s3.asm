; acpi_s3 — suspend to RAM (ACPI S3) and wake on the RTC alarm, the way
; kvm-unit-tests' s3 does it: the ROM finds the FADT and FACS through the
; RSDP and RSDT, copies a real-mode stub to 0x1000 and writes that address
; to the FACS's Firmware Waking Vector, enables the RTC wake event (PM1_EN
; RTC_EN), arms an RTC alarm for the next second, and writes SLP_TYP 1 (S3
; on QEMU's PIIX4 and on viridian, as their DSDT \_S3 says) with SLP_EN to
; PM1a_CNT. The machine must stop running; the alarm wakes it and the
; firmware's resume path (SeaBIOS s3_resume under QEMU, the machine itself
; on viridian) enters the stub in real mode at CS:IP = 0100:0000. The stub
; checks CS, that RAM kept a marker written before the sleep, and that
; PM1_STS holds WAK_STS and RTC_STS, then reports PASS itself.

%define ROM_NAME "acpi_s3"
%include "rom.inc"
%include "timing.inc"

STUB_BASE       equ 0x1000          ; the waking vector (as kvm-unit-tests' s3)
MARKER          equ 0x0500          ; a dword the stub expects to find again
MARKER_VALUE    equ 0x33533353      ; "S3S3"
PM1_EVT_SAVE    equ 0x0504          ; PM1a_EVT_BLK for the stub
WAK_STS         equ 0x8000
RTC_STS         equ 0x0400
RTC_EN          equ 0x0400
SLP_TYP_S3      equ 1
SLP_EN          equ 0x2000
CMOS_INDEX      equ 0x70
CMOS_DATA       equ 0x71
COM1            equ 0x3F8

section .bss
rsdt:           resd 1
fadt:           resd 1
facs:           resd 1
pm1a_evt:       resd 1
pm1a_cnt:       resd 1

section .text
bits 32

; rtc_read: AL = CMOS register AL
rtc_read:
    out CMOS_INDEX, al
    in al, CMOS_DATA
    ret

; rtc_write: CMOS register AL = AH
rtc_write:
    out CMOS_INDEX, al
    mov al, ah
    out CMOS_DATA, al
    ret

test_main:
    ; The RSDP: "RSD PTR " on a 16-byte boundary in 0xE0000-0xFFFFF.
    mov esi, 0xE0000
.scan:
    cmp dword [esi], 'RSD '
    jne .next
    cmp dword [esi + 4], 'PTR '
    je .found_rsdp
.next:
    add esi, 16
    cmp esi, 0x100000
    jb .scan
    TEST_FAIL "no RSDP in 0xE0000-0xFFFFF"
.found_rsdp:
    mov eax, [esi + 16]             ; RsdtAddress
    mov [rsdt], eax
    ; The FADT among the RSDT's 32-bit entries.
    mov ebx, eax
    mov ecx, [ebx + 4]              ; length
    sub ecx, 36
    shr ecx, 2
    lea esi, [ebx + 36]
.entries:
    test ecx, ecx
    jz .no_fadt
    mov edx, [esi]
    cmp dword [edx], 'FACP'
    je .found_fadt
    add esi, 4
    dec ecx
    jmp .entries
.no_fadt:
    TEST_FAIL "no FACP in the RSDT"
.found_fadt:
    mov [fadt], edx
    mov eax, [edx + 36]             ; FIRMWARE_CTRL: the FACS
    mov [facs], eax
    mov eax, [edx + 56]             ; PM1a_EVT_BLK
    mov [pm1a_evt], eax
    mov eax, [edx + 64]             ; PM1a_CNT_BLK
    mov [pm1a_cnt], eax
    mov eax, [facs]
    CHECK_EQ dword [eax], 'FACS', "the FADT's FIRMWARE_CTRL points at the FACS"

    ; The stub at the waking vector, and what it checks.
    mov esi, s3_stub
    mov edi, STUB_BASE
    mov ecx, s3_stub_end - s3_stub
    rep movsb
    mov eax, [facs]
    mov dword [eax + 12], STUB_BASE ; Firmware Waking Vector
    mov dword [eax + 24], 0         ; X_Firmware_Waking_Vector: none
    mov dword [eax + 28], 0
    mov dword [MARKER], MARKER_VALUE
    mov eax, [pm1a_evt]
    mov [PM1_EVT_SAVE], ax

    ; Clear PM1 status, enable the RTC wake event.
    mov edx, [pm1a_evt]
    mov ax, 0xFFFF
    out dx, ax
    add edx, 2
    mov ax, RTC_EN
    out dx, ax

    ; An alarm at the next update: wait for an update to end, then every
    ; alarm byte "don't care" and AIE.
    mov ebx, 0
    call pm_now
    mov ebx, eax
.uip_set:
    call pm_since
    cmp eax, PM_MS(2000)
    ja .rtc_stuck
    mov al, 0x0A
    call rtc_read
    test al, 0x80
    jz .uip_set
.uip_clear:
    mov al, 0x0A
    call rtc_read
    test al, 0x80
    jnz .uip_clear
    mov al, 0x0C
    call rtc_read
    mov ax, 0xC001                  ; seconds alarm
    call rtc_write
    mov ax, 0xC003                  ; minutes alarm
    call rtc_write
    mov ax, 0xC005                  ; hours alarm
    call rtc_write
    mov al, 0x0B
    call rtc_read
    or al, 0x20                     ; AIE
    mov ah, al
    mov al, 0x0B
    call rtc_write
    PRINTLN "ok RTC alarm armed; entering S3"

    mov edx, [pm1a_cnt]
    mov ax, (SLP_TYP_S3 << 10) | SLP_EN
    out dx, ax
    ; Still running: the machine did not sleep (or woke and came back here).
    mov ecx, PM_MS(3000)
    call pm_wait
    TEST_FAIL "still running 3 s after SLP_EN with SLP_TYP 1 (S3)"
.rtc_stuck:
    TEST_FAIL "the RTC never set UIP in 2 s"

; ---- the real-mode stub, copied to STUB_BASE --------------------------------------
bits 16
%define STUB(label) (STUB_BASE + (label) - s3_stub)
s3_stub:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x0FF0
    mov si, STUB(.m_cs)
    mov ax, cs
    cmp ax, STUB_BASE >> 4
    jne .fail
    call .println
    mov si, STUB(.m_ram)
    cmp dword [MARKER], MARKER_VALUE
    jne .fail
    call .println
    mov si, STUB(.m_sts)
    mov dx, [PM1_EVT_SAVE]
    in ax, dx
    and ax, WAK_STS | RTC_STS
    cmp ax, WAK_STS | RTC_STS
    jne .fail
    call .println
    mov si, STUB(.m_pass)
    call .print
    mov eax, EXIT_PASS
    jmp .exit
.fail:
    push si
    mov si, STUB(.m_fail)
    call .print
    pop si
    call .println
    mov eax, EXIT_FAIL
.exit:
    mov dx, DEBUG_EXIT_PORT
    out dx, eax
.park:
    hlt
    jmp .park
; .print: the NUL-terminated string at DS:SI to COM1
.print:
    mov dx, COM1
.char:
    lodsb
    test al, al
    jz .done
    out dx, al
    jmp .char
.done:
    ret
.println:
    push si
    mov si, STUB(.m_ok)
    call .print
    pop si
    call .print
    mov al, 10
    mov dx, COM1
    out dx, al
    ret
.m_ok:   db "ok ", 0
.m_fail: db "FAIL: ", 0
.m_cs:   db "resumed in real mode at the waking vector (CS = 0100)", 0
.m_ram:  db "RAM kept its contents across S3", 0
.m_sts:  db "PM1_STS has WAK_STS and RTC_STS after the RTC alarm woke the machine", 0
.m_pass: db "PASS", 10, 0
s3_stub_end:
bits 32
