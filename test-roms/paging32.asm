; paging32.asm — 32-bit paging (CR4.PAE=0): 4 KiB pages and 4 MiB pages
; (CR4.PSE), #PF error codes and CR2, CR0.WP, U/S and R/W at both levels,
; A/D bits, reserved bits in a 4 MiB PDE, INVLPG and CR3 reloads.
; The checks themselves are in lib/paging_tests.inc; SDM Vol 3A 4.3.

%define ROM_NAME "paging32"
%define PG_MODE 32
%include "rom.inc"
%include "paging_tests.inc"

section .bss
alignb 4096
pd:     resb 4096
pt0:    resb 4096               ; 4 KiB identity pages for 0..4 MiB

pd_t_entry      equ pd + (0x40000000 >> 22) * 4
pd_large_entry  equ pd + (VA_LARGE >> 22) * 4

section .text
bits 32
test_main:
    PAGING_PREPARE
    ; identity map: 0..4 MiB with 4 KiB pages, 4..16 MiB with 4 MiB pages
    PAGING_FILL pt0, 0, 1024, 12, PTE_P | PTE_RW | PTE_US
    mov dword [pd + 0 * 4], pt0 + (PTE_P | PTE_RW | PTE_US)
    mov dword [pd + 1 * 4], 0x400000 | PTE_P | PTE_RW | PTE_US | PTE_PS
    mov dword [pd + 2 * 4], 0x800000 | PTE_P | PTE_RW | PTE_US | PTE_PS
    mov dword [pd + 3 * 4], 0xC00000 | PTE_P | PTE_RW | PTE_US | PTE_PS
    ; test regions
    mov dword [pd_t_entry], pt_t + (PTE_P | PTE_RW | PTE_US)
    mov dword [pd + (VA_PDE_SUP >> 22) * 4], pt_s + (PTE_P | PTE_RW)
    mov dword [pd + (VA_PDE_RO >> 22) * 4], pt_s + (PTE_P | PTE_US)
    mov dword [pd_large_entry], LARGE_PHYS | PTE_P | PTE_RW | PTE_US | PTE_PS
    ; bit 21 of a 4 MiB PDE is reserved (SDM Vol 3A Table 4-5, with PSE-36)
    mov dword [pd + (VA_LARGE_RSVD >> 22) * 4], LARGE_PHYS | PTE_P | PTE_RW | PTE_US | PTE_PS | (1 << 21)

    mov eax, cr4
    or eax, CR4_PSE
    mov cr4, eax
    mov eax, pd
    mov cr3, eax
    mov eax, cr0
    or eax, CR0_PG
    and eax, ~CR0_WP
    mov cr0, eax
.paging_on:
    mov eax, .paging_on
    shr eax, 12
    mov eax, [pt0 + eax * 4]
    and eax, PTE_A
    CHECK_EQ eax, PTE_A, "paging on: fetching code set A in its PTE"

    PAGING_TESTS
    ret

    PAGING_USER_CODE
