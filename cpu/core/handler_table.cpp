// The opcode table: every decoder mnemonic the machine implements, with the
// handler that executes it and whether it ends a decoded block.
#include "cpu/decoder/handler_table.h"

#include "cpu/core/handler_registry.h"
#include "cpu/core/handlers.h"

namespace {

// Instructions sharing a mnemonic with an SSE form (MOVSD, CMPSD) or a far
// form (RET) are told apart by opcode here.
HANDLER(op_movsd_dispatch) { return insn.opcode == 0xA5 ? op_movs(cpu, insn) : op_unimplemented(cpu, insn); }
HANDLER(op_cmpsd_dispatch) { return insn.opcode == 0xA7 ? op_cmps(cpu, insn) : op_unimplemented(cpu, insn); }
HANDLER(op_ret_dispatch)
{
    return (insn.opcode == 0xCA || insn.opcode == 0xCB) ? op_retf(cpu, insn) : op_ret(cpu, insn);
}
HANDLER(op_mov_dispatch)
{
    const OpKind d = insn.op[0].kind, s = insn.op[1].kind;
    if (d == OpKind::Cr || s == OpKind::Cr)
        return op_mov_cr(cpu, insn);
    if (d == OpKind::Dr || s == OpKind::Dr)
        return op_mov_dr(cpu, insn);
    return op_mov(cpu, insn);
}

using Table = HandlerTableArray;

Table build_table()
{
    Table t{};
    t.fill(TableEntry{op_unimplemented, false});
    // Arithmetic and logic (cpu/integer/alu.cpp).
    add(t, ZYDIS_MNEMONIC_ADD, op_add);
    add(t, ZYDIS_MNEMONIC_OR, op_or);
    add(t, ZYDIS_MNEMONIC_ADC, op_adc);
    add(t, ZYDIS_MNEMONIC_SBB, op_sbb);
    add(t, ZYDIS_MNEMONIC_AND, op_and);
    add(t, ZYDIS_MNEMONIC_SUB, op_sub);
    add(t, ZYDIS_MNEMONIC_XOR, op_xor);
    add(t, ZYDIS_MNEMONIC_CMP, op_cmp);
    add(t, ZYDIS_MNEMONIC_TEST, op_test);
    add(t, ZYDIS_MNEMONIC_INC, op_inc);
    add(t, ZYDIS_MNEMONIC_DEC, op_dec);
    add(t, ZYDIS_MNEMONIC_NEG, op_neg);
    add(t, ZYDIS_MNEMONIC_NOT, op_not);
    add(t, ZYDIS_MNEMONIC_SHL, op_shl);
    add(t, ZYDIS_MNEMONIC_SHR, op_shr);
    add(t, ZYDIS_MNEMONIC_SAR, op_sar);
    add(t, ZYDIS_MNEMONIC_ROL, op_rol);
    add(t, ZYDIS_MNEMONIC_ROR, op_ror);
    add(t, ZYDIS_MNEMONIC_RCL, op_rcl);
    add(t, ZYDIS_MNEMONIC_RCR, op_rcr);
    add(t, ZYDIS_MNEMONIC_SHLD, op_shld);
    add(t, ZYDIS_MNEMONIC_SHRD, op_shrd);
    add(t, ZYDIS_MNEMONIC_MUL, op_mul);
    add(t, ZYDIS_MNEMONIC_IMUL, op_imul);
    add(t, ZYDIS_MNEMONIC_DIV, op_div);
    add(t, ZYDIS_MNEMONIC_IDIV, op_idiv);
    add(t, ZYDIS_MNEMONIC_BT, op_bt);
    add(t, ZYDIS_MNEMONIC_BTS, op_bts);
    add(t, ZYDIS_MNEMONIC_BTR, op_btr);
    add(t, ZYDIS_MNEMONIC_BTC, op_btc);
    add(t, ZYDIS_MNEMONIC_BSF, op_bsf);
    add(t, ZYDIS_MNEMONIC_BSR, op_bsr);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETL,
                            ZYDIS_MNEMONIC_SETLE, ZYDIS_MNEMONIC_SETNB, ZYDIS_MNEMONIC_SETNBE,
                            ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETNLE, ZYDIS_MNEMONIC_SETNO,
                            ZYDIS_MNEMONIC_SETNP, ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETNZ,
                            ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETS,
                            ZYDIS_MNEMONIC_SETZ})
        add(t, m, op_setcc);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_CMOVB, ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVL,
                            ZYDIS_MNEMONIC_CMOVLE, ZYDIS_MNEMONIC_CMOVNB, ZYDIS_MNEMONIC_CMOVNBE,
                            ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVNLE, ZYDIS_MNEMONIC_CMOVNO,
                            ZYDIS_MNEMONIC_CMOVNP, ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVNZ,
                            ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVP, ZYDIS_MNEMONIC_CMOVS,
                            ZYDIS_MNEMONIC_CMOVZ})
        add(t, m, op_cmovcc);
    add(t, ZYDIS_MNEMONIC_BSWAP, op_bswap);
    add(t, ZYDIS_MNEMONIC_XADD, op_xadd);
    add(t, ZYDIS_MNEMONIC_CMPXCHG, op_cmpxchg);
    add(t, ZYDIS_MNEMONIC_CMPXCHG8B, op_cmpxchg8b);
    add(t, ZYDIS_MNEMONIC_CMPXCHG16B, op_cmpxchg16b);
    add(t, ZYDIS_MNEMONIC_DAA, op_daa);
    add(t, ZYDIS_MNEMONIC_DAS, op_das);
    add(t, ZYDIS_MNEMONIC_AAA, op_aaa);
    add(t, ZYDIS_MNEMONIC_AAS, op_aas);
    add(t, ZYDIS_MNEMONIC_AAM, op_aam);
    add(t, ZYDIS_MNEMONIC_AAD, op_aad);
    add(t, ZYDIS_MNEMONIC_SALC, op_salc);

    // Data movement and stack (cpu/integer/data_move.cpp).
    add(t, ZYDIS_MNEMONIC_MOV, op_mov_dispatch);
    add(t, ZYDIS_MNEMONIC_MOVZX, op_movzx);
    add(t, ZYDIS_MNEMONIC_MOVSX, op_movsx);
    add(t, ZYDIS_MNEMONIC_MOVSXD, op_movsx);
    add(t, ZYDIS_MNEMONIC_LEA, op_lea);
    add(t, ZYDIS_MNEMONIC_XCHG, op_xchg);
    add(t, ZYDIS_MNEMONIC_NOP, op_nop);
    add(t, ZYDIS_MNEMONIC_ENDBR32, op_nop);
    add(t, ZYDIS_MNEMONIC_ENDBR64, op_nop);
    add(t, ZYDIS_MNEMONIC_CBW, op_cbw);
    add(t, ZYDIS_MNEMONIC_CWDE, op_cwde);
    add(t, ZYDIS_MNEMONIC_CDQE, op_cdqe);
    add(t, ZYDIS_MNEMONIC_CWD, op_cwd);
    add(t, ZYDIS_MNEMONIC_CDQ, op_cdq);
    add(t, ZYDIS_MNEMONIC_CQO, op_cqo);
    add(t, ZYDIS_MNEMONIC_PUSH, op_push);
    add(t, ZYDIS_MNEMONIC_POP, op_pop);
    add(t, ZYDIS_MNEMONIC_PUSHA, op_pusha);
    add(t, ZYDIS_MNEMONIC_PUSHAD, op_pusha);
    add(t, ZYDIS_MNEMONIC_POPA, op_popa);
    add(t, ZYDIS_MNEMONIC_POPAD, op_popa);
    add(t, ZYDIS_MNEMONIC_PUSHF, op_pushf);
    add(t, ZYDIS_MNEMONIC_PUSHFD, op_pushf);
    add(t, ZYDIS_MNEMONIC_PUSHFQ, op_pushf);
    add(t, ZYDIS_MNEMONIC_POPF, op_popf);
    add(t, ZYDIS_MNEMONIC_POPFD, op_popf);
    add(t, ZYDIS_MNEMONIC_POPFQ, op_popf);
    add(t, ZYDIS_MNEMONIC_LAHF, op_lahf);
    add(t, ZYDIS_MNEMONIC_SAHF, op_sahf);
    add(t, ZYDIS_MNEMONIC_CLC, op_clc);
    add(t, ZYDIS_MNEMONIC_STC, op_stc);
    add(t, ZYDIS_MNEMONIC_CMC, op_cmc);
    add(t, ZYDIS_MNEMONIC_CLD, op_cld);
    add(t, ZYDIS_MNEMONIC_STD, op_std);
    add(t, ZYDIS_MNEMONIC_ENTER, op_enter);
    add(t, ZYDIS_MNEMONIC_LEAVE, op_leave);
    add(t, ZYDIS_MNEMONIC_XLAT, op_xlat);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_LDS, ZYDIS_MNEMONIC_LES, ZYDIS_MNEMONIC_LFS,
                            ZYDIS_MNEMONIC_LGS, ZYDIS_MNEMONIC_LSS})
        add(t, m, op_lds_family);

    // Control flow (cpu/integer/control_flow.cpp).
    add(t, ZYDIS_MNEMONIC_JMP, op_jmp, true);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_JB, ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JL,
                            ZYDIS_MNEMONIC_JLE, ZYDIS_MNEMONIC_JNB, ZYDIS_MNEMONIC_JNBE,
                            ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JNLE, ZYDIS_MNEMONIC_JNO,
                            ZYDIS_MNEMONIC_JNP, ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JNZ,
                            ZYDIS_MNEMONIC_JO, ZYDIS_MNEMONIC_JP, ZYDIS_MNEMONIC_JS,
                            ZYDIS_MNEMONIC_JZ})
        add(t, m, op_jcc);
    add(t, ZYDIS_MNEMONIC_CALL, op_call, true);
    add(t, ZYDIS_MNEMONIC_RET, op_ret_dispatch, true);
    add(t, ZYDIS_MNEMONIC_LOOP, op_loop);
    add(t, ZYDIS_MNEMONIC_LOOPE, op_loope);
    add(t, ZYDIS_MNEMONIC_LOOPNE, op_loopne);
    add(t, ZYDIS_MNEMONIC_JCXZ, op_jcxz);
    add(t, ZYDIS_MNEMONIC_JECXZ, op_jcxz);
    add(t, ZYDIS_MNEMONIC_JRCXZ, op_jcxz);
    add(t, ZYDIS_MNEMONIC_INT, op_int, true);
    add(t, ZYDIS_MNEMONIC_INT3, op_int3, true);
    add(t, ZYDIS_MNEMONIC_INTO, op_into, true);
    add(t, ZYDIS_MNEMONIC_INT1, op_int1, true);
    add(t, ZYDIS_MNEMONIC_IRET, op_iret, true);
    add(t, ZYDIS_MNEMONIC_IRETD, op_iret, true);
    add(t, ZYDIS_MNEMONIC_IRETQ, op_iret, true);
    add(t, ZYDIS_MNEMONIC_BOUND, op_bound);

    // Strings (cpu/integer/string_ops.cpp).
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_MOVSB, ZYDIS_MNEMONIC_MOVSW, ZYDIS_MNEMONIC_MOVSQ})
        add(t, m, op_movs);
    add(t, ZYDIS_MNEMONIC_MOVSD, op_movsd_dispatch);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_STOSB, ZYDIS_MNEMONIC_STOSW, ZYDIS_MNEMONIC_STOSD,
                            ZYDIS_MNEMONIC_STOSQ})
        add(t, m, op_stos);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_LODSB, ZYDIS_MNEMONIC_LODSW, ZYDIS_MNEMONIC_LODSD,
                            ZYDIS_MNEMONIC_LODSQ})
        add(t, m, op_lods);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_CMPSB, ZYDIS_MNEMONIC_CMPSW, ZYDIS_MNEMONIC_CMPSQ})
        add(t, m, op_cmps);
    add(t, ZYDIS_MNEMONIC_CMPSD, op_cmpsd_dispatch);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_SCASB, ZYDIS_MNEMONIC_SCASW, ZYDIS_MNEMONIC_SCASD,
                            ZYDIS_MNEMONIC_SCASQ})
        add(t, m, op_scas);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_INSB, ZYDIS_MNEMONIC_INSW, ZYDIS_MNEMONIC_INSD})
        add(t, m, op_ins);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_OUTSB, ZYDIS_MNEMONIC_OUTSW, ZYDIS_MNEMONIC_OUTSD})
        add(t, m, op_outs);

    // System (cpu/system/system.cpp).
    add(t, ZYDIS_MNEMONIC_CPUID, op_cpuid);
    add(t, ZYDIS_MNEMONIC_RDTSC, op_rdtsc);
    add(t, ZYDIS_MNEMONIC_RDPMC, op_rdpmc);
    add(t, ZYDIS_MNEMONIC_RDTSCP, op_rdtscp);
    add(t, ZYDIS_MNEMONIC_RDMSR, op_rdmsr);
    add(t, ZYDIS_MNEMONIC_WRMSR, op_wrmsr, true);
    add(t, ZYDIS_MNEMONIC_LGDT, op_lgdt);
    add(t, ZYDIS_MNEMONIC_LIDT, op_lidt);
    add(t, ZYDIS_MNEMONIC_SGDT, op_sgdt);
    add(t, ZYDIS_MNEMONIC_SIDT, op_sidt);
    add(t, ZYDIS_MNEMONIC_LLDT, op_lldt);
    add(t, ZYDIS_MNEMONIC_SLDT, op_sldt);
    add(t, ZYDIS_MNEMONIC_LTR, op_ltr);
    add(t, ZYDIS_MNEMONIC_STR, op_str);
    add(t, ZYDIS_MNEMONIC_LMSW, op_lmsw, true);
    add(t, ZYDIS_MNEMONIC_SMSW, op_smsw);
    add(t, ZYDIS_MNEMONIC_LAR, op_lar);
    add(t, ZYDIS_MNEMONIC_LSL, op_lsl);
    add(t, ZYDIS_MNEMONIC_VERR, op_verr);
    add(t, ZYDIS_MNEMONIC_VERW, op_verw);
    add(t, ZYDIS_MNEMONIC_ARPL, op_arpl);
    add(t, ZYDIS_MNEMONIC_CLTS, op_clts);
    add(t, ZYDIS_MNEMONIC_INVLPG, op_invlpg, true);
    add(t, ZYDIS_MNEMONIC_INVPCID, op_invpcid);
    add(t, ZYDIS_MNEMONIC_WBINVD, op_wbinvd);
    add(t, ZYDIS_MNEMONIC_INVD, op_wbinvd);
    add(t, ZYDIS_MNEMONIC_IN, op_in);
    add(t, ZYDIS_MNEMONIC_OUT, op_out);
    add(t, ZYDIS_MNEMONIC_HLT, op_hlt, true);
    add(t, ZYDIS_MNEMONIC_CLI, op_cli);
    add(t, ZYDIS_MNEMONIC_STI, op_sti, true);
    add(t, ZYDIS_MNEMONIC_SYSCALL, op_syscall, true);
    add(t, ZYDIS_MNEMONIC_SYSRET, op_sysret, true);
    add(t, ZYDIS_MNEMONIC_SYSENTER, op_sysenter, true);
    add(t, ZYDIS_MNEMONIC_SYSEXIT, op_sysexit, true);
    add(t, ZYDIS_MNEMONIC_SWAPGS, op_swapgs);
    add(t, ZYDIS_MNEMONIC_UD0, op_ud, true);
    add(t, ZYDIS_MNEMONIC_UD1, op_ud, true);
    add(t, ZYDIS_MNEMONIC_UD2, op_ud, true);
    add(t, ZYDIS_MNEMONIC_RDFSBASE, op_rdfsbase);
    add(t, ZYDIS_MNEMONIC_RDGSBASE, op_rdgsbase);
    add(t, ZYDIS_MNEMONIC_WRFSBASE, op_wrfsbase);
    add(t, ZYDIS_MNEMONIC_WRGSBASE, op_wrgsbase);
    add(t, ZYDIS_MNEMONIC_PAUSE, op_pause);
    add(t, ZYDIS_MNEMONIC_CLFLUSH, op_clflush);
    add(t, ZYDIS_MNEMONIC_CLFLUSHOPT, op_clflush);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_LFENCE, ZYDIS_MNEMONIC_MFENCE, ZYDIS_MNEMONIC_SFENCE,
                            ZYDIS_MNEMONIC_PREFETCH, ZYDIS_MNEMONIC_PREFETCHNTA,
                            ZYDIS_MNEMONIC_PREFETCHT0, ZYDIS_MNEMONIC_PREFETCHT1,
                            ZYDIS_MNEMONIC_PREFETCHT2, ZYDIS_MNEMONIC_PREFETCHW})
        add(t, m, op_fence);
    add(t, ZYDIS_MNEMONIC_CLAC, op_clac);
    add(t, ZYDIS_MNEMONIC_VMCALL, op_vmcall, true);
    add(t, ZYDIS_MNEMONIC_VMMCALL, op_vmcall, true);

    add(t, ZYDIS_MNEMONIC_STAC, op_stac);
    add(t, ZYDIS_MNEMONIC_RDRAND, op_rdrand);
    add(t, ZYDIS_MNEMONIC_RDSEED, op_rdseed);

    // Family tables; they come last so that they may refine shared mnemonics (MOVSD, CMPSD).
    add_x87_handlers(t);
    add_simd_handlers(t);
    add_avx_handlers(t);
    return t;
}

const Table& table()
{
    static const Table t = build_table();
    return t;
}

} // namespace

Handler handler_for(u16 mnemonic)
{
    return mnemonic <= ZYDIS_MNEMONIC_MAX_VALUE ? table()[mnemonic].handler : op_unimplemented;
}

bool insn_ends_block(const Insn& insn)
{
    return insn.mnemonic <= ZYDIS_MNEMONIC_MAX_VALUE && table()[insn.mnemonic].ends_block;
}

bool op_unimplemented(Cpu& cpu, const Insn& insn)
{
    // An x87/SIMD instruction still faults #NM first when CR0 says so.
    if (!cpu.check_fpu_available(insn))
        return false;
    return cpu.raise_ud();
}

bool op_unimplemented_decode(Cpu& cpu, const Insn& insn)
{
    (void)insn;
    return cpu.raise_ud();
}
