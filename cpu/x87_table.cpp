// x87 entries of the opcode table (handlers in cpu/x87.cpp), plus
// FXSAVE/FXRSTOR, which save and restore the x87 state with the SSE state.
#include "cpu/handler_registry.h"
#include "cpu/handlers.h"

void add_x87_handlers(HandlerTableArray& t)
{
    // Control.
    add(t, ZYDIS_MNEMONIC_FNINIT, op_fninit);
    add(t, ZYDIS_MNEMONIC_FNCLEX, op_fnclex);
    add(t, ZYDIS_MNEMONIC_FNSTSW, op_fnstsw);
    add(t, ZYDIS_MNEMONIC_FNSTCW, op_fnstcw);
    add(t, ZYDIS_MNEMONIC_FLDCW, op_fldcw);
    add(t, ZYDIS_MNEMONIC_FWAIT, op_fwait);
    add(t, ZYDIS_MNEMONIC_FNOP, op_fnop);
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
    // The XSAVE feature set (cpu/xsave.cpp).
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
    add(t, ZYDIS_MNEMONIC_FLD, op_fld);
    add(t, ZYDIS_MNEMONIC_FILD, op_fild);
    add(t, ZYDIS_MNEMONIC_FBLD, op_fbld);
    add(t, ZYDIS_MNEMONIC_FLD1, op_fld1);
    add(t, ZYDIS_MNEMONIC_FLDL2T, op_fldl2t);
    add(t, ZYDIS_MNEMONIC_FLDL2E, op_fldl2e);
    add(t, ZYDIS_MNEMONIC_FLDPI, op_fldpi);
    add(t, ZYDIS_MNEMONIC_FLDLG2, op_fldlg2);
    add(t, ZYDIS_MNEMONIC_FLDLN2, op_fldln2);
    add(t, ZYDIS_MNEMONIC_FLDZ, op_fldz);
    add(t, ZYDIS_MNEMONIC_FST, op_fst);
    add(t, ZYDIS_MNEMONIC_FSTP, op_fstp);
    add(t, ZYDIS_MNEMONIC_FSTPNCE, op_fstpnce); // D9 D8+i
    add(t, ZYDIS_MNEMONIC_FIST, op_fist);
    add(t, ZYDIS_MNEMONIC_FISTP, op_fistp);
    add(t, ZYDIS_MNEMONIC_FISTTP, op_fisttp);
    add(t, ZYDIS_MNEMONIC_FBSTP, op_fbstp);

    // Arithmetic.
    add(t, ZYDIS_MNEMONIC_FADD, op_fadd);
    add(t, ZYDIS_MNEMONIC_FADDP, op_faddp);
    add(t, ZYDIS_MNEMONIC_FIADD, op_fiadd);
    add(t, ZYDIS_MNEMONIC_FSUB, op_fsub);
    add(t, ZYDIS_MNEMONIC_FSUBP, op_fsubp);
    add(t, ZYDIS_MNEMONIC_FISUB, op_fisub);
    add(t, ZYDIS_MNEMONIC_FSUBR, op_fsubr);
    add(t, ZYDIS_MNEMONIC_FSUBRP, op_fsubrp);
    add(t, ZYDIS_MNEMONIC_FISUBR, op_fisubr);
    add(t, ZYDIS_MNEMONIC_FMUL, op_fmul);
    add(t, ZYDIS_MNEMONIC_FMULP, op_fmulp);
    add(t, ZYDIS_MNEMONIC_FIMUL, op_fimul);
    add(t, ZYDIS_MNEMONIC_FDIV, op_fdiv);
    add(t, ZYDIS_MNEMONIC_FDIVP, op_fdivp);
    add(t, ZYDIS_MNEMONIC_FIDIV, op_fidiv);
    add(t, ZYDIS_MNEMONIC_FDIVR, op_fdivr);
    add(t, ZYDIS_MNEMONIC_FDIVRP, op_fdivrp);
    add(t, ZYDIS_MNEMONIC_FIDIVR, op_fidivr);
    add(t, ZYDIS_MNEMONIC_FCHS, op_fchs);
    add(t, ZYDIS_MNEMONIC_FABS, op_fabs);
    add(t, ZYDIS_MNEMONIC_FSQRT, op_fsqrt);
    add(t, ZYDIS_MNEMONIC_FRNDINT, op_frndint);
    add(t, ZYDIS_MNEMONIC_FSCALE, op_fscale);
    add(t, ZYDIS_MNEMONIC_FXTRACT, op_fxtract);
    add(t, ZYDIS_MNEMONIC_FPREM, op_fprem);
    add(t, ZYDIS_MNEMONIC_FPREM1, op_fprem1);

    // Transcendentals.
    add(t, ZYDIS_MNEMONIC_F2XM1, op_f2xm1);
    add(t, ZYDIS_MNEMONIC_FYL2X, op_fyl2x);
    add(t, ZYDIS_MNEMONIC_FYL2XP1, op_fyl2xp1);
    add(t, ZYDIS_MNEMONIC_FPATAN, op_fpatan);
    add(t, ZYDIS_MNEMONIC_FSIN, op_fsin);
    add(t, ZYDIS_MNEMONIC_FCOS, op_fcos);
    add(t, ZYDIS_MNEMONIC_FSINCOS, op_fsincos);
    add(t, ZYDIS_MNEMONIC_FPTAN, op_fptan);

    // Comparisons and classification.
    add(t, ZYDIS_MNEMONIC_FCOM, op_fcom);
    add(t, ZYDIS_MNEMONIC_FCOMP, op_fcomp);
    add(t, ZYDIS_MNEMONIC_FCOMPP, op_fcompp);
    add(t, ZYDIS_MNEMONIC_FUCOM, op_fucom);
    add(t, ZYDIS_MNEMONIC_FUCOMP, op_fucomp);
    add(t, ZYDIS_MNEMONIC_FUCOMPP, op_fucompp);
    add(t, ZYDIS_MNEMONIC_FICOM, op_ficom);
    add(t, ZYDIS_MNEMONIC_FICOMP, op_ficomp);
    add(t, ZYDIS_MNEMONIC_FCOMI, op_fcomi);
    add(t, ZYDIS_MNEMONIC_FCOMIP, op_fcomip);
    add(t, ZYDIS_MNEMONIC_FUCOMI, op_fucomi);
    add(t, ZYDIS_MNEMONIC_FUCOMIP, op_fucomip);
    add(t, ZYDIS_MNEMONIC_FTST, op_ftst);
    add(t, ZYDIS_MNEMONIC_FXAM, op_fxam);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_FCMOVB, ZYDIS_MNEMONIC_FCMOVE, ZYDIS_MNEMONIC_FCMOVBE,
                            ZYDIS_MNEMONIC_FCMOVU, ZYDIS_MNEMONIC_FCMOVNB, ZYDIS_MNEMONIC_FCMOVNE,
                            ZYDIS_MNEMONIC_FCMOVNBE, ZYDIS_MNEMONIC_FCMOVNU})
        add(t, m, op_fcmovcc);

    // Stack management.
    add(t, ZYDIS_MNEMONIC_FXCH, op_fxch);
    add(t, ZYDIS_MNEMONIC_FFREE, op_ffree);
    add(t, ZYDIS_MNEMONIC_FFREEP, op_ffreep);
    add(t, ZYDIS_MNEMONIC_FINCSTP, op_fincstp);
    add(t, ZYDIS_MNEMONIC_FDECSTP, op_fdecstp);
}
