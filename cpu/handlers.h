// Instruction handlers, grouped by family file. handler_table.cpp maps
// decoded mnemonics to them; nothing else calls them directly.
#pragma once

#include "cpu/cpu.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if (!(expr)) [[unlikely]]                                                                  \
            return false;                                                                          \
    } while (0)

#define HANDLER(name) bool name(Cpu& cpu, const Insn& insn)

// cpu/alu.cpp
HANDLER(op_add); HANDLER(op_or); HANDLER(op_adc); HANDLER(op_sbb); HANDLER(op_and);
HANDLER(op_sub); HANDLER(op_xor); HANDLER(op_cmp); HANDLER(op_test);
HANDLER(op_inc); HANDLER(op_dec); HANDLER(op_neg); HANDLER(op_not);
HANDLER(op_shl); HANDLER(op_shr); HANDLER(op_sar); HANDLER(op_rol); HANDLER(op_ror);
HANDLER(op_rcl); HANDLER(op_rcr); HANDLER(op_shld); HANDLER(op_shrd);
HANDLER(op_mul); HANDLER(op_imul); HANDLER(op_div); HANDLER(op_idiv);
HANDLER(op_bt); HANDLER(op_bts); HANDLER(op_btr); HANDLER(op_btc);
HANDLER(op_bsf); HANDLER(op_bsr); HANDLER(op_setcc); HANDLER(op_cmovcc);
HANDLER(op_bswap); HANDLER(op_xadd); HANDLER(op_cmpxchg); HANDLER(op_cmpxchg8b);
HANDLER(op_cmpxchg16b);
HANDLER(op_daa); HANDLER(op_das); HANDLER(op_aaa); HANDLER(op_aas); HANDLER(op_aam);
HANDLER(op_aad); HANDLER(op_salc);

// cpu/data_move.cpp
HANDLER(op_mov); HANDLER(op_movzx); HANDLER(op_movsx); HANDLER(op_lea); HANDLER(op_xchg);
HANDLER(op_nop); HANDLER(op_cbw); HANDLER(op_cwde); HANDLER(op_cdqe); HANDLER(op_cwd);
HANDLER(op_cdq); HANDLER(op_cqo); HANDLER(op_push); HANDLER(op_pop); HANDLER(op_pusha);
HANDLER(op_popa); HANDLER(op_pushf); HANDLER(op_popf); HANDLER(op_lahf); HANDLER(op_sahf);
HANDLER(op_clc); HANDLER(op_stc); HANDLER(op_cmc); HANDLER(op_cld); HANDLER(op_std);
HANDLER(op_enter); HANDLER(op_leave); HANDLER(op_xlat); HANDLER(op_lds_family);
HANDLER(op_movbe_unused);

// cpu/control_flow.cpp
HANDLER(op_jmp); HANDLER(op_jcc); HANDLER(op_call); HANDLER(op_ret); HANDLER(op_jmp_far);
HANDLER(op_call_far); HANDLER(op_retf); HANDLER(op_loop); HANDLER(op_loope);
HANDLER(op_loopne); HANDLER(op_jcxz); HANDLER(op_int); HANDLER(op_int3); HANDLER(op_into);
HANDLER(op_int1); HANDLER(op_iret); HANDLER(op_bound);

// cpu/string_ops.cpp
HANDLER(op_movs); HANDLER(op_stos); HANDLER(op_lods); HANDLER(op_cmps); HANDLER(op_scas);
HANDLER(op_ins); HANDLER(op_outs);

// cpu/x87.cpp
HANDLER(op_fninit); HANDLER(op_fnclex); HANDLER(op_fnstsw); HANDLER(op_fnstcw);
HANDLER(op_fldcw); HANDLER(op_fwait); HANDLER(op_fnop);

// cpu/system.cpp
HANDLER(op_cpuid); HANDLER(op_rdtsc); HANDLER(op_rdtscp); HANDLER(op_rdmsr);
HANDLER(op_wrmsr); HANDLER(op_mov_cr); HANDLER(op_mov_dr); HANDLER(op_lgdt);
HANDLER(op_lidt); HANDLER(op_sgdt); HANDLER(op_sidt); HANDLER(op_lldt); HANDLER(op_sldt);
HANDLER(op_ltr); HANDLER(op_str); HANDLER(op_lmsw); HANDLER(op_smsw); HANDLER(op_lar);
HANDLER(op_lsl); HANDLER(op_verr); HANDLER(op_verw); HANDLER(op_clts); HANDLER(op_invlpg);
HANDLER(op_invpcid); HANDLER(op_wbinvd); HANDLER(op_in); HANDLER(op_out); HANDLER(op_hlt);
HANDLER(op_cli); HANDLER(op_sti); HANDLER(op_syscall); HANDLER(op_sysret);
HANDLER(op_sysenter); HANDLER(op_sysexit); HANDLER(op_swapgs); HANDLER(op_ud);
HANDLER(op_rdfsbase); HANDLER(op_rdgsbase); HANDLER(op_wrfsbase); HANDLER(op_wrgsbase);
HANDLER(op_pause); HANDLER(op_clflush); HANDLER(op_fence); HANDLER(op_rdpid);
HANDLER(op_arpl); HANDLER(op_clac); HANDLER(op_stac); HANDLER(op_mov_seg);
HANDLER(op_xgetbv_unused); HANDLER(op_vmcall);
