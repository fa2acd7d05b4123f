; The guest the gdb tests debug (gdb_test.py): a multiboot kernel that
; enters 64-bit long mode by itself, loads a known pattern into YMM3 and a
; known value into RBX, calls `work` WARM times (so that with the JIT on its
; code is translated and chained before gdb sets a breakpoint in it), then
; counts a variable up in a loop through the same call, and exits through
; the debug-exit port (status 1) once it reaches LIMIT.
; gdb_test.py finds `work`, `counter`, `count_loop` and `after_inc` with nm.
bits 32

LIMIT equ 5
WARM equ 10000

section .multiboot
align 4
    dd 0x1BADB002, 0, -0x1BADB002

section .text
global _start
_start:
    mov esp, stack_top
    ; Identity-map the first 1 GiB with 2 MiB pages.
    mov dword [pml4], pdpt + 3
    mov dword [pdpt], pd + 3
    xor ecx, ecx
.fill:
    mov eax, ecx
    shl eax, 21
    or eax, 0x83                ; present, writable, 2 MiB
    mov [pd + ecx * 8], eax
    inc ecx
    cmp ecx, 512
    jne .fill
    mov eax, pml4
    mov cr3, eax
    mov eax, cr4
    or eax, (1 << 5) | (1 << 9) | (1 << 10) | (1 << 18) ; PAE, OSFXSR, OSXMMEXCPT, OSXSAVE
    mov cr4, eax
    mov ecx, 0xC0000080         ; EFER.LME
    rdmsr
    or eax, 1 << 8
    wrmsr
    mov eax, cr0
    and eax, ~(1 << 2)          ; EM off
    or eax, 0x80000003          ; PG, MP, PE
    mov cr0, eax
    lgdt [gdt_pointer]
    jmp 0x08:long_mode

bits 64
long_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor ecx, ecx
    xor edx, edx
    mov eax, 7                  ; XCR0: x87, SSE, AVX
    xsetbv
    vmovdqu ymm3, [rel ymm_pattern]
    mov rbx, 0x1122334455667788
    mov ecx, WARM
warm:
    call work
    dec ecx
    jnz warm
global count_loop
count_loop:
    inc qword [rel counter]
global after_inc
after_inc:
    call work
    cmp qword [rel counter], LIMIT
    jb count_loop
    xor eax, eax
    out 0xF4, al                ; debug exit: status (0 << 1) | 1 = 1
    hlt

global work
work:
    add rbx, 1
    ret

section .rodata
align 32
ymm_pattern:
    dq 0x0706050403020100, 0x0F0E0D0C0B0A0908, 0x1716151413121110, 0x1F1E1D1C1B1A1918
align 8
gdt:
    dq 0
    dq 0x00AF9A000000FFFF       ; 0x08: 64-bit code
    dq 0x00CF92000000FFFF       ; 0x10: data
gdt_pointer:
    dw gdt_pointer - gdt - 1
    dd gdt

section .data
align 8
global counter
counter:
    dq 0

section .bss
alignb 4096
pml4: resb 4096
pdpt: resb 4096
pd:   resb 4096
      resb 8192
stack_top:
