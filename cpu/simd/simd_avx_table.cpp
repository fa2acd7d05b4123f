// VEX (AVX, AVX2, FMA, F16C) entries of the opcode table. Lane-wise
// instructions share the SSE handlers, whose simd::binary runs VEX forms per
// 128-bit lane; the rest live in cpu/simd/simd_avx.cpp, simd_fma.cpp and
// simd_f16c.cpp. VEX encodings of other extensions (AVX-VNNI, GFNI, ...) are
// not here and raise #UD.
#include "cpu/core/handler_registry.h"
#include "cpu/core/handlers.h"

void add_avx_handlers(HandlerTableArray& t)
{
    // Lane-wise integer, logic and in-lane shuffles: the 256-bit form is the
    // 128-bit operation on each half with the same immediate.
    const struct {
        ZydisMnemonic vex;
        Handler legacy;
    } lanewise[] = {
        {ZYDIS_MNEMONIC_VPADDB, op_paddb},         {ZYDIS_MNEMONIC_VPADDW, op_paddw},
        {ZYDIS_MNEMONIC_VPADDD, op_paddd},         {ZYDIS_MNEMONIC_VPADDQ, op_paddq},
        {ZYDIS_MNEMONIC_VPSUBB, op_psubb},         {ZYDIS_MNEMONIC_VPSUBW, op_psubw},
        {ZYDIS_MNEMONIC_VPSUBD, op_psubd},         {ZYDIS_MNEMONIC_VPSUBQ, op_psubq},
        {ZYDIS_MNEMONIC_VPADDSB, op_paddsb},       {ZYDIS_MNEMONIC_VPADDSW, op_paddsw},
        {ZYDIS_MNEMONIC_VPADDUSB, op_paddusb},     {ZYDIS_MNEMONIC_VPADDUSW, op_paddusw},
        {ZYDIS_MNEMONIC_VPSUBSB, op_psubsb},       {ZYDIS_MNEMONIC_VPSUBSW, op_psubsw},
        {ZYDIS_MNEMONIC_VPSUBUSB, op_psubusb},     {ZYDIS_MNEMONIC_VPSUBUSW, op_psubusw},
        {ZYDIS_MNEMONIC_VPMULLW, op_pmullw},       {ZYDIS_MNEMONIC_VPMULHW, op_pmulhw},
        {ZYDIS_MNEMONIC_VPMULHUW, op_pmulhuw},     {ZYDIS_MNEMONIC_VPMULLD, op_pmulld},
        {ZYDIS_MNEMONIC_VPMULHRSW, op_pmulhrsw},   {ZYDIS_MNEMONIC_VPMULUDQ, op_pmuludq},
        {ZYDIS_MNEMONIC_VPMULDQ, op_pmuldq},       {ZYDIS_MNEMONIC_VPMADDWD, op_pmaddwd},
        {ZYDIS_MNEMONIC_VPMADDUBSW, op_pmaddubsw}, {ZYDIS_MNEMONIC_VPAVGB, op_pavgb},
        {ZYDIS_MNEMONIC_VPAVGW, op_pavgw},         {ZYDIS_MNEMONIC_VPSADBW, op_psadbw},
        {ZYDIS_MNEMONIC_VPMINUB, op_pminub},       {ZYDIS_MNEMONIC_VPMAXUB, op_pmaxub},
        {ZYDIS_MNEMONIC_VPMINSW, op_pminsw},       {ZYDIS_MNEMONIC_VPMAXSW, op_pmaxsw},
        {ZYDIS_MNEMONIC_VPMINSB, op_pminsb},       {ZYDIS_MNEMONIC_VPMAXSB, op_pmaxsb},
        {ZYDIS_MNEMONIC_VPMINUW, op_pminuw},       {ZYDIS_MNEMONIC_VPMAXUW, op_pmaxuw},
        {ZYDIS_MNEMONIC_VPMINSD, op_pminsd},       {ZYDIS_MNEMONIC_VPMAXSD, op_pmaxsd},
        {ZYDIS_MNEMONIC_VPMINUD, op_pminud},       {ZYDIS_MNEMONIC_VPMAXUD, op_pmaxud},
        {ZYDIS_MNEMONIC_VPCMPEQB, op_pcmpeqb},     {ZYDIS_MNEMONIC_VPCMPEQW, op_pcmpeqw},
        {ZYDIS_MNEMONIC_VPCMPEQD, op_pcmpeqd},     {ZYDIS_MNEMONIC_VPCMPEQQ, op_pcmpeqq},
        {ZYDIS_MNEMONIC_VPCMPGTB, op_pcmpgtb},     {ZYDIS_MNEMONIC_VPCMPGTW, op_pcmpgtw},
        {ZYDIS_MNEMONIC_VPCMPGTD, op_pcmpgtd},     {ZYDIS_MNEMONIC_VPCMPGTQ, op_pcmpgtq},
        {ZYDIS_MNEMONIC_VPAND, op_pand},           {ZYDIS_MNEMONIC_VANDPS, op_pand},
        {ZYDIS_MNEMONIC_VANDPD, op_pand},          {ZYDIS_MNEMONIC_VPANDN, op_pandn},
        {ZYDIS_MNEMONIC_VANDNPS, op_pandn},        {ZYDIS_MNEMONIC_VANDNPD, op_pandn},
        {ZYDIS_MNEMONIC_VPOR, op_por},             {ZYDIS_MNEMONIC_VORPS, op_por},
        {ZYDIS_MNEMONIC_VORPD, op_por},            {ZYDIS_MNEMONIC_VPXOR, op_pxor},
        {ZYDIS_MNEMONIC_VXORPS, op_pxor},          {ZYDIS_MNEMONIC_VXORPD, op_pxor},
        {ZYDIS_MNEMONIC_VPSLLW, op_psllw},         {ZYDIS_MNEMONIC_VPSLLD, op_pslld},
        {ZYDIS_MNEMONIC_VPSLLQ, op_psllq},         {ZYDIS_MNEMONIC_VPSRLW, op_psrlw},
        {ZYDIS_MNEMONIC_VPSRLD, op_psrld},         {ZYDIS_MNEMONIC_VPSRLQ, op_psrlq},
        {ZYDIS_MNEMONIC_VPSRAW, op_psraw},         {ZYDIS_MNEMONIC_VPSRAD, op_psrad},
        {ZYDIS_MNEMONIC_VPACKSSWB, op_packsswb},   {ZYDIS_MNEMONIC_VPACKSSDW, op_packssdw},
        {ZYDIS_MNEMONIC_VPACKUSWB, op_packuswb},   {ZYDIS_MNEMONIC_VPACKUSDW, op_packusdw},
        {ZYDIS_MNEMONIC_VPHADDW, op_phaddw},       {ZYDIS_MNEMONIC_VPHADDD, op_phaddd},
        {ZYDIS_MNEMONIC_VPHSUBW, op_phsubw},       {ZYDIS_MNEMONIC_VPHSUBD, op_phsubd},
        {ZYDIS_MNEMONIC_VPHADDSW, op_phaddsw},     {ZYDIS_MNEMONIC_VPHSUBSW, op_phsubsw},
        {ZYDIS_MNEMONIC_VPABSB, op_pabsb},         {ZYDIS_MNEMONIC_VPABSW, op_pabsw},
        {ZYDIS_MNEMONIC_VPABSD, op_pabsd},         {ZYDIS_MNEMONIC_VPSIGNB, op_psignb},
        {ZYDIS_MNEMONIC_VPSIGNW, op_psignw},       {ZYDIS_MNEMONIC_VPSIGND, op_psignd},
        {ZYDIS_MNEMONIC_VUNPCKLPS, op_unpcklps},   {ZYDIS_MNEMONIC_VUNPCKHPS, op_unpckhps},
        {ZYDIS_MNEMONIC_VUNPCKLPD, op_unpcklpd},   {ZYDIS_MNEMONIC_VUNPCKHPD, op_unpckhpd},
        {ZYDIS_MNEMONIC_VPUNPCKLBW, op_punpcklbw}, {ZYDIS_MNEMONIC_VPUNPCKLWD, op_punpcklwd},
        {ZYDIS_MNEMONIC_VPUNPCKLDQ, op_punpckldq}, {ZYDIS_MNEMONIC_VPUNPCKLQDQ, op_punpcklqdq},
        {ZYDIS_MNEMONIC_VPUNPCKHBW, op_punpckhbw}, {ZYDIS_MNEMONIC_VPUNPCKHWD, op_punpckhwd},
        {ZYDIS_MNEMONIC_VPUNPCKHDQ, op_punpckhdq}, {ZYDIS_MNEMONIC_VPUNPCKHQDQ, op_punpckhqdq},
        {ZYDIS_MNEMONIC_VPSHUFD, op_pshufd},       {ZYDIS_MNEMONIC_VPSHUFLW, op_pshuflw},
        {ZYDIS_MNEMONIC_VPSHUFHW, op_pshufhw},     {ZYDIS_MNEMONIC_VPSHUFB, op_pshufb},
        {ZYDIS_MNEMONIC_VPALIGNR, op_palignr},     {ZYDIS_MNEMONIC_VPSLLDQ, op_pslldq},
        {ZYDIS_MNEMONIC_VPSRLDQ, op_psrldq},       {ZYDIS_MNEMONIC_VPBLENDW, op_pblendw},
        {ZYDIS_MNEMONIC_VSHUFPS, op_shufps},       {ZYDIS_MNEMONIC_VMOVDDUP, op_movddup},
        {ZYDIS_MNEMONIC_VMOVSLDUP, op_movsldup},   {ZYDIS_MNEMONIC_VMOVSHDUP, op_movshdup},
        {ZYDIS_MNEMONIC_VMOVHLPS, op_movhlps},     {ZYDIS_MNEMONIC_VMOVLHPS, op_movlhps},
        {ZYDIS_MNEMONIC_VPHMINPOSUW, op_phminposuw}, {ZYDIS_MNEMONIC_VAESENC, op_aesenc},
        {ZYDIS_MNEMONIC_VAESENCLAST, op_aesenclast}, {ZYDIS_MNEMONIC_VAESDEC, op_aesdec},
        {ZYDIS_MNEMONIC_VAESDECLAST, op_aesdeclast}, {ZYDIS_MNEMONIC_VAESIMC, op_aesimc},
        {ZYDIS_MNEMONIC_VAESKEYGENASSIST, op_aeskeygenassist},
        {ZYDIS_MNEMONIC_VPCLMULQDQ, op_pclmulqdq},
    };
    for (const auto& e : lanewise)
        add(t, e.vex, e.legacy);

    // Float arithmetic: the SSE kernels per lane (simd_float.cpp's fp_op and
    // fp_horizontal take the VEX operands).
    const struct {
        ZydisMnemonic vex;
        Handler legacy;
    } fp[] = {
        {ZYDIS_MNEMONIC_VADDPS, op_addps},       {ZYDIS_MNEMONIC_VADDPD, op_addpd},
        {ZYDIS_MNEMONIC_VADDSS, op_addss},       {ZYDIS_MNEMONIC_VADDSD, op_addsd},
        {ZYDIS_MNEMONIC_VSUBPS, op_subps},       {ZYDIS_MNEMONIC_VSUBPD, op_subpd},
        {ZYDIS_MNEMONIC_VSUBSS, op_subss},       {ZYDIS_MNEMONIC_VSUBSD, op_subsd},
        {ZYDIS_MNEMONIC_VMULPS, op_mulps},       {ZYDIS_MNEMONIC_VMULPD, op_mulpd},
        {ZYDIS_MNEMONIC_VMULSS, op_mulss},       {ZYDIS_MNEMONIC_VMULSD, op_mulsd},
        {ZYDIS_MNEMONIC_VDIVPS, op_divps},       {ZYDIS_MNEMONIC_VDIVPD, op_divpd},
        {ZYDIS_MNEMONIC_VDIVSS, op_divss},       {ZYDIS_MNEMONIC_VDIVSD, op_divsd},
        {ZYDIS_MNEMONIC_VMINPS, op_minps},       {ZYDIS_MNEMONIC_VMINPD, op_minpd},
        {ZYDIS_MNEMONIC_VMINSS, op_minss},       {ZYDIS_MNEMONIC_VMINSD, op_minsd},
        {ZYDIS_MNEMONIC_VMAXPS, op_maxps},       {ZYDIS_MNEMONIC_VMAXPD, op_maxpd},
        {ZYDIS_MNEMONIC_VMAXSS, op_maxss},       {ZYDIS_MNEMONIC_VMAXSD, op_maxsd},
        {ZYDIS_MNEMONIC_VSQRTPS, op_sqrtps},     {ZYDIS_MNEMONIC_VSQRTPD, op_sqrtpd},
        {ZYDIS_MNEMONIC_VSQRTSS, op_sqrtss},     {ZYDIS_MNEMONIC_VSQRTSD, op_sqrtsd},
        {ZYDIS_MNEMONIC_VRCPPS, op_rcpps},       {ZYDIS_MNEMONIC_VRCPSS, op_rcpss},
        {ZYDIS_MNEMONIC_VRSQRTPS, op_rsqrtps},   {ZYDIS_MNEMONIC_VRSQRTSS, op_rsqrtss},
        {ZYDIS_MNEMONIC_VADDSUBPS, op_addsubps}, {ZYDIS_MNEMONIC_VADDSUBPD, op_addsubpd},
        {ZYDIS_MNEMONIC_VHADDPS, op_haddps},     {ZYDIS_MNEMONIC_VHADDPD, op_haddpd},
        {ZYDIS_MNEMONIC_VHSUBPS, op_hsubps},     {ZYDIS_MNEMONIC_VHSUBPD, op_hsubpd},
        {ZYDIS_MNEMONIC_VROUNDPS, op_roundps},   {ZYDIS_MNEMONIC_VROUNDPD, op_roundpd},
        {ZYDIS_MNEMONIC_VROUNDSS, op_roundss},   {ZYDIS_MNEMONIC_VROUNDSD, op_roundsd},
        {ZYDIS_MNEMONIC_VCVTDQ2PS, op_cvtdq2ps}, {ZYDIS_MNEMONIC_VCVTPS2DQ, op_cvtps2dq},
        {ZYDIS_MNEMONIC_VCVTTPS2DQ, op_cvttps2dq}, {ZYDIS_MNEMONIC_VCVTSS2SD, op_cvtss2sd},
        {ZYDIS_MNEMONIC_VCVTSD2SS, op_cvtsd2ss},   {ZYDIS_MNEMONIC_VCVTSI2SS, op_cvtsi2ss},
        {ZYDIS_MNEMONIC_VCVTSI2SD, op_cvtsi2sd},   {ZYDIS_MNEMONIC_VCVTPS2PD, op_cvtps2pd},
        {ZYDIS_MNEMONIC_VCVTPD2PS, op_cvtpd2ps},   {ZYDIS_MNEMONIC_VCVTDQ2PD, op_cvtdq2pd},
        {ZYDIS_MNEMONIC_VCVTPD2DQ, op_cvtpd2dq},   {ZYDIS_MNEMONIC_VCVTTPD2DQ, op_cvttpd2dq},
        {ZYDIS_MNEMONIC_VDPPS, op_dpps},           {ZYDIS_MNEMONIC_VDPPD, op_dppd},
    };
    for (const auto& e : fp)
        add(t, e.vex, e.legacy);
    add(t, ZYDIS_MNEMONIC_VCMPPS, op_cmpps);
    add(t, ZYDIS_MNEMONIC_VCMPPD, op_cmppd);
    add(t, ZYDIS_MNEMONIC_VCMPSS, op_cmpss);
    add(t, ZYDIS_MNEMONIC_VCMPSD, op_cmpsd_sse);
    add(t, ZYDIS_MNEMONIC_VCOMISS, op_vcomiss);
    add(t, ZYDIS_MNEMONIC_VUCOMISS, op_vucomiss);
    add(t, ZYDIS_MNEMONIC_VCOMISD, op_vcomisd);
    add(t, ZYDIS_MNEMONIC_VUCOMISD, op_vucomisd);
    add(t, ZYDIS_MNEMONIC_VCVTSS2SI, op_vcvtss2si);
    add(t, ZYDIS_MNEMONIC_VCVTTSS2SI, op_vcvttss2si);
    add(t, ZYDIS_MNEMONIC_VCVTSD2SI, op_vcvtsd2si);
    add(t, ZYDIS_MNEMONIC_VCVTTSD2SI, op_vcvttsd2si);

    // Moves.
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_VMOVDQA, ZYDIS_MNEMONIC_VMOVAPS, ZYDIS_MNEMONIC_VMOVAPD,
                            ZYDIS_MNEMONIC_VMOVNTDQ, ZYDIS_MNEMONIC_VMOVNTPS,
                            ZYDIS_MNEMONIC_VMOVNTPD, ZYDIS_MNEMONIC_VMOVNTDQA})
        add(t, m, op_vmovdqa);
    for (ZydisMnemonic m : {ZYDIS_MNEMONIC_VMOVDQU, ZYDIS_MNEMONIC_VMOVUPS, ZYDIS_MNEMONIC_VMOVUPD,
                            ZYDIS_MNEMONIC_VLDDQU})
        add(t, m, op_vmovdqu);
    add(t, ZYDIS_MNEMONIC_VMOVD, op_vmovd_vmovq);
    add(t, ZYDIS_MNEMONIC_VMOVQ, op_vmovd_vmovq);

    // Scalar moves, blends, permutes, variable shifts, masks (cpu/simd/simd_avx.cpp).
    add(t, ZYDIS_MNEMONIC_VMOVSS, op_vmovss);
    add(t, ZYDIS_MNEMONIC_VMOVSD, op_vmovsd);
    add(t, ZYDIS_MNEMONIC_VBLENDPS, op_vblendps);
    add(t, ZYDIS_MNEMONIC_VBLENDPD, op_vblendpd);
    add(t, ZYDIS_MNEMONIC_VPBLENDD, op_vpblendd);
    add(t, ZYDIS_MNEMONIC_VBLENDVPS, op_vblendvps);
    add(t, ZYDIS_MNEMONIC_VBLENDVPD, op_vblendvpd);
    add(t, ZYDIS_MNEMONIC_VPBLENDVB, op_vpblendvb);
    add(t, ZYDIS_MNEMONIC_VPSLLVD, op_vpsllvd);
    add(t, ZYDIS_MNEMONIC_VPSLLVQ, op_vpsllvq);
    add(t, ZYDIS_MNEMONIC_VPSRLVD, op_vpsrlvd);
    add(t, ZYDIS_MNEMONIC_VPSRLVQ, op_vpsrlvq);
    add(t, ZYDIS_MNEMONIC_VPSRAVD, op_vpsravd);
    add(t, ZYDIS_MNEMONIC_VTESTPS, op_vtestps);
    add(t, ZYDIS_MNEMONIC_VTESTPD, op_vtestpd);
    add(t, ZYDIS_MNEMONIC_VMOVMSKPS, op_vmovmskps);
    add(t, ZYDIS_MNEMONIC_VMOVMSKPD, op_vmovmskpd);
    add(t, ZYDIS_MNEMONIC_VPINSRB, op_vpinsrb);
    add(t, ZYDIS_MNEMONIC_VPINSRW, op_vpinsrw);
    add(t, ZYDIS_MNEMONIC_VPINSRD, op_vpinsrd);
    add(t, ZYDIS_MNEMONIC_VPINSRQ, op_vpinsrq);
    add(t, ZYDIS_MNEMONIC_VEXTRACTPS, op_vextractps);
    add(t, ZYDIS_MNEMONIC_VLDMXCSR, op_vldmxcsr);
    add(t, ZYDIS_MNEMONIC_VSTMXCSR, op_vstmxcsr);
    add(t, ZYDIS_MNEMONIC_VSHUFPD, op_vshufpd);
    add(t, ZYDIS_MNEMONIC_VPERMILPS, op_vpermilps);
    add(t, ZYDIS_MNEMONIC_VPERMILPD, op_vpermilpd);
    add(t, ZYDIS_MNEMONIC_VMOVLPS, op_vmovlps);
    add(t, ZYDIS_MNEMONIC_VMOVLPD, op_vmovlps);
    add(t, ZYDIS_MNEMONIC_VMOVHPS, op_vmovhps);
    add(t, ZYDIS_MNEMONIC_VMOVHPD, op_vmovhps);
    add(t, ZYDIS_MNEMONIC_VINSERTPS, op_vinsertps);
    add(t, ZYDIS_MNEMONIC_VMASKMOVPS, op_vmaskmovps);
    add(t, ZYDIS_MNEMONIC_VMASKMOVPD, op_vmaskmovpd);
    add(t, ZYDIS_MNEMONIC_VPMASKMOVD, op_vpmaskmov);
    add(t, ZYDIS_MNEMONIC_VPMASKMOVQ, op_vpmaskmov);
    add(t, ZYDIS_MNEMONIC_VMASKMOVDQU, op_vmaskmovdqu);
    add(t, ZYDIS_MNEMONIC_VMPSADBW, op_vmpsadbw);

    // AVX2 gathers.
    add(t, ZYDIS_MNEMONIC_VGATHERDPS, op_vgatherd_dword);
    add(t, ZYDIS_MNEMONIC_VPGATHERDD, op_vgatherd_dword);
    add(t, ZYDIS_MNEMONIC_VGATHERDPD, op_vgatherd_qword);
    add(t, ZYDIS_MNEMONIC_VPGATHERDQ, op_vgatherd_qword);
    add(t, ZYDIS_MNEMONIC_VGATHERQPS, op_vgatherq_dword);
    add(t, ZYDIS_MNEMONIC_VPGATHERQD, op_vgatherq_dword);
    add(t, ZYDIS_MNEMONIC_VGATHERQPD, op_vgatherq_qword);
    add(t, ZYDIS_MNEMONIC_VPGATHERQQ, op_vgatherq_qword);

    // FMA3 (cpu/simd/simd_fma.cpp).
    add(t, ZYDIS_MNEMONIC_VFMADD132PS, op_vfmadd132ps);
    add(t, ZYDIS_MNEMONIC_VFMADD132PD, op_vfmadd132pd);
    add(t, ZYDIS_MNEMONIC_VFMADD132SS, op_vfmadd132ss);
    add(t, ZYDIS_MNEMONIC_VFMADD132SD, op_vfmadd132sd);
    add(t, ZYDIS_MNEMONIC_VFMADD213PS, op_vfmadd213ps);
    add(t, ZYDIS_MNEMONIC_VFMADD213PD, op_vfmadd213pd);
    add(t, ZYDIS_MNEMONIC_VFMADD213SS, op_vfmadd213ss);
    add(t, ZYDIS_MNEMONIC_VFMADD213SD, op_vfmadd213sd);
    add(t, ZYDIS_MNEMONIC_VFMADD231PS, op_vfmadd231ps);
    add(t, ZYDIS_MNEMONIC_VFMADD231PD, op_vfmadd231pd);
    add(t, ZYDIS_MNEMONIC_VFMADD231SS, op_vfmadd231ss);
    add(t, ZYDIS_MNEMONIC_VFMADD231SD, op_vfmadd231sd);
    add(t, ZYDIS_MNEMONIC_VFMSUB132PS, op_vfmsub132ps);
    add(t, ZYDIS_MNEMONIC_VFMSUB132PD, op_vfmsub132pd);
    add(t, ZYDIS_MNEMONIC_VFMSUB132SS, op_vfmsub132ss);
    add(t, ZYDIS_MNEMONIC_VFMSUB132SD, op_vfmsub132sd);
    add(t, ZYDIS_MNEMONIC_VFMSUB213PS, op_vfmsub213ps);
    add(t, ZYDIS_MNEMONIC_VFMSUB213PD, op_vfmsub213pd);
    add(t, ZYDIS_MNEMONIC_VFMSUB213SS, op_vfmsub213ss);
    add(t, ZYDIS_MNEMONIC_VFMSUB213SD, op_vfmsub213sd);
    add(t, ZYDIS_MNEMONIC_VFMSUB231PS, op_vfmsub231ps);
    add(t, ZYDIS_MNEMONIC_VFMSUB231PD, op_vfmsub231pd);
    add(t, ZYDIS_MNEMONIC_VFMSUB231SS, op_vfmsub231ss);
    add(t, ZYDIS_MNEMONIC_VFMSUB231SD, op_vfmsub231sd);
    add(t, ZYDIS_MNEMONIC_VFNMADD132PS, op_vfnmadd132ps);
    add(t, ZYDIS_MNEMONIC_VFNMADD132PD, op_vfnmadd132pd);
    add(t, ZYDIS_MNEMONIC_VFNMADD132SS, op_vfnmadd132ss);
    add(t, ZYDIS_MNEMONIC_VFNMADD132SD, op_vfnmadd132sd);
    add(t, ZYDIS_MNEMONIC_VFNMADD213PS, op_vfnmadd213ps);
    add(t, ZYDIS_MNEMONIC_VFNMADD213PD, op_vfnmadd213pd);
    add(t, ZYDIS_MNEMONIC_VFNMADD213SS, op_vfnmadd213ss);
    add(t, ZYDIS_MNEMONIC_VFNMADD213SD, op_vfnmadd213sd);
    add(t, ZYDIS_MNEMONIC_VFNMADD231PS, op_vfnmadd231ps);
    add(t, ZYDIS_MNEMONIC_VFNMADD231PD, op_vfnmadd231pd);
    add(t, ZYDIS_MNEMONIC_VFNMADD231SS, op_vfnmadd231ss);
    add(t, ZYDIS_MNEMONIC_VFNMADD231SD, op_vfnmadd231sd);
    add(t, ZYDIS_MNEMONIC_VFNMSUB132PS, op_vfnmsub132ps);
    add(t, ZYDIS_MNEMONIC_VFNMSUB132PD, op_vfnmsub132pd);
    add(t, ZYDIS_MNEMONIC_VFNMSUB132SS, op_vfnmsub132ss);
    add(t, ZYDIS_MNEMONIC_VFNMSUB132SD, op_vfnmsub132sd);
    add(t, ZYDIS_MNEMONIC_VFNMSUB213PS, op_vfnmsub213ps);
    add(t, ZYDIS_MNEMONIC_VFNMSUB213PD, op_vfnmsub213pd);
    add(t, ZYDIS_MNEMONIC_VFNMSUB213SS, op_vfnmsub213ss);
    add(t, ZYDIS_MNEMONIC_VFNMSUB213SD, op_vfnmsub213sd);
    add(t, ZYDIS_MNEMONIC_VFNMSUB231PS, op_vfnmsub231ps);
    add(t, ZYDIS_MNEMONIC_VFNMSUB231PD, op_vfnmsub231pd);
    add(t, ZYDIS_MNEMONIC_VFNMSUB231SS, op_vfnmsub231ss);
    add(t, ZYDIS_MNEMONIC_VFNMSUB231SD, op_vfnmsub231sd);
    add(t, ZYDIS_MNEMONIC_VFMADDSUB132PS, op_vfmaddsub132ps);
    add(t, ZYDIS_MNEMONIC_VFMADDSUB132PD, op_vfmaddsub132pd);
    add(t, ZYDIS_MNEMONIC_VFMADDSUB213PS, op_vfmaddsub213ps);
    add(t, ZYDIS_MNEMONIC_VFMADDSUB213PD, op_vfmaddsub213pd);
    add(t, ZYDIS_MNEMONIC_VFMADDSUB231PS, op_vfmaddsub231ps);
    add(t, ZYDIS_MNEMONIC_VFMADDSUB231PD, op_vfmaddsub231pd);
    add(t, ZYDIS_MNEMONIC_VFMSUBADD132PS, op_vfmsubadd132ps);
    add(t, ZYDIS_MNEMONIC_VFMSUBADD132PD, op_vfmsubadd132pd);
    add(t, ZYDIS_MNEMONIC_VFMSUBADD213PS, op_vfmsubadd213ps);
    add(t, ZYDIS_MNEMONIC_VFMSUBADD213PD, op_vfmsubadd213pd);
    add(t, ZYDIS_MNEMONIC_VFMSUBADD231PS, op_vfmsubadd231ps);
    add(t, ZYDIS_MNEMONIC_VFMSUBADD231PD, op_vfmsubadd231pd);

    // F16C (cpu/simd/simd_f16c.cpp).
    add(t, ZYDIS_MNEMONIC_VCVTPH2PS, op_vcvtph2ps);
    add(t, ZYDIS_MNEMONIC_VCVTPS2PH, op_vcvtps2ph);

    // VEX.128-only forms of two-operand SSE instructions.
    add(t, ZYDIS_MNEMONIC_VPEXTRB, op_vpextrb);
    add(t, ZYDIS_MNEMONIC_VPEXTRW, op_vpextrw);
    add(t, ZYDIS_MNEMONIC_VPEXTRD, op_vpextrd);
    add(t, ZYDIS_MNEMONIC_VPEXTRQ, op_vpextrq);
    add(t, ZYDIS_MNEMONIC_VPCMPESTRI, op_vpcmpestri);
    add(t, ZYDIS_MNEMONIC_VPCMPESTRM, op_vpcmpestrm);
    add(t, ZYDIS_MNEMONIC_VPCMPISTRI, op_vpcmpistri);
    add(t, ZYDIS_MNEMONIC_VPCMPISTRM, op_vpcmpistrm);

    // Whole-register and cross-lane forms (cpu/simd/simd_avx.cpp).
    add(t, ZYDIS_MNEMONIC_VPMOVMSKB, op_vpmovmskb);
    add(t, ZYDIS_MNEMONIC_VPTEST, op_vptest);
    add(t, ZYDIS_MNEMONIC_VZEROUPPER, op_vzeroupper);
    add(t, ZYDIS_MNEMONIC_VZEROALL, op_vzeroall);
    add(t, ZYDIS_MNEMONIC_VPBROADCASTB, op_vpbroadcastb);
    add(t, ZYDIS_MNEMONIC_VPBROADCASTW, op_vpbroadcastw);
    add(t, ZYDIS_MNEMONIC_VPBROADCASTD, op_vpbroadcastd);
    add(t, ZYDIS_MNEMONIC_VBROADCASTSS, op_vpbroadcastd);
    add(t, ZYDIS_MNEMONIC_VPBROADCASTQ, op_vpbroadcastq);
    add(t, ZYDIS_MNEMONIC_VBROADCASTSD, op_vpbroadcastq);
    add(t, ZYDIS_MNEMONIC_VBROADCASTI128, op_vbroadcast128);
    add(t, ZYDIS_MNEMONIC_VBROADCASTF128, op_vbroadcast128);
    add(t, ZYDIS_MNEMONIC_VINSERTI128, op_vinsert128);
    add(t, ZYDIS_MNEMONIC_VINSERTF128, op_vinsert128);
    add(t, ZYDIS_MNEMONIC_VEXTRACTI128, op_vextract128);
    add(t, ZYDIS_MNEMONIC_VEXTRACTF128, op_vextract128);
    add(t, ZYDIS_MNEMONIC_VPERM2I128, op_vperm2x128);
    add(t, ZYDIS_MNEMONIC_VPERM2F128, op_vperm2x128);
    add(t, ZYDIS_MNEMONIC_VPERMQ, op_vpermq);
    add(t, ZYDIS_MNEMONIC_VPERMPD, op_vpermq);
    add(t, ZYDIS_MNEMONIC_VPERMD, op_vpermd);
    add(t, ZYDIS_MNEMONIC_VPERMPS, op_vpermd);
    add(t, ZYDIS_MNEMONIC_VPMOVSXBW, op_vpmovsxbw);
    add(t, ZYDIS_MNEMONIC_VPMOVSXBD, op_vpmovsxbd);
    add(t, ZYDIS_MNEMONIC_VPMOVSXBQ, op_vpmovsxbq);
    add(t, ZYDIS_MNEMONIC_VPMOVSXWD, op_vpmovsxwd);
    add(t, ZYDIS_MNEMONIC_VPMOVSXWQ, op_vpmovsxwq);
    add(t, ZYDIS_MNEMONIC_VPMOVSXDQ, op_vpmovsxdq);
    add(t, ZYDIS_MNEMONIC_VPMOVZXBW, op_vpmovzxbw);
    add(t, ZYDIS_MNEMONIC_VPMOVZXBD, op_vpmovzxbd);
    add(t, ZYDIS_MNEMONIC_VPMOVZXBQ, op_vpmovzxbq);
    add(t, ZYDIS_MNEMONIC_VPMOVZXWD, op_vpmovzxwd);
    add(t, ZYDIS_MNEMONIC_VPMOVZXWQ, op_vpmovzxwq);
    add(t, ZYDIS_MNEMONIC_VPMOVZXDQ, op_vpmovzxdq);
}
