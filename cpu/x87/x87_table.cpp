// x87 entries of the opcode table (handlers in cpu/x87/x87.cpp), plus
// FXSAVE/FXRSTOR, which save and restore the x87 state with the SSE state.
#include "cpu/core/handler_registry.h"
#include "cpu/core/handlers.h"

namespace {

// The last-opcode register (FOP) after a non-control instruction.
//
// AMD (checked on the AMD EPYC host by tests/cpu/x87_test.cpp's FNSAVE
// comparison): every non-control instruction records its opcode, as
// cpu/x87/x87.cpp's note_instruction does.
//
// Intel (SDM Vol 1 8.1.9): FOP holds the opcode of the last non-control
// instruction that incurred an unmasked exception. Processors since the
// Pentium 4 record it for every instruction only in "fopcode compatibility
// mode" (IA32_MISC_ENABLE bit 2), which recent ones no longer offer and
// which is off by default (8.1.9.1); the model does not offer it. On the
// Intel host (notes/intel-host/unit-x87-float80.txt), tests/cpu/x87_test.cpp
// (FRSTOR an image with FOP = 0, one instruction, FNSAVE; FIP/FDP masked)
// differed on 21,646 of 27,101 cases, on every non-control opcode and on no
// control one, while recording FOP always passes on the AMD host. The other
// way round, this Intel model run against the AMD host differs on the same
// 21,646 cases, opcode for opcode. cpu-difftest compares FOP only with ES
// set and found no FOP difference on the Intel host (difftest-seed1..6.txt).
// An instruction incurred an unmasked
// exception exactly when it leaves ES set (a waiting instruction that finds
// ES set takes #MF before it changes anything), so on Intel the opcode the
// instruction recorded is withdrawn when ES is clear, including when the
// instruction faulted.
//
// FIP and FDP: the Intel model reports neither FDP_EXCPTN_ONLY (CPUID.7.0
// EBX bit 6) nor the FCS/FDS deprecation (bit 13), so every non-control
// instruction records FIP/FCS and, with a memory operand, FDP/FDS, and the
// save instructions store FCS/FDS (SDM Vol 1 8.1.8), as on AMD.
template <Handler H>
bool numeric(Cpu& cpu, const Insn& insn)
{
    constexpr u16 ES = 1u << 7;
    const u16 fop = cpu.s.fpu.fop;
    const bool done = H(cpu, insn);
    if (cpu.intel() && !(cpu.s.fpu.fsw & ES))
        cpu.s.fpu.fop = fop;
    return done;
}

} // namespace

void add_x87_handlers(HandlerTableArray& t)
{
    // Control.
    add(t, ZYDIS_MNEMONIC_FNINIT, op_fninit);
    add(t, ZYDIS_MNEMONIC_FNCLEX, op_fnclex);
    add(t, ZYDIS_MNEMONIC_FNSTSW, op_fnstsw);
    add(t, ZYDIS_MNEMONIC_FNSTCW, op_fnstcw);
    add(t, ZYDIS_MNEMONIC_FLDCW, op_fldcw);
    add(t, ZYDIS_MNEMONIC_FWAIT, op_fwait);
    add(t, ZYDIS_MNEMONIC_FNOP, numeric<op_fnop>); // a non-control instruction
    // 8087/287 leftovers that the x87 ignores (DB E0, E1, E4).
    add(t, ZYDIS_MNEMONIC_FENI8087_NOP, op_fnop_legacy);
    add(t, ZYDIS_MNEMONIC_FDISI8087_NOP, op_fnop_legacy);
    add(t, ZYDIS_MNEMONIC_FSETPM287_NOP, op_fnop_legacy);
    add(t, ZYDIS_MNEMONIC_FNSTENV, op_fnstenv);
    add(t, ZYDIS_MNEMONIC_FLDENV, op_fldenv);
    add(t, ZYDIS_MNEMONIC_FNSAVE, op_fnsave);
    add(t, ZYDIS_MNEMONIC_FRSTOR, op_frstor);
    add(t, ZYDIS_MNEMONIC_FXSAVE, op_fxsave);
    add(t, ZYDIS_MNEMONIC_FXSAVE64, op_fxsave);
    add(t, ZYDIS_MNEMONIC_FXRSTOR, op_fxrstor);
    add(t, ZYDIS_MNEMONIC_FXRSTOR64, op_fxrstor);
    // The XSAVE feature set (cpu/system/xsave.cpp).
    add(t, ZYDIS_MNEMONIC_XSAVE, op_xsave);
    add(t, ZYDIS_MNEMONIC_XSAVE64, op_xsave);
    add(t, ZYDIS_MNEMONIC_XSAVEOPT, op_xsaveopt);
    add(t, ZYDIS_MNEMONIC_XSAVEOPT64, op_xsaveopt);
    add(t, ZYDIS_MNEMONIC_XSAVEC, op_xsavec);
    add(t, ZYDIS_MNEMONIC_XSAVEC64, op_xsavec);
    add(t, ZYDIS_MNEMONIC_XRSTOR, op_xrstor);
    add(t, ZYDIS_MNEMONIC_XRSTOR64, op_xrstor);
    add(t, ZYDIS_MNEMONIC_XSAVES, op_xsaves);
    add(t, ZYDIS_MNEMONIC_XSAVES64, op_xsaves);
    add(t, ZYDIS_MNEMONIC_XRSTORS, op_xrstors);
    add(t, ZYDIS_MNEMONIC_XRSTORS64, op_xrstors);
    add(t, ZYDIS_MNEMONIC_XGETBV, op_xgetbv);
    add(t, ZYDIS_MNEMONIC_XSETBV, op_xsetbv, true);

    // Loads and stores.
    add(t, ZYDIS_MNEMONIC_FLD, numeric<op_fld>);
    add(t, ZYDIS_MNEMONIC_FILD, numeric<op_fild>);
    add(t, ZYDIS_MNEMONIC_FBLD, numeric<op_fbld>);
    add(t, ZYDIS_MNEMONIC_FLD1, numeric<op_fld1>);
    add(t, ZYDIS_MNEMONIC_FLDL2T, numeric<op_fldl2t>);
    add(t, ZYDIS_MNEMONIC_FLDL2E, numeric<op_fldl2e>);
    add(t, ZYDIS_MNEMONIC_FLDPI, numeric<op_fldpi>);
    add(t, ZYDIS_MNEMONIC_FLDLG2, numeric<op_fldlg2>);
    add(t, ZYDIS_MNEMONIC_FLDLN2, numeric<op_fldln2>);
    add(t, ZYDIS_MNEMONIC_FLDZ, numeric<op_fldz>);
    add(t, ZYDIS_MNEMONIC_FST, numeric<op_fst>);
    add(t, ZYDIS_MNEMONIC_FSTP, numeric<op_fstp>);
    add(t, ZYDIS_MNEMONIC_FSTPNCE, numeric<op_fstpnce>); // D9 D8+i
    add(t, ZYDIS_MNEMONIC_FIST, numeric<op_fist>);
    add(t, ZYDIS_MNEMONIC_FISTP, numeric<op_fistp>);
    add(t, ZYDIS_MNEMONIC_FISTTP, numeric<op_fisttp>);
    add(t, ZYDIS_MNEMONIC_FBSTP, numeric<op_fbstp>);

    // Arithmetic.
    add(t, ZYDIS_MNEMONIC_FADD, numeric<op_fadd>);
    add(t, ZYDIS_MNEMONIC_FADDP, numeric<op_faddp>);
    add(t, ZYDIS_MNEMONIC_FIADD, numeric<op_fiadd>);
    add(t, ZYDIS_MNEMONIC_FSUB, numeric<op_fsub>);
    add(t, ZYDIS_MNEMONIC_FSUBP, numeric<op_fsubp>);
    add(t, ZYDIS_MNEMONIC_FISUB, numeric<op_fisub>);
    add(t, ZYDIS_MNEMONIC_FSUBR, numeric<op_fsubr>);
    add(t, ZYDIS_MNEMONIC_FSUBRP, numeric<op_fsubrp>);
    add(t, ZYDIS_MNEMONIC_FISUBR, numeric<op_fisubr>);
    add(t, ZYDIS_MNEMONIC_FMUL, numeric<op_fmul>);
    add(t, ZYDIS_MNEMONIC_FMULP, numeric<op_fmulp>);
    add(t, ZYDIS_MNEMONIC_FIMUL, numeric<op_fimul>);
    add(t, ZYDIS_MNEMONIC_FDIV, numeric<op_fdiv>);
    add(t, ZYDIS_MNEMONIC_FDIVP, numeric<op_fdivp>);
    add(t, ZYDIS_MNEMONIC_FIDIV, numeric<op_fidiv>);
    add(t, ZYDIS_MNEMONIC_FDIVR, numeric<op_fdivr>);
    add(t, ZYDIS_MNEMONIC_FDIVRP, numeric<op_fdivrp>);
    add(t, ZYDIS_MNEMONIC_FIDIVR, numeric<op_fidivr>);
    add(t, ZYDIS_MNEMONIC_FCHS, numeric<op_fchs>);
    add(t, ZYDIS_MNEMONIC_FABS, numeric<op_fabs>);
    add(t, ZYDIS_MNEMONIC_FSQRT, numeric<op_fsqrt>);
    add(t, ZYDIS_MNEMONIC_FRNDINT, numeric<op_frndint>);
    add(t, ZYDIS_MNEMONIC_FSCALE, numeric<op_fscale>);
    add(t, ZYDIS_MNEMONIC_FXTRACT, numeric<op_fxtract>);
    add(t, ZYDIS_MNEMONIC_FPREM, numeric<op_fprem>);
    add(t, ZYDIS_MNEMONIC_FPREM1, numeric<op_fprem1>);

    // Transcendentals.
    add(t, ZYDIS_MNEMONIC_F2XM1, numeric<op_f2xm1>);
    add(t, ZYDIS_MNEMONIC_FYL2X, numeric<op_fyl2x>);
    add(t, ZYDIS_MNEMONIC_FYL2XP1, numeric<op_fyl2xp1>);
    add(t, ZYDIS_MNEMONIC_FPATAN, numeric<op_fpatan>);
    add(t, ZYDIS_MNEMONIC_FSIN, numeric<op_fsin>);
    add(t, ZYDIS_MNEMONIC_FCOS, numeric<op_fcos>);
    add(t, ZYDIS_MNEMONIC_FSINCOS, numeric<op_fsincos>);
    add(t, ZYDIS_MNEMONIC_FPTAN, numeric<op_fptan>);

    // Comparisons and classification.
    add(t, ZYDIS_MNEMONIC_FCOM, numeric<op_fcom>);
    add(t, ZYDIS_MNEMONIC_FCOMP, numeric<op_fcomp>);
    add(t, ZYDIS_MNEMONIC_FCOMPP, numeric<op_fcompp>);
    add(t, ZYDIS_MNEMONIC_FUCOM, numeric<op_fucom>);
    add(t, ZYDIS_MNEMONIC_FUCOMP, numeric<op_fucomp>);
    add(t, ZYDIS_MNEMONIC_FUCOMPP, numeric<op_fucompp>);
    add(t, ZYDIS_MNEMONIC_FICOM, numeric<op_ficom>);
    add(t, ZYDIS_MNEMONIC_FICOMP, numeric<op_ficomp>);
    add(t, ZYDIS_MNEMONIC_FCOMI, numeric<op_fcomi>);
    add(t, ZYDIS_MNEMONIC_FCOMIP, numeric<op_fcomip>);
    add(t, ZYDIS_MNEMONIC_FUCOMI, numeric<op_fucomi>);
    add(t, ZYDIS_MNEMONIC_FUCOMIP, numeric<op_fucomip>);
    add(t, ZYDIS_MNEMONIC_FTST, numeric<op_ftst>);
    add(t, ZYDIS_MNEMONIC_FXAM, numeric<op_fxam>);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_FCMOVB, ZYDIS_MNEMONIC_FCMOVE, ZYDIS_MNEMONIC_FCMOVBE,
                            ZYDIS_MNEMONIC_FCMOVU, ZYDIS_MNEMONIC_FCMOVNB, ZYDIS_MNEMONIC_FCMOVNE,
                            ZYDIS_MNEMONIC_FCMOVNBE, ZYDIS_MNEMONIC_FCMOVNU})
        add(t, m, numeric<op_fcmovcc>);

    // Stack management.
    add(t, ZYDIS_MNEMONIC_FXCH, numeric<op_fxch>);
    add(t, ZYDIS_MNEMONIC_FFREE, numeric<op_ffree>);
    add(t, ZYDIS_MNEMONIC_FFREEP, numeric<op_ffreep>);
    add(t, ZYDIS_MNEMONIC_FINCSTP, numeric<op_fincstp>);
    add(t, ZYDIS_MNEMONIC_FDECSTP, numeric<op_fdecstp>);
}
