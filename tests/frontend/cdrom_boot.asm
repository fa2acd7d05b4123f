; The boot image of the firmware CD-ROM boot test (tests/frontend/cdrom_boot_test.sh):
; an El Torito "no emulation" image that SeaBIOS loads from an ISO on an
; ATAPI drive, its first 2048 bytes at 07C0:0000. Through the BIOS disk
; services on the drive number it was booted from (int 13h extensions, in
; 2048-byte CD sectors) it checks the sector size, the ISO's primary volume
; descriptor, its own first sector against what was loaded, and the three
; pattern sectors the test appended to it (byte (sector * 7 + offset) & 0xFF
; across them, counting from sector 1 of the image). mkisofs's boot info
; table (-boot-info-table) says where on the disc the image lies. It reports
; on the screen and through the debug-exit port: 0 = every check passed,
; N = check N failed.
bits 16
org 0x7C00

PATTERN_SECTORS equ 3
CD_SECTOR equ 2048
BUFFER equ 0x9000 ; past the loaded image (0x7C00-0x83FF)
EXIT_PORT equ 0xF4

    jmp 0:start ; El Torito enters at 07C0:0000; run at 0000:7C00
    times 8 - ($ - $$) db 0
; The boot info table, written into the image by mkisofs/xorriso (El
; Torito as mkisofs documents -boot-info-table): bytes 8-63.
bi_pvd: dd 0
bi_file: dd 0
bi_length: dd 0
bi_checksum: dd 0
    times 40 db 0

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

    ; Check 1: the extensions are there for the CD (int 13h AH=41h).
    mov byte [check], 1
    mov ah, 0x41
    mov bx, 0x55AA
    mov dl, [drive]
    int 0x13
    jc fail
    cmp bx, 0xAA55
    jne fail

    ; Check 2: the drive's sectors are 2048 bytes (AH=48h).
    mov byte [check], 2
    mov word [params], 0x1E
    mov si, params
    mov ah, 0x48
    mov dl, [drive]
    int 0x13
    jc fail
    cmp word [params + 24], CD_SECTOR
    jne fail

    ; Check 3: sector 16 is the primary volume descriptor: 01 "CD001".
    mov byte [check], 3
    mov word [dap.count], 1
    mov dword [dap.lba], 16
    call read
    jc fail
    mov si, BUFFER
    mov di, pvd_marker
    mov cx, pvd_marker_len
    repe cmpsb
    jne fail

    ; Check 4: the image's own first sector, read again, is what was loaded
    ; (up to the variables, which this program has changed since).
    mov byte [check], 4
    mov eax, [bi_file]
    mov [dap.lba], eax
    mov word [dap.count], 1
    call read
    jc fail
    mov si, BUFFER
    mov di, 0x7C00
    mov cx, dap - $$
    repe cmpsb
    jne fail

    ; Check 5: the pattern sectors after it.
    mov byte [check], 5
    mov eax, [bi_file]
    inc eax
    mov [dap.lba], eax
    mov word [dap.count], PATTERN_SECTORS
    call read
    jc fail
    mov si, BUFFER
    mov cx, PATTERN_SECTORS * CD_SECTOR
    xor bx, bx ; offset within the run
.pattern:
    mov ax, bx
    shr ax, 11 ; sector index from 0
    inc ax     ; sector number within the image
    imul ax, ax, 7
    add ax, bx
    cmp [si], al
    jne fail
    inc si
    inc bx
    loop .pattern

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

; Reads what the DAP says (AH=42h) into BUFFER. CF on error.
read:
    mov si, dap
    mov ah, 0x42
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

msg_hello: db "cdrom-boot: loaded", 13, 10, 0
msg_ok: db "cdrom-boot: all checks passed", 13, 10, 0
msg_fail: db "cdrom-boot: FAILED check ", 0
pvd_marker: db 1, "CD001"
pvd_marker_len equ $ - pvd_marker

align 4
dap:
    db 0x10, 0
.count: dw 0
    dw BUFFER, 0 ; offset, segment
.lba: dq 0
drive: db 0
check: db 0
params: times 0x1E db 0

    times CD_SECTOR - ($ - $$) db 0
