; smc.asm — self-modifying and cross-modified code (SDM Vol 3A 8.1.3
; "Handling Self- and Cross-Modifying Code"; on P6 and later a store to
; an instruction that is about to run is always seen, even without a
; serializing instruction).  An interpreter or JIT that caches decoded code
; must invalidate it on any write to the underlying physical bytes.
;
;   - patching the immediate of the next instruction, in a loop;
;   - patching an opcode (INC <-> DEC) and a jump displacement;
;   - patching an instruction that already ran in the same loop body;
;   - REP MOVSB overwriting the instructions right after itself;
;   - copying a routine to a buffer, calling it, patching, calling again,
;     copying a different routine over it;
;   - a patch that straddles a page boundary, in code that straddles it;
;   - with paging: writing through one linear alias of a page and
;     executing through another (invalidation must be by physical page);
;   - the loop patch in 64-bit mode.

%define ROM_NAME "smc"
%include "rom.inc"

ALIAS_BASE      equ 0x40000000      ; second mapping of physical 0..4 MiB

section .bss
alignb 4096
buf:            resb 8192           ; two pages
pd:             resb 4096

section .text
bits 32
test_main:
    call patch_next_immediate
    call patch_opcode
    call patch_jump
    call patch_behind
    call rep_movsb_over_itself
    call copied_routine
    call page_straddle
    call alias_write
    call smc_64                 ; ends the test
    ret

; ---- the immediate of the next instruction -------------------------------------
patch_next_immediate:
    xor ebx, ebx
    mov ecx, 10
.loop:
    mov [.patch + 2], cl        ; imm8 of the ADD right below
.patch:
    add ebx, byte 0             ; 83 C3 ib
    loop .loop
    CHECK_EQ ebx, 55, "patch imm8 of the next instruction in a loop: sum 10..1 = 55"
    ; a 32-bit immediate, patched with a dword store
    mov dword [.patch32 + 1], 0x600DF00D
.patch32:
    mov eax, 0xBADBAD00         ; B8 id
    CHECK_EQ eax, 0x600DF00D, "patch imm32 of the next instruction"
    ret

; ---- an opcode: INC EAX (40) <-> DEC EAX (48), alternating ----------------------
patch_opcode:
    xor eax, eax
    mov ecx, 6
.loop:
    mov byte [.op], 0x40        ; inc eax
    test cl, 1
    jz .op
    mov byte [.op], 0x48        ; dec eax on odd counts
.op:
    nop
    loop .loop
    ; counts 6..1: even -> inc (6,4,2), odd -> dec (5,3,1) => 0
    CHECK_EQ eax, 0, "patch opcode INC/DEC alternately: net 0"
    mov byte [.op2], 0x40
.op2:
    nop
    CHECK_EQ eax, 1, "patch NOP into INC EAX right ahead"
    ret

; ---- a jump displacement ----------------------------------------------------------
patch_jump:
    mov byte [.jmp + 1], .b - (.jmp + 2)
.jmp:
    jmp short .a
.a:
    mov eax, 0xA
    jmp .done
.b:
    mov eax, 0xB
.done:
    CHECK_EQ eax, 0xB, "patch a JMP rel8 displacement: takes the new target"
    ret

; ---- an instruction behind us, for the next iteration ------------------------------
patch_behind:
    xor ebx, ebx
    mov ecx, 5
.loop:
.p:
    mov eax, 1000               ; B8 id: patched at the end of each iteration
    add ebx, eax
    mov [.p + 1], ecx           ; next iteration loads ECX (5, 4, 3, 2)
    loop .loop
    ; 1000 + 5 + 4 + 3 + 2 = 1014
    CHECK_EQ ebx, 1014, "patch an instruction already run in this loop body"
    ret

; ---- REP MOVSB over the code right after it --------------------------------------------
rep_movsb_over_itself:
    mov esi, .new
    mov edi, .target
    mov ecx, .new_end - .new
    cld
    rep movsb
.target:
    mov eax, 0xDEAD0001         ; replaced by the copy of .new
    mov ebx, 0xDEAD0002
    jmp .done
.new:
    mov eax, 0x600D0001
    mov ebx, 0x600D0002
.new_end:
.done:
    CHECK_EQ eax, 0x600D0001, "REP MOVSB over the following instructions: first runs the new code"
    CHECK_EQ ebx, 0x600D0002, "REP MOVSB over the following instructions: second too"
    ret

; ---- a routine copied to a buffer ----------------------------------------------------------
copied_routine:
    mov esi, tmpl_ret_imm
    mov edi, buf
    mov ecx, tmpl_ret_imm_end - tmpl_ret_imm
    cld
    rep movsb
    call buf
    CHECK_EQ eax, 0x11111111, "copied routine: first call"
    mov dword [buf + 1], 0x22222222
    call buf
    CHECK_EQ eax, 0x22222222, "copied routine: patched immediate seen by the second call"
    mov esi, tmpl_other
    mov edi, buf
    mov ecx, tmpl_other_end - tmpl_other
    rep movsb
    mov eax, 5
    call buf
    CHECK_EQ eax, 10, "copied routine: a different routine copied over it"
    ; run it many times, patch, run again (a hot, well-cached block)
    mov ecx, 1000
.hot:
    call buf
    loop .hot
    mov byte [buf + 1], 0xE8    ; shl eax, 1 (D1 E0) -> shr eax, 1 (D1 E8)
    mov eax, 6
    call buf
    CHECK_EQ eax, 3, "copied routine: patch (SHL -> SHR) seen after 1000 calls"
    ret

tmpl_ret_imm:
    mov eax, 0x11111111
    ret
tmpl_ret_imm_end:
tmpl_other:
    shl eax, 1                  ; D1 E0
    ret
tmpl_other_end:

; ---- code and a patch across a page boundary ---------------------------------------------------
page_straddle:
    ; "mov eax, imm32" at buf+4094: opcode and 1 immediate byte in the first
    ; page, 3 immediate bytes in the second; then ret.
    mov byte [buf + 4094], 0xB8
    mov dword [buf + 4095], 0x12345678
    mov byte [buf + 4099], 0xC3
    call buf + 4094
    CHECK_EQ eax, 0x12345678, "instruction across a page boundary"
    mov dword [buf + 4095], 0x9ABCDEF0  ; one store, both pages
    call buf + 4094
    CHECK_EQ eax, 0x9ABCDEF0, "patch across a page boundary"
    mov byte [buf + 4097], 0x55         ; second page only
    call buf + 4094
    CHECK_EQ eax, 0x9A55DEF0, "patch of the second page of a straddling instruction"
    ret

; ---- two linear aliases of one physical page ----------------------------------------------------
alias_write:
    ; 4 MiB pages: VA 0 and VA ALIAS_BASE both map physical 0..4 MiB.
    mov dword [pd + 0], 0 | PTE_P | PTE_RW | PTE_PS
    mov dword [pd + (ALIAS_BASE >> 22) * 4], 0 | PTE_P | PTE_RW | PTE_PS
    mov eax, cr4
    or eax, CR4_PSE
    mov cr4, eax
    mov eax, pd
    mov cr3, eax
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax
    mov byte [buf], 0xB8                ; mov eax, 1; ret
    mov dword [buf + 1], 1
    mov byte [buf + 5], 0xC3
    call buf + ALIAS_BASE
    CHECK_EQ eax, 1, "alias: run through the second mapping"
    mov dword [buf + 1], 2              ; write through the first
    call buf + ALIAS_BASE
    CHECK_EQ eax, 2, "alias: write via VA 0 seen when running via VA 0x40000000"
    mov dword [buf + ALIAS_BASE + 1], 3 ; write through the second
    call buf
    CHECK_EQ eax, 3, "alias: write via VA 0x40000000 seen when running via VA 0"
    mov eax, cr0
    and eax, ~CR0_PG
    mov cr0, eax
    ret

; ---- 64-bit mode -------------------------------------------------------------------------
smc_64:
    ENTER_LONG_MODE
    xor ebx, ebx
    mov ecx, 10
.loop:
    mov [.patch + 3], cl        ; REX.W 83 C3 ib
.patch:
    add rbx, byte 0
    loop .loop
    CHECK_EQ rbx, 55, "64-bit: patch imm8 of the next instruction in a loop"
    mov rax, 0x1122334455667788
    mov [.imm64 + 2], rax
.imm64:
    mov rdx, strict qword 0     ; 48 BA iq (movabs)
    CHECK_EQ rdx, 0x1122334455667788, "64-bit: patch imm64 of the next instruction"
    TEST_PASS
