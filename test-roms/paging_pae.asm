; paging_pae.asm — PAE paging in 32-bit protected mode (CR4.PAE=1, 64-bit
; entries, PDPTEs loaded from CR3): 4 KiB and 2 MiB pages, #PF error codes
; and CR2, WP, U/S and R/W at both levels, A/D bits, reserved bits (bit
; MAXPHYADDR of a PTE, bits 20:13 of a 2 MiB PDE, XD with EFER.NXE=0),
; execute-disable with EFER.NXE=1, INVLPG and CR3 reloads.
; Checks are in lib/paging_tests.inc; SDM Vol 3A 4.4.

%define ROM_NAME "paging_pae"
%define PG_MODE 36
%include "rom.inc"
%include "paging_tests.inc"

section .bss
alignb 4096
pdpt:   resq 4                  ; 32-byte aligned
alignb 4096
pd0:    resb 4096
pd_t:   resb 4096
pt0:    resb 4096               ; 4 KiB identity pages for 0..2 MiB

pd_t_entry      equ pd_t + 0 * 8
pd_large_entry  equ pd_t + ((VA_LARGE - 0x40000000) >> 21) * 8

section .text
bits 32
test_main:
    PAGING_PREPARE
    PAGING_FILL pt0, 0, 512, 12, PTE_P | PTE_RW | PTE_US
    mov dword [pd0], pt0 + (PTE_P | PTE_RW | PTE_US)
    PAGING_FILL pd0, 1, 8, 21, PTE_P | PTE_RW | PTE_US | PTE_PS   ; 2..16 MiB: 2 MiB pages
    ; PDPTEs: only P (R/W, U/S are reserved in PAE PDPTEs; SDM Table 4-8)
    mov dword [pdpt + 0 * 8], pd0 + PTE_P
    mov dword [pdpt + 1 * 8], pd_t + PTE_P
    mov dword [pd_t_entry], pt_t + (PTE_P | PTE_RW | PTE_US)
    mov dword [pd_t + ((VA_PDE_SUP - 0x40000000) >> 21) * 8], pt_s + (PTE_P | PTE_RW)
    mov dword [pd_t + ((VA_PDE_RO - 0x40000000) >> 21) * 8], pt_s + (PTE_P | PTE_US)
    mov dword [pd_large_entry], LARGE_PHYS | PTE_P | PTE_RW | PTE_US | PTE_PS
    ; bits 20:13 of a 2 MiB PDE are reserved (SDM Table 4-9)
    mov dword [pd_t + ((VA_LARGE_RSVD - 0x40000000) >> 21) * 8], LARGE_PHYS | PTE_P | PTE_RW | PTE_US | PTE_PS | (1 << 13)

    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    mov eax, pdpt
    mov cr3, eax
    mov eax, cr0
    or eax, CR0_PG
    and eax, ~CR0_WP
    mov cr0, eax
.paging_on:
    mov eax, .paging_on
    shr eax, 12
    mov eax, [pt0 + eax * 8]
    and eax, PTE_A
    CHECK_EQ eax, PTE_A, "paging on: fetching code set A in its PTE"
    ; a not-present PDPTE
    TRY mov eax, [0x80000000]
    CHECK_PF 0, 0x80000000, "not-present PDPTE -> #PF(0)"

    PAGING_TESTS
    ret

    PAGING_USER_CODE
