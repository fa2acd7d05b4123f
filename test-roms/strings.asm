; strings.asm — string instructions (SDM Vol 1 7.3.9, Vol 2 MOVS, STOS,
; LODS, CMPS, SCAS, REP/REPE/REPNE): element sizes 1/2/4/8, DF=0 and 1,
; final pointers and counters, flags of the last comparison, REP with a
; zero count, 16-bit address size (SI/DI/CX wrap, upper halves kept),
; 32-bit address size in 64-bit mode (ECX/ESI/EDI, upper halves cleared),
; a source segment override, overlapping backward copies, and a REP MOVSB
; that page-faults in the middle and resumes where it stopped.

%define ROM_NAME "strings"
%include "rom.inc"

SEL_FSBASE      equ SEL_SPARE       ; data segment with base = src - 0x100

section .data
src:        db "ABCDEFGHIJKLMNOP"
str_a:      db "hello, world", 0
str_b:      db "hello, wOrld", 0    ; differs at index 8 ('o' vs 'O')
hay:        db "abcdefgxyz"
hay_len     equ $ - hay
words:      dw 0x1111, 0x2222, 0x3333
dwords:     dd 7, 7, 7, 9, 7

section .bss
alignb 16
dst:        resb 64
ovl:        resb 16
alignb 4096
pf_pd:      resb 4096
pf_pt:      resb 4096
pf_src:     resb 8192
pf_dst:     resb 8192
pf_count:   resd 1
pf_cr2:     resd 1
pf_edi:     resd 1
pf_ecx:     resd 1

; PF_VA: the destination is mapped at this address; its second page
; starts not present.
PF_VA       equ 0x40000000

section .text
bits 32
test_main:
    call movs_tests
    call stos_lods_tests
    call cmps_scas_tests
    call address_size_16
    call segment_override
    call paging_restart
    call strings_64             ; ends the test
    ret

; ---- MOVS -----------------------------------------------------------------------
movs_tests:
    cld
    mov esi, src
    mov edi, dst
    mov ecx, 7
    rep movsb
    CHECK_EQ ecx, 0, "rep movsb: ECX = 0 at the end"
    CHECK_EQ esi, src + 7, "rep movsb DF=0: ESI advanced by 7"
    CHECK_EQ edi, dst + 7, "rep movsb DF=0: EDI advanced by 7"
    CHECK_EQ [dst + 3], 'DEFG', "rep movsb: data copied"
    ; DF=1, dwords, backwards from the last element
    std
    mov esi, src + 12
    mov edi, dst + 32 + 12
    mov ecx, 3
    rep movsd
    cld
    CHECK_EQ esi, src, "rep movsd DF=1: ESI decreased by 12"
    CHECK_EQ edi, dst + 32, "rep movsd DF=1: EDI decreased by 12"
    CHECK_EQ [dst + 32 + 4], 'EFGH', "rep movsd DF=1: elements copied"
    CHECK_EQ [dst + 32 + 12], 'MNOP', "rep movsd DF=1: first element is the highest"
    ; one MOVSW without REP
    mov esi, words + 2
    mov edi, dst + 48
    mov ecx, 0x55
    movsw
    CHECK_EQ esi, words + 4, "movsw: ESI += 2"
    CHECK_EQ ecx, 0x55, "movsw without rep: ECX untouched"
    movzx eax, word [dst + 48]
    CHECK_EQ eax, 0x2222, "movsw: word copied"
    ; REP with ECX=0: nothing happens
    mov esi, src
    mov edi, dst
    xor ecx, ecx
    mov byte [dst], 0x77
    rep movsb
    CHECK_EQ esi, src, "rep movsb, ECX=0: ESI unchanged"
    movzx eax, byte [dst]
    CHECK_EQ eax, 0x77, "rep movsb, ECX=0: nothing copied"
    ; overlapping copy "up by 2" must go backwards (DF=1) to be a memmove
    mov dword [ovl], '0123'
    mov dword [ovl + 4], '4567'
    std
    mov esi, ovl + 5
    mov edi, ovl + 7
    mov ecx, 6
    rep movsb
    cld
    CHECK_EQ [ovl], '0101', "overlapping rep movsb DF=1 (memmove up by 2): bytes 0-3"
    CHECK_EQ [ovl + 4], '2345', "overlapping rep movsb DF=1 (memmove up by 2): bytes 4-7"
    ; the same overlap with DF=0 smears the first two bytes
    mov dword [ovl], '0123'
    mov dword [ovl + 4], '4567'
    mov esi, ovl
    mov edi, ovl + 2
    mov ecx, 6
    rep movsb
    CHECK_EQ [ovl + 4], '0101', "overlapping rep movsb DF=0 repeats the pattern (byte by byte)"
    ret

; ---- STOS, LODS -------------------------------------------------------------------
stos_lods_tests:
    cld
    mov edi, dst
    mov eax, 0x5A
    mov ecx, 5
    rep stosb
    CHECK_EQ edi, dst + 5, "rep stosb: EDI += 5"
    CHECK_EQ [dst], 0x5A5A5A5A, "rep stosb: bytes stored"
    mov edi, dst + 16
    mov eax, 0xA1B2
    mov ecx, 3
    rep stosw
    CHECK_EQ edi, dst + 22, "rep stosw: EDI += 6"
    CHECK_EQ [dst + 18], 0xA1B2A1B2, "rep stosw: words stored"
    std
    mov edi, dst + 40
    mov eax, 0xCAFEBABE
    mov ecx, 2
    rep stosd
    cld
    CHECK_EQ edi, dst + 32, "rep stosd DF=1: EDI -= 8"
    CHECK_EQ [dst + 36], 0xCAFEBABE, "rep stosd DF=1: dwords stored downwards"
    ; LODS
    mov esi, src
    mov eax, 0xFFFFFFFF
    lodsb
    CHECK_EQ eax, 0xFFFFFF41, "lodsb: AL loaded, rest of EAX kept"
    CHECK_EQ esi, src + 1, "lodsb: ESI += 1"
    lodsd
    CHECK_EQ eax, 'BCDE', "lodsd: EAX loaded"
    std
    lodsw
    cld
    CHECK_EQ esi, src + 3, "lodsw DF=1: ESI -= 2"
    mov esi, src
    mov ecx, 4
    rep lodsb
    ; EAX was 0x45444746 ('FG' over 'BCDE'); AL becomes 'D'
    CHECK_EQ eax, 0x45444744, "rep lodsb: AL = last byte loaded, rest kept"
    ret

; ---- CMPS, SCAS ------------------------------------------------------------------------
cmps_scas_tests:
    cld
    mov esi, str_a
    mov edi, str_b
    mov ecx, 13
    repe cmpsb
    CHECK_FLAGS FL_ZF | FL_CF | FL_SF, 0, "repe cmpsb: stops on 'o' vs 'O' with ZF=0, CF=0 ('o' > 'O'), SF=0"
    CHECK_EQ ecx, 13 - 9, "repe cmpsb: ECX counts the 9 compared bytes"
    CHECK_EQ esi, str_a + 9, "repe cmpsb: ESI one past the mismatch"
    CHECK_EQ edi, str_b + 9, "repe cmpsb: EDI one past the mismatch"
    mov esi, str_a
    mov edi, str_a
    mov ecx, 13
    repe cmpsb
    CHECK_FLAGS FL_ZF, FL_ZF, "repe cmpsb equal strings: ZF=1"
    CHECK_EQ ecx, 0, "repe cmpsb equal strings: ECX=0"
    ; flags of a single CMPSB: [esi] - [edi] = 0x80 - 0x01
    mov byte [dst], 0x80
    mov byte [dst + 1], 0x01
    mov esi, dst
    mov edi, dst + 1
    cmpsb
    CHECK_FLAGS FL_ARITH, FL_OF | FL_AF, "cmpsb 0x80 - 0x01: OF=1 AF=1, CF=ZF=SF=PF=0"
    ; REPNE SCASB: find 'x'
    mov edi, hay
    mov al, 'x'
    mov ecx, hay_len
    repne scasb
    CHECK_FLAGS FL_ZF, FL_ZF, "repne scasb found: ZF=1"
    CHECK_EQ edi, hay + 8, "repne scasb: EDI one past the match"
    CHECK_EQ ecx, hay_len - 8, "repne scasb: ECX decremented per byte scanned"
    mov edi, hay
    mov al, 'q'
    mov ecx, hay_len
    repne scasb
    CHECK_FLAGS FL_ZF, 0, "repne scasb not found: ZF=0"
    CHECK_EQ ecx, 0, "repne scasb not found: ECX=0"
    CHECK_EQ edi, hay + hay_len, "repne scasb not found: EDI at the end"
    ; REPE SCASD: skip the 7s
    mov edi, dwords
    mov eax, 7
    mov ecx, 5
    repe scasd
    CHECK_EQ edi, dwords + 16, "repe scasd: stops one past the first non-7"
    CHECK_EQ ecx, 1, "repe scasd: ECX=1 left"
    CHECK_FLAGS FL_ZF | FL_CF, FL_CF, "repe scasd: 7 - 9 -> ZF=0, CF=1"
    ; REPNE with ECX=0 keeps the flags
    xor ecx, ecx
    stc
    repne scasb
    CHECK_FLAGS FL_CF, FL_CF, "repne scasb with ECX=0: flags unchanged"
    ret

; ---- 16-bit address size in 32-bit code -----------------------------------------------------
address_size_16:
    ; a16: SI/DI/CX, wrapping at 64 KiB; upper halves of ESI/EDI/ECX kept
    mov byte [0xFFFF], 0xAB
    mov byte [0x0000], 0xCD
    cld
    mov esi, 0x1234FFFF
    mov edi, 0x56788000
    mov ecx, 0xABCD0002
    a16 rep movsb
    CHECK_EQ esi, 0x12340001, "a16 rep movsb: SI wraps 0xFFFF -> 0x0001, ESI[31:16] kept"
    CHECK_EQ edi, 0x56788002, "a16 rep movsb: DI += 2, EDI[31:16] kept"
    CHECK_EQ ecx, 0xABCD0000, "a16 rep movsb: CX counts to 0, ECX[31:16] kept"
    movzx eax, word [0x8000]
    CHECK_EQ eax, 0xCDAB, "a16 rep movsb: read 0xFFFF then 0x0000"
    std
    mov edi, 0x00000001
    mov eax, 0x99
    mov ecx, 3
    a16 rep stosb
    cld
    CHECK_EQ edi, 0x0000FFFE, "a16 rep stosb DF=1: DI wraps 0x0000 -> 0xFFFF"
    movzx eax, byte [0xFFFF]
    CHECK_EQ eax, 0x99, "a16 rep stosb DF=1: third store at 0xFFFF"
    ret

; ---- segment override on the source ---------------------------------------------------------
segment_override:
    mov eax, src - 0x100
    SET_DESC SEL_FSBASE, eax, 0xFFFFF, ACC_DATA_RW, FLG_G | FLG_DB
    mov ax, SEL_FSBASE
    mov fs, ax
    mov esi, 0x104
    mov edi, dst
    mov ecx, 4
    cld
    fs rep movsb
    CHECK_EQ [dst], 'EFGH', "fs: rep movsb reads FS:ESI (FS base = src - 0x100)"
    mov ax, SEL_KDATA
    mov fs, ax
    ret

; ---- a REP MOVSB that faults part-way and resumes ------------------------------------------
; With paging on, the destination's second page is not present.  The #PF
; handler (pf_fixup) records ECX/EDI/CR2, maps the page and returns to
; the REP MOVSB, which finishes the remaining bytes (SDM Vol 1 7.3.9.3:
; registers reflect the progress so the instruction can be restarted).
paging_restart:
    ; identity map 0..4 MiB (4 MiB page), PF_VA -> pf_dst (two 4 KiB pages)
    mov dword [pf_pd], 0 | PTE_P | PTE_RW | PTE_PS
    mov dword [pf_pd + (PF_VA >> 22) * 4], pf_pt + (PTE_P | PTE_RW)
    mov dword [pf_pt + 0], pf_dst + (PTE_P | PTE_RW)
    mov dword [pf_pt + 4], pf_dst + 4096        ; not present
    mov edi, pf_src
    mov ecx, 8192
    xor eax, eax
.fill:
    mov [edi], al
    inc edi
    inc eax
    loop .fill
    mov eax, VEC_PF
    mov ebx, pf_fixup
    mov cl, ACC_INTGATE
    call idt32_set_gate
    mov eax, cr4
    or eax, CR4_PSE
    mov cr4, eax
    mov eax, pf_pd
    mov cr3, eax
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax
    cld
    mov esi, pf_src + 0x100
    mov edi, PF_VA + 0x100
    mov ecx, 7000
    rep movsb
    mov edx, ecx
    mov eax, cr0
    and eax, ~CR0_PG
    mov cr0, eax
    call idt32_init
    CHECK_EQ [pf_count], 1, "rep movsb into a not-present page: one #PF"
    CHECK_EQ [pf_cr2], PF_VA + 4096, "rep movsb #PF: CR2 = first byte of the missing page"
    CHECK_EQ [pf_edi], PF_VA + 4096, "rep movsb #PF: EDI = faulting element"
    CHECK_EQ [pf_ecx], 7000 - (4096 - 0x100), "rep movsb #PF: ECX = elements not yet copied"
    CHECK_EQ edx, 0, "rep movsb resumed after #PF: ECX = 0"
    CHECK_EQ esi, pf_src + 0x100 + 7000, "rep movsb resumed after #PF: ESI at the end"
    CHECK_EQ [pf_dst + 0x100 + 6996], 0x57565554, "rep movsb resumed after #PF: last bytes copied"
    CHECK_EQ [pf_dst + 4094], 0x0100FFFE, "rep movsb resumed after #PF: bytes around the page boundary"
    ret

pf_fixup:
    push eax
    mov [pf_ecx], ecx
    mov [pf_edi], edi
    mov eax, cr2
    mov [pf_cr2], eax
    or dword [pf_pt + 4], PTE_P
    invlpg [eax]
    inc dword [pf_count]
    pop eax
    add esp, 4                  ; error code
    iretd

; ---- 64-bit mode ---------------------------------------------------------------------------
strings_64:
    ENTER_LONG_MODE
    cld
    mov rsi, src
    mov rdi, dst
    mov rcx, 2
    rep movsq
    CHECK_EQ rdi, dst + 16, "64: rep movsq: RDI += 16"
    CHECK_EQ rcx, 0, "64: rep movsq: RCX = 0"
    CHECK_EQ [dst + 8], 'IJKLMNOP', "64: rep movsq: qwords copied"
    std
    mov rdi, dst + 24
    mov rax, 0x0123456789ABCDEF
    mov ecx, 2
    rep stosq
    cld
    CHECK_EQ rdi, dst + 8, "64: rep stosq DF=1: RDI -= 16"
    CHECK_EQ [dst + 16], 0x0123456789ABCDEF, "64: rep stosq DF=1: stored"
    ; 32-bit address size: ECX/ESI/EDI, results zero-extended
    mov rax, 0xFFFF000000000000 ; garbage in the upper halves
    mov esi, src
    or rsi, rax
    mov edi, dst
    or rdi, rax
    mov rcx, 0x100000002
    a32 rep movsb
    CHECK_EQ rcx, 0, "64: a32 rep movsb: count is ECX (2), RCX = 0"
    CHECK_EQ rsi, src + 2, "64: a32 rep movsb: uses ESI, upper half cleared"
    CHECK_EQ rdi, dst + 2, "64: a32 rep movsb: uses EDI, upper half cleared"
    ; CMPSQ flags
    mov rax, 0x8000000000000000
    mov [dst], rax
    mov qword [dst + 8], 1
    mov rsi, dst
    mov rdi, dst + 8
    cmpsq
    CHECK_FLAGS FL_ARITH, FL_OF | FL_PF | FL_AF, "64: cmpsq 0x8000000000000000 - 1: OF=1, AF=1, PF=1 (low byte 0xFF)"
    ; REPNE SCASB with RCX
    mov rdi, hay
    mov al, 'g'
    mov rcx, hay_len
    repne scasb
    CHECK_EQ rcx, hay_len - 7, "64: repne scasb: RCX counted down"
    TEST_PASS
