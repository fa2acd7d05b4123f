; paging_la57.asm — 5-level paging (CR4.LA57, SDM Vol 3A 4.5): 57-bit
; linear addresses, canonical checks on bit 56, a PML5 walk, A bits in a
; PML5E, #PF with a 57-bit CR2, and #GP when toggling CR4.LA57 in 64-bit
; mode.  Needs CPUID.(EAX=7,ECX=0):ECX[16]; without it (QEMU's default
; qemu64 CPU) the ROM prints a skip line and passes.  Validate the real
; checks with QEMU_EXTRA_ARGS="-cpu max".

%define ROM_NAME "paging_la57"
%include "rom.inc"

VA_LOW57    equ 0x0001000000000000  ; PML5 index 1: non-canonical with 4 levels
VA_HIGH57   equ 0xFF00000000000000  ; PML5 index 256: upper half with 5 levels
VA_NP57     equ 0x0002000000000000  ; PML5 index 2: not present
VA_NONCANON equ 0x0100000000000000  ; bit 56 set, bits 63:57 clear
PAT         equ 0x57575757

section .bss
alignb 4096
pml5:   resb 4096
pml4_a: resb 4096               ; PML5[0]: identity map through lib's PDPT
pml4_b: resb 4096               ; PML5[1] and PML5[256]
pdpt_b: resb 4096
pd_b:   resb 4096
pt_b:   resb 4096
frame:  resb 4096

section .text
bits 32
test_main:
    mov eax, 7
    xor ecx, ecx
    cpuid
    test ecx, 1 << 16
    jnz .supported
    PRINTLN "skip: CPU has no LA57 (CPUID.7.0:ECX[16]=0); run QEMU with -cpu max"
    ret
.supported:
    mov dword [frame], PAT
    call lm_build_tables        ; lm_pdpt: identity map of 0..4 GiB
    mov dword [pml5 + 0 * 8], pml4_a + (PTE_P | PTE_RW | PTE_US)
    mov dword [pml5 + 1 * 8], pml4_b + (PTE_P | PTE_RW | PTE_US)
    mov dword [pml5 + 256 * 8], pml4_b + (PTE_P | PTE_RW | PTE_US)
    mov dword [pml4_a + 0 * 8], lm_pdpt + (PTE_P | PTE_RW | PTE_US)
    mov dword [pml4_b + 0 * 8], pdpt_b + (PTE_P | PTE_RW | PTE_US)
    mov dword [pdpt_b + 0 * 8], pd_b + (PTE_P | PTE_RW | PTE_US)
    mov dword [pd_b + 0 * 8], pt_b + (PTE_P | PTE_RW | PTE_US)
    mov dword [pt_b + 0 * 8], frame + (PTE_P | PTE_RW | PTE_US)

    ; CR4.LA57 can only change while paging is off (it is fixed in long
    ; mode), so set it together with PAE before CR0.PG.
    mov eax, cr4
    or eax, CR4_PAE | CR4_LA57
    mov cr4, eax
    mov eax, pml5
    mov cr3, eax
    mov ecx, MSR_EFER
    rdmsr
    or eax, EFER_LME
    wrmsr
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax
    jmp SEL_KCODE64:.lm
bits 64
.lm:
    mov esp, esp
    call lm_init64

    mov rax, cr4
    and eax, CR4_LA57
    CHECK_EQ rax, CR4_LA57, "CR4.LA57=1 in long mode"
    mov rax, VA_LOW57
    mov ebx, [rax]
    CHECK_EQ rbx, PAT, "VA 0x0001000000000000 (PML5 index 1) maps the frame"
    mov eax, [pml5 + 1 * 8]
    and eax, PTE_A
    CHECK_EQ rax, PTE_A, "walk set A in the PML5E"
    mov rax, VA_HIGH57
    mov ebx, [rax]
    CHECK_EQ rbx, PAT, "VA 0xFF00000000000000 (PML5 index 256) is canonical and maps"
    mov rax, VA_NONCANON
    TRY mov ebx, [rax]
    CHECK_FAULT VEC_GP, 0, "VA 0x0100000000000000 (bits 63:57 != bit 56) -> #GP(0)"
    mov rax, VA_NP57 + 0x123
    TRY mov ebx, [rax]
    CHECK_FAULT VEC_PF, 0, "not-present PML5E -> #PF(0)"
    CHECK_EQ [exc_cr2], VA_NP57 + 0x123, "not-present PML5E: 57-bit CR2"
    mov rax, cr4
    and eax, ~CR4_LA57
    TRY mov cr4, rax
    CHECK_FAULT VEC_GP, 0, "clearing CR4.LA57 in 64-bit mode -> #GP(0)"
    TEST_PASS
