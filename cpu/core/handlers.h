// Instruction handlers, grouped by family file. handler_table.cpp maps
// decoded mnemonics to them; nothing else calls them directly.
#pragma once

#include "cpu/core/cpu.h"

// A handler step that raised a fault (it returns false) ends the handler.
// Not ErrorOr's TRY (mmu/base/error_or.h): a guest fault is architectural
// state already delivered to the CPU, not an error value to pass up.
#define CPU_TRY(expr)                                                                              \
    do {                                                                                           \
        if (!(expr)) [[unlikely]]                                                                  \
            return false;                                                                          \
    } while (0)

#define HANDLER(name) bool name(Cpu& cpu, const Insn& insn)

// Read-modify-write operands (cpu/integer/alu.cpp). The memory destination of an RMW
// instruction is checked for write access before it is read, so that a page
// fault on it reports a write (#PF error code W=1), as hardware does.
bool probe_write(Cpu& cpu, unsigned seg, u64 offset, unsigned size);
bool read_rmw_operand(Cpu& cpu, const Insn& insn, unsigned index, u64& value);

// cpu/integer/alu.cpp
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

// cpu/integer/data_move.cpp
HANDLER(op_mov); HANDLER(op_movzx); HANDLER(op_movsx); HANDLER(op_lea); HANDLER(op_xchg);
HANDLER(op_nop); HANDLER(op_cbw); HANDLER(op_cwde); HANDLER(op_cdqe); HANDLER(op_cwd);
HANDLER(op_cdq); HANDLER(op_cqo); HANDLER(op_push); HANDLER(op_pop); HANDLER(op_pusha);
HANDLER(op_popa); HANDLER(op_pushf); HANDLER(op_popf); HANDLER(op_lahf); HANDLER(op_sahf);
HANDLER(op_clc); HANDLER(op_stc); HANDLER(op_cmc); HANDLER(op_cld); HANDLER(op_std);
HANDLER(op_enter); HANDLER(op_leave); HANDLER(op_xlat); HANDLER(op_lds_family);


// cpu/integer/control_flow.cpp
HANDLER(op_jmp); HANDLER(op_jcc); HANDLER(op_call); HANDLER(op_ret); HANDLER(op_jmp_far);
HANDLER(op_call_far); HANDLER(op_retf); HANDLER(op_loop); HANDLER(op_loope);
HANDLER(op_loopne); HANDLER(op_jcxz); HANDLER(op_int); HANDLER(op_int3); HANDLER(op_into);
HANDLER(op_int1); HANDLER(op_iret); HANDLER(op_bound);

// cpu/integer/string_ops.cpp
HANDLER(op_movs); HANDLER(op_stos); HANDLER(op_lods); HANDLER(op_cmps); HANDLER(op_scas);
HANDLER(op_ins); HANDLER(op_outs);

// cpu/x87/x87.cpp
HANDLER(op_fninit); HANDLER(op_fnclex); HANDLER(op_fnstsw); HANDLER(op_fnstcw);
HANDLER(op_fldcw); HANDLER(op_fwait); HANDLER(op_fnop); HANDLER(op_fnop_legacy);
HANDLER(op_fnstenv); HANDLER(op_fldenv); HANDLER(op_fnsave); HANDLER(op_frstor);
HANDLER(op_fxsave); HANDLER(op_fxrstor);

// cpu/system/xsave.cpp
HANDLER(op_xsave); HANDLER(op_xsaveopt); HANDLER(op_xsavec); HANDLER(op_xrstor);
HANDLER(op_xsaves); HANDLER(op_xrstors);
HANDLER(op_xgetbv); HANDLER(op_xsetbv);

// cpu/simd/simd_avx.cpp (VEX forms beyond the lane-wise ones, which share the SSE handlers)
HANDLER(op_vmovdqa); HANDLER(op_vmovdqu); HANDLER(op_vmovd_vmovq);
HANDLER(op_vpextrb); HANDLER(op_vpextrw); HANDLER(op_vpextrd); HANDLER(op_vpextrq);
HANDLER(op_vpcmpestri); HANDLER(op_vpcmpestrm); HANDLER(op_vpcmpistri); HANDLER(op_vpcmpistrm);
HANDLER(op_vpmovmskb); HANDLER(op_vptest); HANDLER(op_vzeroupper); HANDLER(op_vzeroall);
HANDLER(op_vpbroadcastb); HANDLER(op_vpbroadcastw); HANDLER(op_vpbroadcastd);
HANDLER(op_vpbroadcastq); HANDLER(op_vbroadcast128); HANDLER(op_vinsert128);
HANDLER(op_vextract128); HANDLER(op_vperm2x128); HANDLER(op_vpermq); HANDLER(op_vpermd);
HANDLER(op_vpmovsxbw); HANDLER(op_vpmovsxbd); HANDLER(op_vpmovsxbq); HANDLER(op_vpmovsxwd);
HANDLER(op_vpmovsxwq); HANDLER(op_vpmovsxdq); HANDLER(op_vpmovzxbw); HANDLER(op_vpmovzxbd);
HANDLER(op_vpmovzxbq); HANDLER(op_vpmovzxwd); HANDLER(op_vpmovzxwq); HANDLER(op_vpmovzxdq);
HANDLER(op_vcomiss); HANDLER(op_vucomiss); HANDLER(op_vcomisd); HANDLER(op_vucomisd);
HANDLER(op_vcvtss2si); HANDLER(op_vcvttss2si); HANDLER(op_vcvtsd2si); HANDLER(op_vcvttsd2si);
HANDLER(op_vmovss); HANDLER(op_vmovsd); HANDLER(op_vblendps); HANDLER(op_vblendpd);
HANDLER(op_vpblendd); HANDLER(op_vblendvps); HANDLER(op_vblendvpd); HANDLER(op_vpblendvb);
HANDLER(op_vpsllvd); HANDLER(op_vpsllvq); HANDLER(op_vpsrlvd); HANDLER(op_vpsrlvq);
HANDLER(op_vpsravd); HANDLER(op_vtestps); HANDLER(op_vtestpd); HANDLER(op_vmovmskps);
HANDLER(op_vmovmskpd); HANDLER(op_vpinsrb); HANDLER(op_vpinsrw); HANDLER(op_vpinsrd);
HANDLER(op_vpinsrq); HANDLER(op_vextractps); HANDLER(op_vldmxcsr); HANDLER(op_vstmxcsr);
HANDLER(op_vshufpd); HANDLER(op_vpermilps); HANDLER(op_vpermilpd);
HANDLER(op_vmovlps); HANDLER(op_vmovhps); HANDLER(op_vinsertps);
HANDLER(op_vmaskmovps); HANDLER(op_vmaskmovpd); HANDLER(op_vpmaskmov); HANDLER(op_vmaskmovdqu);
HANDLER(op_vmpsadbw); HANDLER(op_vgatherd_dword); HANDLER(op_vgatherd_qword);
HANDLER(op_vgatherq_dword); HANDLER(op_vgatherq_qword);

// cpu/simd/simd_fma.cpp
HANDLER(op_vfmadd132ps); HANDLER(op_vfmadd132pd); HANDLER(op_vfmadd132ss);
HANDLER(op_vfmadd132sd); HANDLER(op_vfmadd213ps); HANDLER(op_vfmadd213pd);
HANDLER(op_vfmadd213ss); HANDLER(op_vfmadd213sd); HANDLER(op_vfmadd231ps);
HANDLER(op_vfmadd231pd); HANDLER(op_vfmadd231ss); HANDLER(op_vfmadd231sd);
HANDLER(op_vfmsub132ps); HANDLER(op_vfmsub132pd); HANDLER(op_vfmsub132ss);
HANDLER(op_vfmsub132sd); HANDLER(op_vfmsub213ps); HANDLER(op_vfmsub213pd);
HANDLER(op_vfmsub213ss); HANDLER(op_vfmsub213sd); HANDLER(op_vfmsub231ps);
HANDLER(op_vfmsub231pd); HANDLER(op_vfmsub231ss); HANDLER(op_vfmsub231sd);
HANDLER(op_vfnmadd132ps); HANDLER(op_vfnmadd132pd); HANDLER(op_vfnmadd132ss);
HANDLER(op_vfnmadd132sd); HANDLER(op_vfnmadd213ps); HANDLER(op_vfnmadd213pd);
HANDLER(op_vfnmadd213ss); HANDLER(op_vfnmadd213sd); HANDLER(op_vfnmadd231ps);
HANDLER(op_vfnmadd231pd); HANDLER(op_vfnmadd231ss); HANDLER(op_vfnmadd231sd);
HANDLER(op_vfnmsub132ps); HANDLER(op_vfnmsub132pd); HANDLER(op_vfnmsub132ss);
HANDLER(op_vfnmsub132sd); HANDLER(op_vfnmsub213ps); HANDLER(op_vfnmsub213pd);
HANDLER(op_vfnmsub213ss); HANDLER(op_vfnmsub213sd); HANDLER(op_vfnmsub231ps);
HANDLER(op_vfnmsub231pd); HANDLER(op_vfnmsub231ss); HANDLER(op_vfnmsub231sd);
HANDLER(op_vfmaddsub132ps); HANDLER(op_vfmaddsub132pd); HANDLER(op_vfmaddsub213ps);
HANDLER(op_vfmaddsub213pd); HANDLER(op_vfmaddsub231ps); HANDLER(op_vfmaddsub231pd);
HANDLER(op_vfmsubadd132ps); HANDLER(op_vfmsubadd132pd); HANDLER(op_vfmsubadd213ps);
HANDLER(op_vfmsubadd213pd); HANDLER(op_vfmsubadd231ps); HANDLER(op_vfmsubadd231pd);

// cpu/simd/simd_f16c.cpp
HANDLER(op_vcvtph2ps); HANDLER(op_vcvtps2ph);

// cpu/core/random.cpp
HANDLER(op_rdrand); HANDLER(op_rdseed);
HANDLER(op_fld); HANDLER(op_fild); HANDLER(op_fbld); HANDLER(op_fld1); HANDLER(op_fldl2t);
HANDLER(op_fldl2e); HANDLER(op_fldpi); HANDLER(op_fldlg2); HANDLER(op_fldln2); HANDLER(op_fldz);
HANDLER(op_fst); HANDLER(op_fstp); HANDLER(op_fstpnce); HANDLER(op_fist); HANDLER(op_fistp); HANDLER(op_fisttp);
HANDLER(op_fbstp);
HANDLER(op_fadd); HANDLER(op_faddp); HANDLER(op_fiadd); HANDLER(op_fsub); HANDLER(op_fsubp);
HANDLER(op_fisub); HANDLER(op_fsubr); HANDLER(op_fsubrp); HANDLER(op_fisubr); HANDLER(op_fmul);
HANDLER(op_fmulp); HANDLER(op_fimul); HANDLER(op_fdiv); HANDLER(op_fdivp); HANDLER(op_fidiv);
HANDLER(op_fdivr); HANDLER(op_fdivrp); HANDLER(op_fidivr);
HANDLER(op_fchs); HANDLER(op_fabs); HANDLER(op_fsqrt); HANDLER(op_frndint); HANDLER(op_fscale);
HANDLER(op_fxtract); HANDLER(op_fprem); HANDLER(op_fprem1);
HANDLER(op_f2xm1); HANDLER(op_fyl2x); HANDLER(op_fyl2xp1); HANDLER(op_fpatan); HANDLER(op_fsin);
HANDLER(op_fcos); HANDLER(op_fsincos); HANDLER(op_fptan);
HANDLER(op_fcom); HANDLER(op_fcomp); HANDLER(op_fcompp); HANDLER(op_fucom); HANDLER(op_fucomp);
HANDLER(op_fucompp); HANDLER(op_ficom); HANDLER(op_ficomp); HANDLER(op_fcomi); HANDLER(op_fcomip);
HANDLER(op_fucomi); HANDLER(op_fucomip); HANDLER(op_ftst); HANDLER(op_fxam); HANDLER(op_fcmovcc);
HANDLER(op_fxch); HANDLER(op_ffree); HANDLER(op_ffreep); HANDLER(op_fincstp); HANDLER(op_fdecstp);

// cpu/system/system.cpp
HANDLER(op_cpuid); HANDLER(op_rdtsc); HANDLER(op_rdpmc); HANDLER(op_rdtscp); HANDLER(op_rdmsr);
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
HANDLER(op_vmcall);

// cpu/simd_*.cpp, cpu/integer/bitmanip.cpp: SSE-SSE4.2, MMX, AES-NI, PCLMULQDQ, POPCNT/LZCNT, BMI1/BMI2,
// ADX, MOVBE
// cpu/simd/simd_move.cpp
HANDLER(op_movaps); HANDLER(op_movups); HANDLER(op_movss); HANDLER(op_movsd_sse);
HANDLER(op_movd_movq); HANDLER(op_movlps); HANDLER(op_movhps); HANDLER(op_movhlps);
HANDLER(op_movlhps); HANDLER(op_movddup); HANDLER(op_movsldup); HANDLER(op_movshdup);
HANDLER(op_movmskps); HANDLER(op_movmskpd); HANDLER(op_pmovmskb); HANDLER(op_movnti);
HANDLER(op_maskmov); HANDLER(op_ldmxcsr); HANDLER(op_stmxcsr); HANDLER(op_emms);
HANDLER(op_shufps); HANDLER(op_shufpd); HANDLER(op_unpcklps); HANDLER(op_unpckhps);
HANDLER(op_unpcklpd); HANDLER(op_unpckhpd); HANDLER(op_punpcklbw); HANDLER(op_punpcklwd);
HANDLER(op_punpckldq); HANDLER(op_punpcklqdq); HANDLER(op_punpckhbw); HANDLER(op_punpckhwd);
HANDLER(op_punpckhdq); HANDLER(op_punpckhqdq); HANDLER(op_pshufd); HANDLER(op_pshufw);
HANDLER(op_pshuflw); HANDLER(op_pshufhw); HANDLER(op_pshufb); HANDLER(op_palignr);
HANDLER(op_pslldq); HANDLER(op_psrldq); HANDLER(op_pinsrb); HANDLER(op_pinsrw);
HANDLER(op_pinsrd); HANDLER(op_pinsrq); HANDLER(op_pextrb); HANDLER(op_pextrw);
HANDLER(op_pextrd); HANDLER(op_pextrq); HANDLER(op_extractps); HANDLER(op_insertps);
HANDLER(op_pmovsxbw); HANDLER(op_pmovsxbd); HANDLER(op_pmovsxbq); HANDLER(op_pmovsxwd);
HANDLER(op_pmovsxwq); HANDLER(op_pmovsxdq); HANDLER(op_pmovzxbw); HANDLER(op_pmovzxbd);
HANDLER(op_pmovzxbq); HANDLER(op_pmovzxwd); HANDLER(op_pmovzxwq); HANDLER(op_pmovzxdq);
HANDLER(op_blendps); HANDLER(op_blendpd); HANDLER(op_pblendw); HANDLER(op_blendvps);
HANDLER(op_blendvpd); HANDLER(op_pblendvb);
// cpu/simd/simd_int.cpp
HANDLER(op_paddb); HANDLER(op_paddw); HANDLER(op_paddd); HANDLER(op_paddq); HANDLER(op_psubb);
HANDLER(op_psubw); HANDLER(op_psubd); HANDLER(op_psubq); HANDLER(op_paddsb); HANDLER(op_paddsw);
HANDLER(op_paddusb); HANDLER(op_paddusw); HANDLER(op_psubsb); HANDLER(op_psubsw);
HANDLER(op_psubusb); HANDLER(op_psubusw); HANDLER(op_pmullw); HANDLER(op_pmulhw);
HANDLER(op_pmulhuw); HANDLER(op_pmulld); HANDLER(op_pmulhrsw); HANDLER(op_pmuludq);
HANDLER(op_pmuldq); HANDLER(op_pmaddwd); HANDLER(op_pmaddubsw); HANDLER(op_pavgb);
HANDLER(op_pavgw); HANDLER(op_psadbw); HANDLER(op_mpsadbw); HANDLER(op_phminposuw);
HANDLER(op_pminub); HANDLER(op_pmaxub); HANDLER(op_pminsw); HANDLER(op_pmaxsw);
HANDLER(op_pminsb); HANDLER(op_pmaxsb); HANDLER(op_pminuw); HANDLER(op_pmaxuw);
HANDLER(op_pminsd); HANDLER(op_pmaxsd); HANDLER(op_pminud); HANDLER(op_pmaxud);
HANDLER(op_pcmpeqb); HANDLER(op_pcmpeqw); HANDLER(op_pcmpeqd); HANDLER(op_pcmpeqq);
HANDLER(op_pcmpgtb); HANDLER(op_pcmpgtw); HANDLER(op_pcmpgtd); HANDLER(op_pcmpgtq);
HANDLER(op_ptest); HANDLER(op_pand); HANDLER(op_pandn); HANDLER(op_por); HANDLER(op_pxor);
HANDLER(op_psllw); HANDLER(op_pslld); HANDLER(op_psllq); HANDLER(op_psrlw); HANDLER(op_psrld);
HANDLER(op_psrlq); HANDLER(op_psraw); HANDLER(op_psrad); HANDLER(op_packsswb);
HANDLER(op_packssdw); HANDLER(op_packuswb); HANDLER(op_packusdw); HANDLER(op_phaddw);
HANDLER(op_phaddd); HANDLER(op_phsubw); HANDLER(op_phsubd); HANDLER(op_phaddsw);
HANDLER(op_phsubsw); HANDLER(op_pabsb); HANDLER(op_pabsw); HANDLER(op_pabsd); HANDLER(op_psignb);
HANDLER(op_psignw); HANDLER(op_psignd);
// cpu/simd/simd_float.cpp
HANDLER(op_addps); HANDLER(op_addss); HANDLER(op_addpd); HANDLER(op_addsd); HANDLER(op_subps);
HANDLER(op_subss); HANDLER(op_subpd); HANDLER(op_subsd); HANDLER(op_mulps); HANDLER(op_mulss);
HANDLER(op_mulpd); HANDLER(op_mulsd); HANDLER(op_divps); HANDLER(op_divss); HANDLER(op_divpd);
HANDLER(op_divsd); HANDLER(op_minps); HANDLER(op_minss); HANDLER(op_minpd); HANDLER(op_minsd);
HANDLER(op_maxps); HANDLER(op_maxss); HANDLER(op_maxpd); HANDLER(op_maxsd); HANDLER(op_sqrtps);
HANDLER(op_sqrtss); HANDLER(op_sqrtpd); HANDLER(op_sqrtsd); HANDLER(op_rcpps); HANDLER(op_rcpss);
HANDLER(op_rsqrtps); HANDLER(op_rsqrtss); HANDLER(op_addsubps); HANDLER(op_addsubpd);
HANDLER(op_haddps); HANDLER(op_haddpd); HANDLER(op_hsubps); HANDLER(op_hsubpd); HANDLER(op_cmpps);
HANDLER(op_cmpss); HANDLER(op_cmppd); HANDLER(op_cmpsd_sse); HANDLER(op_roundps);
HANDLER(op_roundss); HANDLER(op_roundpd); HANDLER(op_roundsd); HANDLER(op_dpps); HANDLER(op_dppd);
HANDLER(op_comiss); HANDLER(op_ucomiss); HANDLER(op_comisd); HANDLER(op_ucomisd);
HANDLER(op_cvtps2pd); HANDLER(op_cvtpd2ps); HANDLER(op_cvtss2sd); HANDLER(op_cvtsd2ss);
HANDLER(op_cvtdq2ps); HANDLER(op_cvtps2dq); HANDLER(op_cvttps2dq); HANDLER(op_cvtdq2pd);
HANDLER(op_cvtpd2dq); HANDLER(op_cvttpd2dq); HANDLER(op_cvtsi2ss); HANDLER(op_cvtsi2sd);
HANDLER(op_cvtss2si); HANDLER(op_cvttss2si); HANDLER(op_cvtsd2si); HANDLER(op_cvttsd2si);
HANDLER(op_cvtpi2ps); HANDLER(op_cvtpi2pd); HANDLER(op_cvtps2pi); HANDLER(op_cvttps2pi);
HANDLER(op_cvtpd2pi); HANDLER(op_cvttpd2pi);
// cpu/simd/simd_string.cpp
HANDLER(op_pcmpestri); HANDLER(op_pcmpestrm); HANDLER(op_pcmpistri); HANDLER(op_pcmpistrm);
HANDLER(op_crc32);
// cpu/simd/simd_crypto.cpp
HANDLER(op_aesenc); HANDLER(op_aesenclast); HANDLER(op_aesdec); HANDLER(op_aesdeclast);
HANDLER(op_aesimc); HANDLER(op_aeskeygenassist); HANDLER(op_pclmulqdq);
// cpu/integer/bitmanip.cpp
HANDLER(op_popcnt); HANDLER(op_lzcnt); HANDLER(op_tzcnt); HANDLER(op_andn); HANDLER(op_bextr);
HANDLER(op_blsi); HANDLER(op_blsmsk); HANDLER(op_blsr); HANDLER(op_bzhi); HANDLER(op_mulx);
HANDLER(op_pdep); HANDLER(op_pext); HANDLER(op_rorx); HANDLER(op_sarx); HANDLER(op_shlx);
HANDLER(op_shrx); HANDLER(op_adcx); HANDLER(op_adox); HANDLER(op_movbe);
