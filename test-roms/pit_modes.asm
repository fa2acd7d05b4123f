; pit_modes — the 8254 PIT's counter 2 (the one software can gate and whose
; OUT it can read, through port 0x61) in modes 0, 2 and 3: counting rate
; against the PM timer, OUT levels, the counter latch command, the
; read-back command with status bytes, and the gate's rising edge.
; Interrupts stay off; every time is measured on the PM timer.
;
; Left out because QEMU 7.2 (the oracle) does not model them: BCD counting,
; the gate pausing modes 0/2/3 while low, the null-count status bit, and
; OUT in modes 1 and 2 (QEMU has both inverted: mode 2's OUT reads high
; for one clock per period instead of low).

%define ROM_NAME "pit_modes"
%include "rom.inc"
%include "timing.inc"

PIT_CH2         equ 0x42
PIT_CTRL        equ 0x43
PORT_B          equ 0x61
PORTB_GATE2     equ 0x01
PORTB_OUT2      equ 0x20

; control words for counter 2 (bits 7-6 = 10)
CW2_MODE0       equ 0xB0        ; LSB then MSB, mode 0, binary
CW2_MODE2       equ 0xB4
CW2_MODE3       equ 0xB6
CW2_LSB_MODE0   equ 0x90        ; LSB only, mode 0
CW2_MSB_MODE0   equ 0xA0        ; MSB only, mode 0
CW2_LATCH       equ 0x80        ; counter latch command for counter 2
RB_STATUS2      equ 0xE8        ; read-back: status only, counter 2
RB_BOTH2        equ 0xC8        ; read-back: count and status, counter 2

section .bss
samples_high:   resd 1
samples_low:    resd 1
sample_total:   resd 1
wraps:          resd 1
odd_counts:     resd 1
out_changes:    resd 1
max_count:      resd 1
min_count:      resd 1
last_count:     resd 1
last_out:       resd 1
count0:         resd 1
pm0:            resd 1

section .text
bits 32

; set_gate: AL = 0 or 1 (speaker data bit stays off)
set_gate:
    out PORT_B, al
    ret

; program2: AL = control word, BX = count (both bytes written)
program2:
    out PIT_CTRL, al
    mov al, bl
    out PIT_CH2, al
    mov al, bh
    out PIT_CH2, al
    ret

; latch2: EAX = counter 2's count through the latch command
latch2:
    mov al, CW2_LATCH
    out PIT_CTRL, al
read2:                          ; EAX = LSB then MSB of counter 2 (latched or live)
    xor eax, eax
    in al, PIT_CH2
    mov ah, al
    in al, PIT_CH2
    xchg al, ah
    ret

; out2: EAX = 1 if OUT 2 is high (port 0x61 bit 5)
out2:
    in al, PORT_B
    shr al, 5
    and eax, 1
    ret

; status2: EAX = counter 2's status byte (read-back command)
status2:
    mov al, RB_STATUS2
    out PIT_CTRL, al
    xor eax, eax
    in al, PIT_CH2
    ret

; sample_for: samples counter 2 (latched count and OUT) for ECX PM ticks;
; fills the sample_* statistics.
sample_for:
    xor eax, eax
    mov [samples_high], eax
    mov [samples_low], eax
    mov [sample_total], eax
    mov [wraps], eax
    mov [odd_counts], eax
    mov [out_changes], eax
    mov [max_count], eax
    mov dword [min_count], 0xFFFFFFFF
    call latch2
    mov [last_count], eax
    call out2
    mov [last_out], eax
    call pm_now
    mov ebx, eax
.loop:
    call latch2
    inc dword [sample_total]
    test al, 1
    jz .even
    inc dword [odd_counts]
.even:
    cmp eax, [max_count]
    jbe .not_max
    mov [max_count], eax
.not_max:
    cmp eax, [min_count]
    jae .not_min
    mov [min_count], eax
.not_min:
    cmp eax, [last_count]
    jbe .no_wrap
    inc dword [wraps]           ; the count went up: a reload happened
.no_wrap:
    mov [last_count], eax
    call out2
    cmp eax, [last_out]
    je .same_out
    inc dword [out_changes]
    mov [last_out], eax
.same_out:
    test eax, eax
    jz .low
    inc dword [samples_high]
    jmp .next
.low:
    inc dword [samples_low]
.next:
    call pm_since
    cmp eax, ecx
    jb .loop
    ret

test_main:
    ; ---- port 0x61 ----------------------------------------------------------------
    mov al, 0x01
    call set_gate
    in al, PORT_B
    and eax, 0x03
    CHECK_EQ eax, 0x01, "port 0x61 reads back gate 2 set, speaker data clear"
    mov al, 0x00
    call set_gate
    in al, PORT_B
    and eax, 0x03
    CHECK_EQ eax, 0x00, "port 0x61 reads back gate 2 clear"

    ; ---- mode 0: interrupt on terminal count --------------------------------------
    mov al, 1
    call set_gate
    mov al, CW2_MODE0
    mov bx, 0xFFFF              ; 55 ms
    call program2
    call out2
    CHECK_EQ eax, 0, "mode 0: OUT low after the count is written"
    call status2
    and eax, 0xBF               ; null count (bit 6) not compared
    CHECK_EQ eax, 0x30, "mode 0: status = OUT low, LSB/MSB, mode 0, binary"
    mov ecx, PM_MS(60)
    call pm_wait
    call out2
    CHECK_EQ eax, 1, "mode 0: OUT high after the terminal count"
    call status2
    and eax, 0xBF               ; null count (bit 6) not compared
    CHECK_EQ eax, 0xB0, "mode 0: status bit 7 follows OUT"
    mov bx, 0xFFFF
    mov al, bl
    out PIT_CH2, al
    mov al, bh
    out PIT_CH2, al
    call out2
    CHECK_EQ eax, 0, "mode 0: a new count sends OUT low again"

    ; Counting rate: the PIT runs at exactly 1/3 of the PM timer.
    mov al, CW2_MODE0
    mov bx, 0xFFFF
    call program2
    mov edi, latch2
    call pm_bracket
    mov [count0], eax
    mov [pm0], edx
    mov ecx, PM_MS(20)
    call pm_wait
    call pm_bracket
    mov esi, [count0]
    sub esi, eax                ; PIT ticks
    sub edx, [pm0]
    and edx, 0xFFFFFF           ; PM ticks
    mov ecx, edx
    mov eax, esi
    call per_ms
    CHECK_RANGE eax, 1193 * 9 / 10, 1193 * 11 / 10, "mode 0: counts 1193 per ms of PM time"

    ; ---- latch command ----------------------------------------------------------------
    mov al, CW2_MODE0
    mov bx, 0xFFFF
    call program2
    mov al, CW2_LATCH
    out PIT_CTRL, al
    mov ecx, PM_MS(10)
    call pm_wait
    mov al, CW2_LATCH           ; a second latch before the read is ignored
    out PIT_CTRL, al
    call read2
    mov esi, eax
    call latch2
    sub esi, eax
    CHECK_RANGE esi, 6000, 0xFFFF, "latch: the count is frozen at the first latch command"
    call read2
    mov esi, eax
    mov ecx, PM_MS(5)
    call pm_wait
    call read2
    sub esi, eax
    CHECK_RANGE esi, 3000, 0xFFFF, "latch: reads without a latch follow the counter"

    ; ---- read-back command ---------------------------------------------------------
    mov al, CW2_MODE3
    mov bx, 1000
    call program2
    call status2
    and eax, 0x3F
    CHECK_EQ eax, 0x36, "read-back status: LSB/MSB, mode 3, binary"
    mov al, RB_BOTH2
    out PIT_CTRL, al
    xor eax, eax
    in al, PIT_CH2
    and eax, 0x3F
    CHECK_EQ eax, 0x36, "read-back count and status: status comes first"
    call read2
    CHECK_RANGE eax, 1, 1000, "read-back count and status: then the count"
    mov al, CW2_LSB_MODE0
    out PIT_CTRL, al
    mov al, 0x50
    out PIT_CH2, al
    call status2
    and eax, 0x3F
    CHECK_EQ eax, 0x10, "read-back status: LSB only, mode 0"
    mov al, CW2_MSB_MODE0
    out PIT_CTRL, al
    mov al, 0x50                ; count 0x5000, 17 ms
    out PIT_CH2, al
    call status2
    and eax, 0x3F
    CHECK_EQ eax, 0x20, "read-back status: MSB only, mode 0"
    mov al, CW2_LATCH
    out PIT_CTRL, al
    xor eax, eax
    in al, PIT_CH2
    CHECK_RANGE eax, 0x40, 0x50, "MSB-only access: one read returns the MSB"

    ; ---- mode 2: rate generator ---------------------------------------------------------
    mov al, CW2_MODE2
    mov bx, 11932               ; 10 ms period
    call program2
    mov ecx, PM_MS(200)
    call sample_for
    CHECK_RANGE [max_count], 1, 11932, "mode 2: the count never exceeds the initial count"
    CHECK_RANGE [min_count], 1, 11932, "mode 2: the count never reads 0"
    CHECK_RANGE [wraps], 10, 30, "mode 2: reloads once per period (200 ms at 100 Hz)"

    ; ---- mode 3: square wave ------------------------------------------------------------
    mov al, CW2_MODE3
    mov bx, 23864               ; 20 ms period
    call program2
    mov ecx, PM_MS(200)
    call sample_for
    CHECK_EQ [odd_counts], 0, "mode 3: an even count decrements by two"
    CHECK_RANGE [max_count], 2, 23864, "mode 3: the count stays within the initial count"
    CHECK_RANGE [out_changes], 10, 30, "mode 3: OUT toggles every half period (200 ms at 50 Hz)"
    mov eax, [samples_high]
    imul eax, eax, 100
    xor edx, edx
    div dword [sample_total]
    CHECK_RANGE eax, 30, 70, "mode 3: OUT is high half of the time (percent)"

    ; ---- gate: a rising edge restarts modes 2 and 3 ------------------------------------
    mov al, CW2_MODE2
    mov bx, 0xFFFF              ; 55 ms period
    call program2
    mov ecx, PM_MS(30)
    call pm_wait
    call latch2
    CHECK_RANGE eax, 1, 0xFFFF - 20000, "gate: mode 2 counted down for 30 ms"
    mov al, 0
    call set_gate
    mov al, 1
    call set_gate
    call latch2
    CHECK_RANGE eax, 0xFFFF - 20000, 0xFFFF, "gate: the rising edge reloaded the initial count"
    mov al, 0
    call set_gate
    ret
