; multiboot.asm — the machine state and information a multiboot v1 loader
; hands over (Multiboot Specification 0.6.96, 3.2 and 3.3).
;
; Run with the kernel command line "hello world" (run-rom.sh's 4th
; argument).  Checks: EAX magic, CR0 (PE=1, PG=0), EFLAGS.IF=0, the info
; flags, mem_lower/mem_upper consistent with the memory map, the map
; itself (usable RAM at 0 and around the image), and the command line
; (QEMU passes "<kernel path> hello world", like GRUB; we accept any
; command line that ends in "hello world").

%define ROM_NAME "multiboot"
%include "rom.inc"

extern __image_start, __image_end

MBI_FLAGS       equ 0
MBI_MEM_LOWER   equ 4
MBI_MEM_UPPER   equ 8
MBI_CMDLINE     equ 16
MBI_MMAP_LENGTH equ 44
MBI_MMAP_ADDR   equ 48
MBI_LOADER_NAME equ 64

MBI_F_MEM       equ 1 << 0
MBI_F_CMDLINE   equ 1 << 2
MBI_F_MMAP      equ 1 << 6
MBI_F_LOADER    equ 1 << 9

section .bss
low_ok:     resd 1              ; found usable RAM at 0 covering mem_lower
high_end:   resd 1              ; end of the usable region that contains 1 MiB
high_cover: resd 1              ; that region covers the whole image
entries:    resd 1

section .text
bits 32
test_main:
    CHECK_EQ [mb_magic], MB_BOOT_MAGIC, "EAX = 0x2BADB002 at entry"
    mov eax, cr0
    and eax, CR0_PE | CR0_PG
    CHECK_EQ eax, CR0_PE, "CR0.PE=1, CR0.PG=0 at entry"
    mov ebx, [mb_info]
    PRINT "info at 0x"
    mov eax, ebx
    call serial_hex32
    PRINT ", flags 0x"
    mov eax, [ebx + MBI_FLAGS]
    call serial_hex32
    call serial_newline

    mov eax, [ebx + MBI_FLAGS]
    and eax, MBI_F_MEM | MBI_F_CMDLINE | MBI_F_MMAP
    CHECK_EQ eax, MBI_F_MEM | MBI_F_CMDLINE | MBI_F_MMAP, "info flags: mem, cmdline, mmap present"

    ; mem_lower is in KiB from 0, at most 640 (the spec's limit).
    mov eax, [ebx + MBI_MEM_LOWER]
    PRINT "mem_lower "
    call serial_hex32
    PRINT " KiB, mem_upper "
    mov eax, [ebx + MBI_MEM_UPPER]
    call serial_hex32
    PRINTLN " KiB"
    mov eax, [ebx + MBI_MEM_LOWER]
    cmp eax, 640
    setbe al
    movzx eax, al
    CHECK_EQ eax, 1, "mem_lower <= 640 KiB"
    mov eax, [ebx + MBI_MEM_LOWER]
    cmp eax, 512
    setae al
    movzx eax, al
    CHECK_EQ eax, 1, "mem_lower >= 512 KiB"

    ; Walk the memory map.  Each entry: size (of the rest), base (u64),
    ; length (u64), type (1 = available RAM).
    mov esi, [ebx + MBI_MMAP_ADDR]
    mov edi, esi
    add edi, [ebx + MBI_MMAP_LENGTH]
.entry:
    cmp esi, edi
    jae .walked
    inc dword [entries]
    PRINT "mmap base 0x"
    mov eax, [esi + 8]
    call serial_hex32
    mov eax, [esi + 4]
    call serial_hex32
    PRINT " len 0x"
    mov eax, [esi + 16]
    call serial_hex32
    mov eax, [esi + 12]
    call serial_hex32
    PRINT " type "
    mov eax, [esi + 20]
    call serial_hex32
    call serial_newline
    mov eax, [esi]
    cmp eax, 20
    jb .bad_size
    cmp dword [esi + 20], 1
    jne .next
    cmp dword [esi + 8], 0      ; only regions below 4 GiB matter here
    jne .next
    cmp dword [esi + 16], 0
    jne .next
    mov eax, [esi + 4]          ; base
    mov edx, eax
    add edx, [esi + 12]         ; end
    ; the region at 0 must cover mem_lower KiB
    test eax, eax
    jnz .not_low
    mov ecx, [ebx + MBI_MEM_LOWER]
    shl ecx, 10
    cmp edx, ecx
    jb .not_low
    mov dword [low_ok], 1
.not_low:
    ; the region holding 1 MiB defines mem_upper and must hold the image
    cmp eax, 0x100000
    ja .next
    cmp edx, 0x100000
    jbe .next
    mov [high_end], edx
    cmp edx, __image_end
    jb .next
    mov dword [high_cover], 1
.next:
    add esi, [esi]
    add esi, 4
    jmp .entry
.bad_size:
    TEST_FAIL "mmap entry size < 20"
.walked:
    mov eax, [entries]
    cmp eax, 2
    setae al
    movzx eax, al
    CHECK_EQ eax, 1, "mmap has at least 2 entries"
    CHECK_EQ [low_ok], 1, "mmap: usable RAM at 0 covers mem_lower"
    CHECK_EQ [high_cover], 1, "mmap: usable RAM from 1 MiB covers the loaded image"
    ; mem_upper = KiB of usable memory starting at 1 MiB (spec 3.3)
    mov eax, [high_end]
    sub eax, 0x100000
    shr eax, 10
    CHECK_EQ [ebx + MBI_MEM_UPPER], eax, "mem_upper matches the mmap region at 1 MiB"

    ; Command line: must end in "hello world".
    mov esi, [ebx + MBI_CMDLINE]
    PRINT "cmdline '"
    call serial_puts
    PRINTLN "'"
    mov edi, esi                ; find the NUL
.find_end:
    cmp byte [edi], 0
    je .found_end
    inc edi
    jmp .find_end
.found_end:
    mov ecx, edi
    sub ecx, esi
    cmp ecx, hello_len
    setae al
    movzx eax, al
    CHECK_EQ eax, 1, "cmdline at least as long as 'hello world'"
    sub edi, hello_len
    mov esi, hello
    mov ecx, hello_len
    cld
    repe cmpsb
    sete al
    movzx eax, al
    CHECK_EQ eax, 1, "cmdline ends with 'hello world'"

    ; Boot loader name is optional; print it if given.
    test dword [ebx + MBI_FLAGS], MBI_F_LOADER
    jz .no_name
    PRINT "boot loader '"
    mov esi, [ebx + MBI_LOADER_NAME]
    call serial_puts
    PRINTLN "'"
.no_name:
    ret

section .rodata
hello:      db "hello world"
hello_len   equ $ - hello
