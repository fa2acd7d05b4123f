; rtc_update — the MC146818 RTC's update cycle and flags, polled through
; register C (interrupts stay off): the update-ended flag once a second
; with the seconds advancing, periodic flags at two rates, the alarm (one second and all "don't care"), IRQF, and the time
; rolling over in binary and BCD, 24- and 12-hour form (set under the SET
; bit, with the format chosen in the same register B write).
; Every wait is bounded and measured on the PM timer.
;
; Left out because QEMU 7.2 (the oracle) does not show it to a polling
; guest: register A's UIP bit (never seen set in 12 million reads).

%define ROM_NAME "rtc_update"
%include "rom.inc"
%include "timing.inc"

CMOS_INDEX      equ 0x70
CMOS_DATA       equ 0x71
RTC_SEC         equ 0x00
RTC_SEC_ALARM   equ 0x01
RTC_MIN         equ 0x02
RTC_MIN_ALARM   equ 0x03
RTC_HOUR        equ 0x04
RTC_HOUR_ALARM  equ 0x05
RTC_DAY         equ 0x07
RTC_MONTH       equ 0x08
RTC_YEAR        equ 0x09
RTC_CENTURY     equ 0x32
RTC_A           equ 0x0A
RTC_B           equ 0x0B
RTC_C           equ 0x0C
RTC_D           equ 0x0D

A_UIP           equ 0x80
A_DV_NORMAL     equ 0x20        ; 32.768 kHz time base, divider running
B_SET           equ 0x80
B_PIE           equ 0x40
B_AIE           equ 0x20
B_UIE           equ 0x10
B_DM_BINARY     equ 0x04
B_24H           equ 0x02
C_IRQF          equ 0x80
C_PF            equ 0x40
C_AF            equ 0x20
C_UF            equ 0x10
HOUR_PM         equ 0x80

section .bss
c_seen:         resd 1          ; register C bits seen by the last wait
count:          resd 1
sec_before:     resd 1
alarm_sec:      resd 1
pm_start:       resd 1

section .text
bits 32

; cmos_read: AL = index -> EAX = value
cmos_read:
    out CMOS_INDEX, al
    xor eax, eax
    in al, CMOS_DATA
    ret

; cmos_write: AL = index, AH = value
cmos_write:
    out CMOS_INDEX, al
    mov al, ah
    out CMOS_DATA, al
    ret

; wait_c: reads register C until a bit of BL shows up or ECX PM ticks pass.
; [c_seen] = every bit read meanwhile; EAX = PM ticks waited. Fails the
; check named by ESI on timeout.
wait_c:
    mov dword [c_seen], 0
    push ebx
    call pm_now
    mov edx, eax                ; start
    pop ebx
.loop:
    mov al, RTC_C
    call cmos_read
    or [c_seen], eax
    test [c_seen], bl
    jnz .done
    push ebx
    mov ebx, edx
    call pm_since
    pop ebx
    cmp eax, ecx
    jb .loop
    PRINT "FAIL: "
    call serial_puts
    PRINTLN ": timed out"
    mov eax, EXIT_FAIL
    jmp exit_with
.done:
    push ebx
    mov ebx, edx
    call pm_since
    pop ebx
    ret

%macro WAIT_C 3                 ; mask, milliseconds, "what"
    STRING %%what, %3
    mov bl, %1
    mov ecx, PM_MS(%2)
    mov esi, %%what
    call wait_c
%endmacro

; clear_c: reads register C once to clear it
clear_c:
    mov al, RTC_C
    jmp cmos_read

; set_time: B = AH (must include B_SET), then seconds BL, minutes BH, hours
; CL, day CH, month DL, year DH, century 20, then B = AH without SET.
set_time:
    push eax
    mov al, RTC_B
    call cmos_write
    mov al, RTC_SEC
    mov ah, bl
    call cmos_write
    mov al, RTC_MIN
    mov ah, bh
    call cmos_write
    mov al, RTC_HOUR
    mov ah, cl
    call cmos_write
    mov al, RTC_DAY
    mov ah, ch
    call cmos_write
    mov al, RTC_MONTH
    mov ah, dl
    call cmos_write
    mov al, RTC_YEAR
    mov ah, dh
    call cmos_write
    ; The century (register 0x32, the FADT's) in the same format: QEMU
    ; counts it into the date.
    mov ah, 0x20
    test byte [esp + 1], B_DM_BINARY
    jz .bcd_century
    mov ah, 20
.bcd_century:
    mov al, RTC_CENTURY
    call cmos_write
    pop eax
    and ah, ~B_SET
    mov al, RTC_B
    call cmos_write
    ret

; next_update: waits for the update-ended flag (up to 1.5 s) and returns
; EAX = the seconds register read right after it.
next_update:
    call clear_c
    WAIT_C C_UF, 1500, "update-ended flag within 1.5 s"
    mov al, RTC_SEC
    jmp cmos_read

test_main:
    mov ah, B_24H               ; BCD, 24-hour, no interrupts
    mov al, RTC_B
    call cmos_write
    mov ah, A_DV_NORMAL         ; no periodic flag (rate 0)
    mov al, RTC_A
    call cmos_write
    mov al, RTC_D
    call cmos_read
    and eax, 0x80
    CHECK_EQ eax, 0x80, "register D: valid RAM and time"

    ; ---- the update-ended flag ----------------------------------------------------
    call clear_c
    WAIT_C C_UF, 1500, "update-ended flag within 1.5 s"
    PRINTLN "ok register C: update-ended flag set, interrupts disabled"
    mov eax, [c_seen]
    and eax, C_IRQF | C_UF
    CHECK_EQ eax, C_UF, "register C: no IRQF for UF while UIE is clear"
    mov al, RTC_SEC
    call cmos_read
    mov [sec_before], eax
    call clear_c
    WAIT_C C_UF, 1500, "update-ended flag within 1.5 s"
    CHECK_RANGE eax, PM_MS(600), PM_MS(1400), "register C: update-ended flag once a second"
    mov al, RTC_SEC
    call cmos_read
    mov ecx, [sec_before]
    inc ecx
    mov edx, ecx
    and edx, 0x0F
    cmp edx, 0x0A               ; BCD carry
    jne .no_carry
    add ecx, 6
.no_carry:
    cmp ecx, 0x60
    jne .no_wrap
    xor ecx, ecx
.no_wrap:
    CHECK_EQ eax, ecx, "the seconds advanced by one between two update-ended flags"
    call clear_c
    mov al, RTC_C
    call cmos_read
    CHECK_EQ eax, 0, "register C reads 0 right after a read"

    ; UIE: the update-ended flag with IRQF.
    mov ah, B_24H | B_UIE
    mov al, RTC_B
    call cmos_write
    call clear_c
    WAIT_C C_UF, 1500, "update-ended flag with UIE"
    mov eax, [c_seen]
    and eax, C_IRQF | C_UF
    CHECK_EQ eax, C_IRQF | C_UF, "register C: IRQF and UF with UIE set"

    ; ---- periodic flag ----------------------------------------------------------
    ; rate 9: 128 Hz. (Counts allow for an emulator that is descheduled
    ; and drops flags, as QEMU's does under load, but no more than 1.4x.)
    mov ah, A_DV_NORMAL | 0x09
    mov al, RTC_A
    call cmos_write
    mov ah, B_24H | B_PIE
    mov al, RTC_B
    call cmos_write
    call clear_c
    WAIT_C C_PF, 100, "periodic flag at 128 Hz"
    mov eax, [c_seen]
    and eax, C_IRQF | C_PF
    CHECK_EQ eax, C_IRQF | C_PF, "register C: IRQF and PF with PIE set"
    mov ecx, PM_MS(500)
    call count_pf
    CHECK_RANGE eax, 24, 90, "periodic flag at 128 Hz: about 64 flags in 500 ms"
    ; rate 12: 16 Hz
    mov ah, A_DV_NORMAL | 0x0C
    mov al, RTC_A
    call cmos_write
    call clear_c
    mov ecx, PM_MS(1000)
    call count_pf
    CHECK_RANGE eax, 8, 20, "periodic flag at 16 Hz: about 16 flags in 1 s"
    mov ah, B_24H
    mov al, RTC_B
    call cmos_write
    mov ah, A_DV_NORMAL
    mov al, RTC_A
    call cmos_write

    ; ---- alarm ---------------------------------------------------------------------
    ; Alarm at the seconds value two updates ahead, any minute and hour.
    call next_update
    add al, 2
    mov ah, al
    and ah, 0x0F
    cmp ah, 0x0A
    jb .alarm_bcd
    add al, 6
.alarm_bcd:
    cmp al, 0x60
    jb .alarm_wrap
    sub al, 0x60
.alarm_wrap:
    movzx eax, al
    mov [alarm_sec], eax
    mov ah, al
    mov al, RTC_SEC_ALARM
    call cmos_write
    mov ax, 0xFF00 | RTC_MIN_ALARM
    call cmos_write
    mov ax, 0xFF00 | RTC_HOUR_ALARM
    call cmos_write
    mov ah, B_24H | B_AIE
    mov al, RTC_B
    call cmos_write
    call clear_c
    WAIT_C C_AF, 3500, "alarm flag within 3.5 s"
    CHECK_RANGE eax, PM_MS(1400), PM_MS(3000), "alarm: not at the first update, at the second"
    mov eax, [c_seen]
    and eax, C_IRQF | C_AF
    CHECK_EQ eax, C_IRQF | C_AF, "register C: IRQF and AF with AIE set"
    mov al, RTC_SEC
    call cmos_read
    CHECK_EQ eax, [alarm_sec], "alarm: the seconds register equals the alarm seconds"
    ; All three "don't care": the alarm goes off at every update.
    mov ax, 0xC0 << 8 | RTC_SEC_ALARM
    call cmos_write
    call clear_c
    WAIT_C C_UF, 1500, "update with an all-don't-care alarm"
    mov eax, [c_seen]
    and eax, C_AF | C_UF
    CHECK_EQ eax, C_AF | C_UF, "alarm with don't-care bytes: AF with every update"
    mov ah, B_24H
    mov al, RTC_B
    call cmos_write

    ; ---- formats and roll-over -----------------------------------------------------
    ; binary, 24 h: 1999-12-31 23:59:58 -> 2000-01-01 00:00:0x
    mov ah, B_SET | B_DM_BINARY | B_24H
    mov bx, 59 << 8 | 58
    mov cx, 31 << 8 | 23
    mov dx, 99 << 8 | 12
    call set_time
    call wait_rollover
    CHECK_RANGE eax, 0, 1, "binary 24 h: seconds roll over to 0"
    mov al, RTC_MIN
    call cmos_read
    CHECK_EQ eax, 0, "binary 24 h: minutes roll over to 0"
    mov al, RTC_HOUR
    call cmos_read
    CHECK_EQ eax, 0, "binary 24 h: 23 h rolls over to 0"
    mov al, RTC_DAY
    call cmos_read
    CHECK_EQ eax, 1, "binary: day 31 rolls over to 1"
    mov al, RTC_MONTH
    call cmos_read
    CHECK_EQ eax, 1, "binary: month 12 rolls over to 1"
    mov al, RTC_YEAR
    call cmos_read
    CHECK_EQ eax, 0, "binary: year 99 rolls over to 0"

    ; BCD, 24 h: 19:59:59 -> 20:00:00 (0x20, a BCD carry)
    mov ah, B_SET | B_24H
    mov bx, 0x5959
    mov cx, 0x1519
    mov dx, 0x2406
    call set_time
    call next_update
    mov al, RTC_HOUR
    call cmos_read
    CHECK_EQ eax, 0x20, "BCD 24 h: 19:59:59 -> hour 0x20"
    mov al, RTC_MIN
    call cmos_read
    CHECK_EQ eax, 0, "BCD 24 h: minutes 0x59 -> 0x00"

    ; BCD, 12 h: 11:59:59 PM -> 12:00:00 AM, 11:59:59 AM -> 12:00:00 PM
    mov ah, B_SET
    mov bx, 0x5959
    mov cx, 0x1500 | HOUR_PM | 0x11
    mov dx, 0x2406
    call set_time
    call next_update
    mov al, RTC_HOUR
    call cmos_read
    CHECK_EQ eax, 0x12, "BCD 12 h: 11:59:59 PM -> 12 AM (0x12)"
    mov al, RTC_DAY
    call cmos_read
    CHECK_EQ eax, 0x16, "BCD 12 h: midnight advances the day"
    mov ah, B_SET
    mov bx, 0x5959
    mov cx, 0x1500 | 0x11
    mov dx, 0x2406
    call set_time
    call next_update
    mov al, RTC_HOUR
    call cmos_read
    CHECK_EQ eax, HOUR_PM | 0x12, "BCD 12 h: 11:59:59 AM -> 12 PM (0x92)"
    ; binary, 12 h: 12:59:59 PM -> 1 PM (0x81)
    mov ah, B_SET | B_DM_BINARY
    mov bx, 59 << 8 | 59
    mov cx, 15 << 8 | HOUR_PM | 12
    mov dx, 24 << 8 | 6
    call set_time
    call next_update
    mov al, RTC_HOUR
    call cmos_read
    CHECK_EQ eax, HOUR_PM | 1, "binary 12 h: 12:59:59 PM -> 1 PM (0x81)"

    mov ah, B_24H
    mov al, RTC_B
    call cmos_write
    ret

; count_pf: counts periodic flags for ECX PM ticks -> EAX
count_pf:
    mov dword [count], 0
    call pm_now
    mov ebx, eax
.loop:
    mov al, RTC_C
    call cmos_read
    test al, C_PF
    jz .none
    inc dword [count]
.none:
    call pm_since
    cmp eax, ecx
    jb .loop
    mov eax, [count]
    ret

; wait_rollover: waits for updates until the seconds register (binary) drops
; below 58 (at most 3 updates); EAX = seconds then.
wait_rollover:
    mov edi, 3
.again:
    call next_update
    cmp eax, 58
    jb .done
    dec edi
    jnz .again
.done:
    ret
