; A boot sector for the firmware disk-boot test (tests/frontend/disk_boot_test.sh).
; SeaBIOS loads it from the first IDE disk at 0:7C00. Through the BIOS disk
; services (int 13h extensions, as boot loaders use them) it checks the
; disk's size, reads sectors 1-16 and the last sector, which the test wrote
; with known patterns, writes sector 17, and reads it back. It reports on
; the screen (int 10h; SeaBIOS's serial console shows it on COM1) and
; through the debug-exit port: 0 = every check passed, N = check N failed.
bits 16
org 0x7C00

PATTERN_SECTORS equ 16
BUFFER equ 0x8000
EXIT_PORT equ 0xF4

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    mov [drive], dl
    mov si, msg_hello
    call print

    ; Check 1: the extensions are there (int 13h AH=41h).
    mov byte [check], 1
    mov ah, 0x41
    mov bx, 0x55AA
    mov dl, [drive]
    int 0x13
    jc fail
    cmp bx, 0xAA55
    jne fail

    ; Check 2: the drive's size (AH=48h) is what the test made: 8192 sectors.
    mov byte [check], 2
    mov word [params], 0x1E
    mov si, params
    mov ah, 0x48
    mov dl, [drive]
    int 0x13
    jc fail
    cmp dword [params + 16], 8192
    jne fail
    cmp dword [params + 20], 0
    jne fail

    ; Check 3: sectors 1-16 hold byte (sector * 7 + offset) & 0xFF.
    mov byte [check], 3
    mov word [dap.count], PATTERN_SECTORS
    mov dword [dap.lba], 1
    mov ah, 0x42
    call disk_op
    jc fail
    mov si, BUFFER
    mov cx, PATTERN_SECTORS * 512
    xor bx, bx ; offset within the run
.pattern:
    mov ax, bx
    shr ax, 9 ; sector index from 0
    inc ax    ; sector number
    imul ax, ax, 7
    add ax, bx
    cmp [si], al
    jne fail
    inc si
    inc bx
    loop .pattern

    ; Check 4: the last sector (8191) starts with "LAST SECTOR".
    mov byte [check], 4
    mov word [dap.count], 1
    mov dword [dap.lba], 8191
    mov ah, 0x42
    call disk_op
    jc fail
    mov si, BUFFER
    mov di, last_marker
    mov cx, last_marker_len
    repe cmpsb
    jne fail

    ; Check 5: write sector 17 (AH=43h) and read it back.
    mov byte [check], 5
    mov di, BUFFER
    mov si, written_marker
    mov cx, written_marker_len
    rep movsb
    mov word [dap.count], 1
    mov dword [dap.lba], 17
    mov ax, 0x4300
    call disk_op
    jc fail
    mov di, BUFFER
    mov cx, 512
    xor al, al
    rep stosb
    mov word [dap.count], 1
    mov ah, 0x42
    call disk_op
    jc fail
    mov si, BUFFER
    mov di, written_marker
    mov cx, written_marker_len
    repe cmpsb
    jne fail

    mov si, msg_ok
    call print
    xor al, al
    jmp exit

fail:
    mov si, msg_fail
    call print
    mov al, [check]
    add al, '0'
    mov ah, 0x0E
    int 0x10
    mov al, [check]
exit:
    ; SeaBIOS's serial console sends text from its timer handler: wait a few
    ; timer ticks (18.2 Hz) so the last line is out before the machine stops.
    mov cx, 4
    sti
.drain:
    hlt
    loop .drain
    out EXIT_PORT, al
halt:
    cli
    hlt
    jmp halt

; AH = function (42h read, 43h write); the DAP says what. CF on error.
disk_op:
    mov si, dap
    mov dl, [drive]
    int 0x13
    ret

print:
    lodsb
    test al, al
    jz .done
    mov ah, 0x0E
    xor bx, bx
    int 0x10
    jmp print
.done:
    ret

msg_hello: db "disk-boot: loaded", 13, 10, 0
msg_ok: db "disk-boot: all checks passed", 13, 10, 0
msg_fail: db "disk-boot: FAILED check ", 0
last_marker: db "LAST SECTOR"
last_marker_len equ $ - last_marker
written_marker: db "WRITTEN BY THE BOOT SECTOR"
written_marker_len equ $ - written_marker

align 4
dap:
    db 0x10, 0
.count: dw 0
    dw BUFFER, 0 ; offset, segment
.lba: dq 0
drive: db 0
check: db 0
params: times 0x1E db 0

    times 510 - ($ - $$) db 0
    dw 0xAA55
