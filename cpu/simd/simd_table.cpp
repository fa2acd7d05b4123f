// SSE-SSE4.2, MMX, AES-NI/PCLMULQDQ and general-register extension entries
// of the opcode table (handlers in cpu/simd_*.cpp and cpu/integer/bitmanip.cpp).
#include "cpu/core/handler_registry.h"
#include "cpu/core/handlers.h"

namespace {

// MOVSD and CMPSD name both a string instruction (A5, A7) and an SSE2
// instruction (0F 10/11, 0F C2): the opcode byte tells them apart.
HANDLER(op_movsd_any) { return insn.opcode == 0xA5 ? op_movs(cpu, insn) : op_movsd_sse(cpu, insn); }
HANDLER(op_cmpsd_any) { return insn.opcode == 0xA7 ? op_cmps(cpu, insn) : op_cmpsd_sse(cpu, insn); }

} // namespace

void add_simd_handlers(HandlerTableArray& t)
{
    // Moves (cpu/simd/simd_move.cpp).
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_MOVAPS, ZYDIS_MNEMONIC_MOVAPD, ZYDIS_MNEMONIC_MOVDQA,
                            ZYDIS_MNEMONIC_MOVNTPS, ZYDIS_MNEMONIC_MOVNTPD,
                            ZYDIS_MNEMONIC_MOVNTDQ, ZYDIS_MNEMONIC_MOVNTDQA})
        add(t, m, op_movaps);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_MOVUPS, ZYDIS_MNEMONIC_MOVUPD, ZYDIS_MNEMONIC_MOVDQU,
                            ZYDIS_MNEMONIC_LDDQU})
        add(t, m, op_movups);
    add(t, ZYDIS_MNEMONIC_MOVSS, op_movss);
    add(t, ZYDIS_MNEMONIC_MOVSD, op_movsd_any);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_MOVD, ZYDIS_MNEMONIC_MOVQ, ZYDIS_MNEMONIC_MOVQ2DQ,
                            ZYDIS_MNEMONIC_MOVDQ2Q, ZYDIS_MNEMONIC_MOVNTQ})
        add(t, m, op_movd_movq);
    add(t, ZYDIS_MNEMONIC_MOVLPS, op_movlps);
    add(t, ZYDIS_MNEMONIC_MOVLPD, op_movlps);
    add(t, ZYDIS_MNEMONIC_MOVHPS, op_movhps);
    add(t, ZYDIS_MNEMONIC_MOVHPD, op_movhps);
    add(t, ZYDIS_MNEMONIC_MOVHLPS, op_movhlps);
    add(t, ZYDIS_MNEMONIC_MOVLHPS, op_movlhps);
    add(t, ZYDIS_MNEMONIC_MOVDDUP, op_movddup);
    add(t, ZYDIS_MNEMONIC_MOVSLDUP, op_movsldup);
    add(t, ZYDIS_MNEMONIC_MOVSHDUP, op_movshdup);
    add(t, ZYDIS_MNEMONIC_MOVMSKPS, op_movmskps);
    add(t, ZYDIS_MNEMONIC_MOVMSKPD, op_movmskpd);
    add(t, ZYDIS_MNEMONIC_PMOVMSKB, op_pmovmskb);
    add(t, ZYDIS_MNEMONIC_MOVNTI, op_movnti);
    add(t, ZYDIS_MNEMONIC_MASKMOVQ, op_maskmov);
    add(t, ZYDIS_MNEMONIC_MASKMOVDQU, op_maskmov);
    add(t, ZYDIS_MNEMONIC_LDMXCSR, op_ldmxcsr);
    add(t, ZYDIS_MNEMONIC_STMXCSR, op_stmxcsr);
    add(t, ZYDIS_MNEMONIC_EMMS, op_emms);
    add(t, ZYDIS_MNEMONIC_SHUFPS, op_shufps);
    add(t, ZYDIS_MNEMONIC_SHUFPD, op_shufpd);
    add(t, ZYDIS_MNEMONIC_UNPCKLPS, op_unpcklps);
    add(t, ZYDIS_MNEMONIC_UNPCKHPS, op_unpckhps);
    add(t, ZYDIS_MNEMONIC_UNPCKLPD, op_unpcklpd);
    add(t, ZYDIS_MNEMONIC_UNPCKHPD, op_unpckhpd);
    add(t, ZYDIS_MNEMONIC_PUNPCKLBW, op_punpcklbw);
    add(t, ZYDIS_MNEMONIC_PUNPCKLWD, op_punpcklwd);
    add(t, ZYDIS_MNEMONIC_PUNPCKLDQ, op_punpckldq);
    add(t, ZYDIS_MNEMONIC_PUNPCKLQDQ, op_punpcklqdq);
    add(t, ZYDIS_MNEMONIC_PUNPCKHBW, op_punpckhbw);
    add(t, ZYDIS_MNEMONIC_PUNPCKHWD, op_punpckhwd);
    add(t, ZYDIS_MNEMONIC_PUNPCKHDQ, op_punpckhdq);
    add(t, ZYDIS_MNEMONIC_PUNPCKHQDQ, op_punpckhqdq);
    add(t, ZYDIS_MNEMONIC_PSHUFD, op_pshufd);
    add(t, ZYDIS_MNEMONIC_PSHUFW, op_pshufw);
    add(t, ZYDIS_MNEMONIC_PSHUFLW, op_pshuflw);
    add(t, ZYDIS_MNEMONIC_PSHUFHW, op_pshufhw);
    add(t, ZYDIS_MNEMONIC_PSHUFB, op_pshufb);
    add(t, ZYDIS_MNEMONIC_PALIGNR, op_palignr);
    add(t, ZYDIS_MNEMONIC_PSLLDQ, op_pslldq);
    add(t, ZYDIS_MNEMONIC_PSRLDQ, op_psrldq);
    add(t, ZYDIS_MNEMONIC_PINSRB, op_pinsrb);
    add(t, ZYDIS_MNEMONIC_PINSRW, op_pinsrw);
    add(t, ZYDIS_MNEMONIC_PINSRD, op_pinsrd);
    add(t, ZYDIS_MNEMONIC_PINSRQ, op_pinsrq);
    add(t, ZYDIS_MNEMONIC_PEXTRB, op_pextrb);
    add(t, ZYDIS_MNEMONIC_PEXTRW, op_pextrw);
    add(t, ZYDIS_MNEMONIC_PEXTRD, op_pextrd);
    add(t, ZYDIS_MNEMONIC_PEXTRQ, op_pextrq);
    add(t, ZYDIS_MNEMONIC_EXTRACTPS, op_extractps);
    add(t, ZYDIS_MNEMONIC_INSERTPS, op_insertps);
    add(t, ZYDIS_MNEMONIC_PMOVSXBW, op_pmovsxbw);
    add(t, ZYDIS_MNEMONIC_PMOVSXBD, op_pmovsxbd);
    add(t, ZYDIS_MNEMONIC_PMOVSXBQ, op_pmovsxbq);
    add(t, ZYDIS_MNEMONIC_PMOVSXWD, op_pmovsxwd);
    add(t, ZYDIS_MNEMONIC_PMOVSXWQ, op_pmovsxwq);
    add(t, ZYDIS_MNEMONIC_PMOVSXDQ, op_pmovsxdq);
    add(t, ZYDIS_MNEMONIC_PMOVZXBW, op_pmovzxbw);
    add(t, ZYDIS_MNEMONIC_PMOVZXBD, op_pmovzxbd);
    add(t, ZYDIS_MNEMONIC_PMOVZXBQ, op_pmovzxbq);
    add(t, ZYDIS_MNEMONIC_PMOVZXWD, op_pmovzxwd);
    add(t, ZYDIS_MNEMONIC_PMOVZXWQ, op_pmovzxwq);
    add(t, ZYDIS_MNEMONIC_PMOVZXDQ, op_pmovzxdq);
    add(t, ZYDIS_MNEMONIC_BLENDPS, op_blendps);
    add(t, ZYDIS_MNEMONIC_BLENDPD, op_blendpd);
    add(t, ZYDIS_MNEMONIC_PBLENDW, op_pblendw);
    add(t, ZYDIS_MNEMONIC_BLENDVPS, op_blendvps);
    add(t, ZYDIS_MNEMONIC_BLENDVPD, op_blendvpd);
    add(t, ZYDIS_MNEMONIC_PBLENDVB, op_pblendvb);

    // Packed integer (cpu/simd/simd_int.cpp); the float logic shares the integer forms.
    add(t, ZYDIS_MNEMONIC_PADDB, op_paddb);
    add(t, ZYDIS_MNEMONIC_PADDW, op_paddw);
    add(t, ZYDIS_MNEMONIC_PADDD, op_paddd);
    add(t, ZYDIS_MNEMONIC_PADDQ, op_paddq);
    add(t, ZYDIS_MNEMONIC_PSUBB, op_psubb);
    add(t, ZYDIS_MNEMONIC_PSUBW, op_psubw);
    add(t, ZYDIS_MNEMONIC_PSUBD, op_psubd);
    add(t, ZYDIS_MNEMONIC_PSUBQ, op_psubq);
    add(t, ZYDIS_MNEMONIC_PADDSB, op_paddsb);
    add(t, ZYDIS_MNEMONIC_PADDSW, op_paddsw);
    add(t, ZYDIS_MNEMONIC_PADDUSB, op_paddusb);
    add(t, ZYDIS_MNEMONIC_PADDUSW, op_paddusw);
    add(t, ZYDIS_MNEMONIC_PSUBSB, op_psubsb);
    add(t, ZYDIS_MNEMONIC_PSUBSW, op_psubsw);
    add(t, ZYDIS_MNEMONIC_PSUBUSB, op_psubusb);
    add(t, ZYDIS_MNEMONIC_PSUBUSW, op_psubusw);
    add(t, ZYDIS_MNEMONIC_PMULLW, op_pmullw);
    add(t, ZYDIS_MNEMONIC_PMULHW, op_pmulhw);
    add(t, ZYDIS_MNEMONIC_PMULHUW, op_pmulhuw);
    add(t, ZYDIS_MNEMONIC_PMULLD, op_pmulld);
    add(t, ZYDIS_MNEMONIC_PMULHRSW, op_pmulhrsw);
    add(t, ZYDIS_MNEMONIC_PMULUDQ, op_pmuludq);
    add(t, ZYDIS_MNEMONIC_PMULDQ, op_pmuldq);
    add(t, ZYDIS_MNEMONIC_PMADDWD, op_pmaddwd);
    add(t, ZYDIS_MNEMONIC_PMADDUBSW, op_pmaddubsw);
    add(t, ZYDIS_MNEMONIC_PAVGB, op_pavgb);
    add(t, ZYDIS_MNEMONIC_PAVGW, op_pavgw);
    add(t, ZYDIS_MNEMONIC_PSADBW, op_psadbw);
    add(t, ZYDIS_MNEMONIC_MPSADBW, op_mpsadbw);
    add(t, ZYDIS_MNEMONIC_PHMINPOSUW, op_phminposuw);
    add(t, ZYDIS_MNEMONIC_PMINUB, op_pminub);
    add(t, ZYDIS_MNEMONIC_PMAXUB, op_pmaxub);
    add(t, ZYDIS_MNEMONIC_PMINSW, op_pminsw);
    add(t, ZYDIS_MNEMONIC_PMAXSW, op_pmaxsw);
    add(t, ZYDIS_MNEMONIC_PMINSB, op_pminsb);
    add(t, ZYDIS_MNEMONIC_PMAXSB, op_pmaxsb);
    add(t, ZYDIS_MNEMONIC_PMINUW, op_pminuw);
    add(t, ZYDIS_MNEMONIC_PMAXUW, op_pmaxuw);
    add(t, ZYDIS_MNEMONIC_PMINSD, op_pminsd);
    add(t, ZYDIS_MNEMONIC_PMAXSD, op_pmaxsd);
    add(t, ZYDIS_MNEMONIC_PMINUD, op_pminud);
    add(t, ZYDIS_MNEMONIC_PMAXUD, op_pmaxud);
    add(t, ZYDIS_MNEMONIC_PCMPEQB, op_pcmpeqb);
    add(t, ZYDIS_MNEMONIC_PCMPEQW, op_pcmpeqw);
    add(t, ZYDIS_MNEMONIC_PCMPEQD, op_pcmpeqd);
    add(t, ZYDIS_MNEMONIC_PCMPEQQ, op_pcmpeqq);
    add(t, ZYDIS_MNEMONIC_PCMPGTB, op_pcmpgtb);
    add(t, ZYDIS_MNEMONIC_PCMPGTW, op_pcmpgtw);
    add(t, ZYDIS_MNEMONIC_PCMPGTD, op_pcmpgtd);
    add(t, ZYDIS_MNEMONIC_PCMPGTQ, op_pcmpgtq);
    add(t, ZYDIS_MNEMONIC_PTEST, op_ptest);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_PAND, ZYDIS_MNEMONIC_ANDPS, ZYDIS_MNEMONIC_ANDPD})
        add(t, m, op_pand);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_PANDN, ZYDIS_MNEMONIC_ANDNPS, ZYDIS_MNEMONIC_ANDNPD})
        add(t, m, op_pandn);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_POR, ZYDIS_MNEMONIC_ORPS, ZYDIS_MNEMONIC_ORPD})
        add(t, m, op_por);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_PXOR, ZYDIS_MNEMONIC_XORPS, ZYDIS_MNEMONIC_XORPD})
        add(t, m, op_pxor);
    add(t, ZYDIS_MNEMONIC_PSLLW, op_psllw);
    add(t, ZYDIS_MNEMONIC_PSLLD, op_pslld);
    add(t, ZYDIS_MNEMONIC_PSLLQ, op_psllq);
    add(t, ZYDIS_MNEMONIC_PSRLW, op_psrlw);
    add(t, ZYDIS_MNEMONIC_PSRLD, op_psrld);
    add(t, ZYDIS_MNEMONIC_PSRLQ, op_psrlq);
    add(t, ZYDIS_MNEMONIC_PSRAW, op_psraw);
    add(t, ZYDIS_MNEMONIC_PSRAD, op_psrad);
    add(t, ZYDIS_MNEMONIC_PACKSSWB, op_packsswb);
    add(t, ZYDIS_MNEMONIC_PACKSSDW, op_packssdw);
    add(t, ZYDIS_MNEMONIC_PACKUSWB, op_packuswb);
    add(t, ZYDIS_MNEMONIC_PACKUSDW, op_packusdw);
    add(t, ZYDIS_MNEMONIC_PHADDW, op_phaddw);
    add(t, ZYDIS_MNEMONIC_PHADDD, op_phaddd);
    add(t, ZYDIS_MNEMONIC_PHSUBW, op_phsubw);
    add(t, ZYDIS_MNEMONIC_PHSUBD, op_phsubd);
    add(t, ZYDIS_MNEMONIC_PHADDSW, op_phaddsw);
    add(t, ZYDIS_MNEMONIC_PHSUBSW, op_phsubsw);
    add(t, ZYDIS_MNEMONIC_PABSB, op_pabsb);
    add(t, ZYDIS_MNEMONIC_PABSW, op_pabsw);
    add(t, ZYDIS_MNEMONIC_PABSD, op_pabsd);
    add(t, ZYDIS_MNEMONIC_PSIGNB, op_psignb);
    add(t, ZYDIS_MNEMONIC_PSIGNW, op_psignw);
    add(t, ZYDIS_MNEMONIC_PSIGND, op_psignd);

    // Floating point (cpu/simd/simd_float.cpp).
    add(t, ZYDIS_MNEMONIC_ADDPS, op_addps);
    add(t, ZYDIS_MNEMONIC_ADDSS, op_addss);
    add(t, ZYDIS_MNEMONIC_ADDPD, op_addpd);
    add(t, ZYDIS_MNEMONIC_ADDSD, op_addsd);
    add(t, ZYDIS_MNEMONIC_SUBPS, op_subps);
    add(t, ZYDIS_MNEMONIC_SUBSS, op_subss);
    add(t, ZYDIS_MNEMONIC_SUBPD, op_subpd);
    add(t, ZYDIS_MNEMONIC_SUBSD, op_subsd);
    add(t, ZYDIS_MNEMONIC_MULPS, op_mulps);
    add(t, ZYDIS_MNEMONIC_MULSS, op_mulss);
    add(t, ZYDIS_MNEMONIC_MULPD, op_mulpd);
    add(t, ZYDIS_MNEMONIC_MULSD, op_mulsd);
    add(t, ZYDIS_MNEMONIC_DIVPS, op_divps);
    add(t, ZYDIS_MNEMONIC_DIVSS, op_divss);
    add(t, ZYDIS_MNEMONIC_DIVPD, op_divpd);
    add(t, ZYDIS_MNEMONIC_DIVSD, op_divsd);
    add(t, ZYDIS_MNEMONIC_MINPS, op_minps);
    add(t, ZYDIS_MNEMONIC_MINSS, op_minss);
    add(t, ZYDIS_MNEMONIC_MINPD, op_minpd);
    add(t, ZYDIS_MNEMONIC_MINSD, op_minsd);
    add(t, ZYDIS_MNEMONIC_MAXPS, op_maxps);
    add(t, ZYDIS_MNEMONIC_MAXSS, op_maxss);
    add(t, ZYDIS_MNEMONIC_MAXPD, op_maxpd);
    add(t, ZYDIS_MNEMONIC_MAXSD, op_maxsd);
    add(t, ZYDIS_MNEMONIC_SQRTPS, op_sqrtps);
    add(t, ZYDIS_MNEMONIC_SQRTSS, op_sqrtss);
    add(t, ZYDIS_MNEMONIC_SQRTPD, op_sqrtpd);
    add(t, ZYDIS_MNEMONIC_SQRTSD, op_sqrtsd);
    add(t, ZYDIS_MNEMONIC_RCPPS, op_rcpps);
    add(t, ZYDIS_MNEMONIC_RCPSS, op_rcpss);
    add(t, ZYDIS_MNEMONIC_RSQRTPS, op_rsqrtps);
    add(t, ZYDIS_MNEMONIC_RSQRTSS, op_rsqrtss);
    add(t, ZYDIS_MNEMONIC_ADDSUBPS, op_addsubps);
    add(t, ZYDIS_MNEMONIC_ADDSUBPD, op_addsubpd);
    add(t, ZYDIS_MNEMONIC_HADDPS, op_haddps);
    add(t, ZYDIS_MNEMONIC_HADDPD, op_haddpd);
    add(t, ZYDIS_MNEMONIC_HSUBPS, op_hsubps);
    add(t, ZYDIS_MNEMONIC_HSUBPD, op_hsubpd);
    add(t, ZYDIS_MNEMONIC_CMPPS, op_cmpps);
    add(t, ZYDIS_MNEMONIC_CMPSS, op_cmpss);
    add(t, ZYDIS_MNEMONIC_CMPPD, op_cmppd);
    add(t, ZYDIS_MNEMONIC_CMPSD, op_cmpsd_any);
    add(t, ZYDIS_MNEMONIC_ROUNDPS, op_roundps);
    add(t, ZYDIS_MNEMONIC_ROUNDSS, op_roundss);
    add(t, ZYDIS_MNEMONIC_ROUNDPD, op_roundpd);
    add(t, ZYDIS_MNEMONIC_ROUNDSD, op_roundsd);
    add(t, ZYDIS_MNEMONIC_DPPS, op_dpps);
    add(t, ZYDIS_MNEMONIC_DPPD, op_dppd);
    add(t, ZYDIS_MNEMONIC_COMISS, op_comiss);
    add(t, ZYDIS_MNEMONIC_UCOMISS, op_ucomiss);
    add(t, ZYDIS_MNEMONIC_COMISD, op_comisd);
    add(t, ZYDIS_MNEMONIC_UCOMISD, op_ucomisd);
    add(t, ZYDIS_MNEMONIC_CVTPS2PD, op_cvtps2pd);
    add(t, ZYDIS_MNEMONIC_CVTPD2PS, op_cvtpd2ps);
    add(t, ZYDIS_MNEMONIC_CVTSS2SD, op_cvtss2sd);
    add(t, ZYDIS_MNEMONIC_CVTSD2SS, op_cvtsd2ss);
    add(t, ZYDIS_MNEMONIC_CVTDQ2PS, op_cvtdq2ps);
    add(t, ZYDIS_MNEMONIC_CVTPS2DQ, op_cvtps2dq);
    add(t, ZYDIS_MNEMONIC_CVTTPS2DQ, op_cvttps2dq);
    add(t, ZYDIS_MNEMONIC_CVTDQ2PD, op_cvtdq2pd);
    add(t, ZYDIS_MNEMONIC_CVTPD2DQ, op_cvtpd2dq);
    add(t, ZYDIS_MNEMONIC_CVTTPD2DQ, op_cvttpd2dq);
    add(t, ZYDIS_MNEMONIC_CVTSI2SS, op_cvtsi2ss);
    add(t, ZYDIS_MNEMONIC_CVTSI2SD, op_cvtsi2sd);
    add(t, ZYDIS_MNEMONIC_CVTSS2SI, op_cvtss2si);
    add(t, ZYDIS_MNEMONIC_CVTTSS2SI, op_cvttss2si);
    add(t, ZYDIS_MNEMONIC_CVTSD2SI, op_cvtsd2si);
    add(t, ZYDIS_MNEMONIC_CVTTSD2SI, op_cvttsd2si);
    add(t, ZYDIS_MNEMONIC_CVTPI2PS, op_cvtpi2ps);
    add(t, ZYDIS_MNEMONIC_CVTPI2PD, op_cvtpi2pd);
    add(t, ZYDIS_MNEMONIC_CVTPS2PI, op_cvtps2pi);
    add(t, ZYDIS_MNEMONIC_CVTTPS2PI, op_cvttps2pi);
    add(t, ZYDIS_MNEMONIC_CVTPD2PI, op_cvtpd2pi);
    add(t, ZYDIS_MNEMONIC_CVTTPD2PI, op_cvttpd2pi);

    // SSE4.2 strings and CRC32 (cpu/simd/simd_string.cpp).
    add(t, ZYDIS_MNEMONIC_PCMPESTRI, op_pcmpestri);
    add(t, ZYDIS_MNEMONIC_PCMPESTRM, op_pcmpestrm);
    add(t, ZYDIS_MNEMONIC_PCMPISTRI, op_pcmpistri);
    add(t, ZYDIS_MNEMONIC_PCMPISTRM, op_pcmpistrm);
    add(t, ZYDIS_MNEMONIC_CRC32, op_crc32);

    // AES-NI and PCLMULQDQ (cpu/simd/simd_crypto.cpp).
    add(t, ZYDIS_MNEMONIC_AESENC, op_aesenc);
    add(t, ZYDIS_MNEMONIC_AESENCLAST, op_aesenclast);
    add(t, ZYDIS_MNEMONIC_AESDEC, op_aesdec);
    add(t, ZYDIS_MNEMONIC_AESDECLAST, op_aesdeclast);
    add(t, ZYDIS_MNEMONIC_AESIMC, op_aesimc);
    add(t, ZYDIS_MNEMONIC_AESKEYGENASSIST, op_aeskeygenassist);
    add(t, ZYDIS_MNEMONIC_PCLMULQDQ, op_pclmulqdq);

    // General-register extensions (cpu/integer/bitmanip.cpp).
    add(t, ZYDIS_MNEMONIC_POPCNT, op_popcnt);
    add(t, ZYDIS_MNEMONIC_LZCNT, op_lzcnt);
    add(t, ZYDIS_MNEMONIC_TZCNT, op_tzcnt);
    add(t, ZYDIS_MNEMONIC_ANDN, op_andn);
    add(t, ZYDIS_MNEMONIC_BEXTR, op_bextr);
    add(t, ZYDIS_MNEMONIC_BLSI, op_blsi);
    add(t, ZYDIS_MNEMONIC_BLSMSK, op_blsmsk);
    add(t, ZYDIS_MNEMONIC_BLSR, op_blsr);
    add(t, ZYDIS_MNEMONIC_BZHI, op_bzhi);
    add(t, ZYDIS_MNEMONIC_MULX, op_mulx);
    add(t, ZYDIS_MNEMONIC_PDEP, op_pdep);
    add(t, ZYDIS_MNEMONIC_PEXT, op_pext);
    add(t, ZYDIS_MNEMONIC_RORX, op_rorx);
    add(t, ZYDIS_MNEMONIC_SARX, op_sarx);
    add(t, ZYDIS_MNEMONIC_SHLX, op_shlx);
    add(t, ZYDIS_MNEMONIC_SHRX, op_shrx);
    add(t, ZYDIS_MNEMONIC_ADCX, op_adcx);
    add(t, ZYDIS_MNEMONIC_ADOX, op_adox);
    add(t, ZYDIS_MNEMONIC_MOVBE, op_movbe);
}
