// VEX-encoded (AVX/AVX2) instructions that are more than a lane-wise 128-bit
// operation: whole-register moves, broadcasts, cross-lane permutes, inserts
// and extracts, VPMOVMSKB, VPTEST, VZEROUPPER/VZEROALL, and the VEX.128
// forms of two-operand SSE instructions (SDM Vol 2; Vol 1 14). The
// lane-wise ones run through simd::binary (cpu/simd/simd.h).
#include "cpu/simd/simd.h"

#include <algorithm>
#include <optional>
#include <type_traits>

using namespace simd;

namespace simd {

namespace {

Vec ymm_high(const Cpu& cpu, unsigned r)
{
    return Vec{{cpu.s.fpu.ymm_high[r][0], cpu.s.fpu.ymm_high[r][1]}};
}

void set_ymm_high(Cpu& cpu, unsigned r, const Vec& v)
{
    cpu.s.fpu.ymm_high[r] = {v.q[0], v.q[1]};
}

// The linear address of a 16- or 32-byte memory operand after the segment
// check; `aligned` asks for alignment to the operand's size (#GP(0)), which
// comes first: before a non-canonical stack address's #SS, as on the host.
bool vector_linear(Cpu& cpu, const Insn& insn, unsigned size, bool write, bool aligned, u64& linear)
{
    const u64 ea = cpu.effective_address(insn);
    if (aligned && ((cpu.s.seg[insn.mem.seg].base + ea) & (size - 1)))
        return cpu.raise_gp(0);
    return cpu.segment_linear(insn.mem.seg, ea, size, write, linear);
}

u64 wrap(const Cpu& cpu, u64 linear)
{
    return linear & cpu.linear_wrap();
}

bool read_vector(Cpu& cpu, const Insn& insn, unsigned size, bool aligned, Vec lanes[2])
{
    u64 linear;
    CPU_TRY(vector_linear(cpu, insn, size, false, aligned, linear));
    u64 q[4] = {0, 0, 0, 0};
    for (unsigned i = 0; i < size / 8; ++i)
        CPU_TRY(cpu.read_linear(wrap(cpu, linear + 8 * i), 8, q[i]));
    lanes[0] = Vec{{q[0], q[1]}};
    lanes[1] = Vec{{q[2], q[3]}};
    return true;
}

bool write_vector(Cpu& cpu, const Insn& insn, unsigned size, bool aligned, const Vec lanes[2])
{
    u64 linear;
    CPU_TRY(vector_linear(cpu, insn, size, true, aligned, linear));
    const u64 last = wrap(cpu, linear + size - 1);
    if ((linear >> 12) != (last >> 12)) {
        // Every page must be writable before any byte is stored.
        SoftTlb::Entry* e;
        const bool user = cpu.access_is_user(false);
        CPU_TRY(cpu.translate(linear, Access::Write, user, e));
        CPU_TRY(cpu.translate(last & PAGE_MASK, Access::Write, user, e));
    }
    const u64 q[4] = {lanes[0].q[0], lanes[0].q[1], lanes[1].q[0], lanes[1].q[1]};
    for (unsigned i = 0; i < size / 8; ++i)
        CPU_TRY(cpu.write_linear(wrap(cpu, linear + 8 * i), 8, q[i]));
    return true;
}

} // namespace

bool vex_read(Cpu& cpu, const Insn& insn, unsigned i, Vec lanes[2])
{
    const Operand& op = insn.op[i];
    switch (op.kind) {
    case OpKind::Ymm:
        lanes[0] = xmm(cpu, op.reg);
        lanes[1] = ymm_high(cpu, op.reg);
        return true;
    case OpKind::Mem:
        if (op.size == 32 || op.size == 16) {
            CPU_TRY(read_vector(cpu, insn, op.size, false, lanes));
            if (op.size == 16)
                lanes[1] = lanes[0];
            return true;
        }
        break;
    default:
        break;
    }
    CPU_TRY(read_src_other(cpu, insn, i, lanes[0], Align::Any));
    lanes[1] = lanes[0];
    return true;
}

bool vex_write(Cpu& cpu, const Insn& insn, const Vec lanes[2])
{
    const Operand& op = insn.op[0];
    switch (op.kind) {
    case OpKind::Ymm:
        set_xmm(cpu, op.reg, lanes[0]);
        set_ymm_high(cpu, op.reg, lanes[1]);
        return true;
    case OpKind::Xmm:
        set_xmm(cpu, op.reg, lanes[0]);
        set_ymm_high(cpu, op.reg, Vec{});
        return true;
    case OpKind::Mem:
        if (op.size == 32 || op.size == 16)
            return write_vector(cpu, insn, op.size, false, lanes);
        break;
    default:
        break;
    }
    return write_dst_other(cpu, insn, 0, lanes[0], Align::Any);
}

} // namespace simd

namespace {

// VMOVDQA/VMOVAPS/VMOVAPD/VMOVNT*: the memory operand must be aligned to its
// size; VMOVDQU/VMOVUPS/VMOVUPD/VLDDQU: any address.
template <bool Aligned>
bool vmove(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec v[2];
    if (insn.op[1].kind == OpKind::Mem)
        CPU_TRY(read_vector(cpu, insn, insn.op[1].size, Aligned, v));
    else
        CPU_TRY(vex_read(cpu, insn, 1, v));
    if (insn.op[0].kind == OpKind::Mem)
        return write_vector(cpu, insn, insn.op[0].size, Aligned, v);
    return vex_write(cpu, insn, v);
}

// The VEX.128 form of a two-operand SSE instruction with the legacy operand
// layout: the legacy handler, then bits 255:128 of the XMM register it wrote
// cleared (operand 0, or XMM0 for VPCMPxSTRM).
enum class Writes : u8 { Operand0, Xmm0, Gpr };

template <Handler Legacy, Writes W = Writes::Operand0>
bool vex128(Cpu& cpu, const Insn& insn)
{
    if (is_vex256(insn) || insn.op[1].kind == OpKind::Ymm)
        return cpu.raise_ud();
    CPU_TRY(Legacy(cpu, insn));
    if (W == Writes::Operand0 && insn.op[0].kind == OpKind::Xmm)
        set_ymm_high(cpu, insn.op[0].reg, Vec{});
    if (W == Writes::Xmm0)
        set_ymm_high(cpu, 0, Vec{});
    return true;
}

template <class T>
bool broadcast(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec s[2];
    CPU_TRY(vex_read(cpu, insn, 1, s));
    Vec r;
    for (unsigned i = 0; i < 16 / sizeof(T); ++i)
        r.set<T>(i, s[0].get<T>(0));
    const Vec out[2] = {r, r};
    return vex_write(cpu, insn, out);
}

// VPMOVSX/VPMOVZX with a YMM destination: the low elements of the source,
// widened, fill both lanes (the VEX.128 form is the legacy handler's).
template <class From, class To>
bool extend256(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec s[2];
    CPU_TRY(vex_read(cpu, insn, 1, s));
    Vec r[2];
    constexpr unsigned per_lane = 16 / sizeof(To);
    for (unsigned i = 0; i < 2 * per_lane; ++i)
        r[i / per_lane].set<To>(i % per_lane,
                                static_cast<To>(static_cast<From>(s[0].get<From>(i))));
    return vex_write(cpu, insn, r);
}

u8 imm8(const Insn& insn) { return static_cast<u8>(insn.imm); }

} // namespace

HANDLER(op_vmovdqa) { return vmove<true>(cpu, insn); }
HANDLER(op_vmovdqu) { return vmove<false>(cpu, insn); }

HANDLER(op_vmovd_vmovq) { return vex128<op_movd_movq>(cpu, insn); }
HANDLER(op_vpextrb) { return vex128<op_pextrb>(cpu, insn); }
HANDLER(op_vpextrw) { return vex128<op_pextrw>(cpu, insn); }
HANDLER(op_vpextrd) { return vex128<op_pextrd>(cpu, insn); }
HANDLER(op_vpextrq) { return vex128<op_pextrq>(cpu, insn); }
HANDLER(op_vpcmpestri) { return vex128<op_pcmpestri, Writes::Gpr>(cpu, insn); }
HANDLER(op_vpcmpestrm) { return vex128<op_pcmpestrm, Writes::Xmm0>(cpu, insn); }
HANDLER(op_vpcmpistri) { return vex128<op_pcmpistri, Writes::Gpr>(cpu, insn); }
HANDLER(op_vpcmpistrm) { return vex128<op_pcmpistrm, Writes::Xmm0>(cpu, insn); }

HANDLER(op_vcomiss) { return vex128<op_comiss, Writes::Gpr>(cpu, insn); }
HANDLER(op_vucomiss) { return vex128<op_ucomiss, Writes::Gpr>(cpu, insn); }
HANDLER(op_vcomisd) { return vex128<op_comisd, Writes::Gpr>(cpu, insn); }
HANDLER(op_vucomisd) { return vex128<op_ucomisd, Writes::Gpr>(cpu, insn); }
HANDLER(op_vcvtss2si) { return vex128<op_cvtss2si, Writes::Gpr>(cpu, insn); }
HANDLER(op_vcvttss2si) { return vex128<op_cvttss2si, Writes::Gpr>(cpu, insn); }
HANDLER(op_vcvtsd2si) { return vex128<op_cvtsd2si, Writes::Gpr>(cpu, insn); }
HANDLER(op_vcvttsd2si) { return vex128<op_cvttsd2si, Writes::Gpr>(cpu, insn); }

HANDLER(op_vpmovmskb)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec s[2];
    CPU_TRY(vex_read(cpu, insn, 1, s));
    const unsigned bytes = insn.op[1].kind == OpKind::Ymm ? 32 : 16;
    u64 mask = 0;
    for (unsigned i = 0; i < bytes; ++i)
        mask |= static_cast<u64>(s[i / 16].byte(i % 16) >> 7) << i;
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, mask);
    return true;
}

// VPTEST: ZF when dst AND src is zero, CF when src AND NOT dst is zero, over
// all 128 or 256 bits; OF, SF, AF, PF cleared.
HANDLER(op_vptest)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec d[2], s[2];
    CPU_TRY(vex_read(cpu, insn, 0, d));
    CPU_TRY(vex_read(cpu, insn, 1, s));
    const unsigned lanes = is_vex256(insn) ? 2 : 1;
    u64 and_bits = 0, andn_bits = 0;
    for (unsigned l = 0; l < lanes; ++l)
        for (unsigned q = 0; q < 2; ++q) {
            and_bits |= d[l].q[q] & s[l].q[q];
            andn_bits |= ~d[l].q[q] & s[l].q[q];
        }
    cpu.set_rflags_arith((and_bits == 0 ? rf::ZF : 0) | (andn_bits == 0 ? rf::CF : 0));
    return true;
}

// VZEROUPPER clears bits 255:128 of every YMM register, VZEROALL all of them
// (registers 8-15 only in 64-bit mode).
HANDLER(op_vzeroupper)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    const unsigned count = cpu.s.in_64bit_code() ? 16 : 8;
    for (unsigned r = 0; r < count; ++r)
        set_ymm_high(cpu, r, Vec{});
    return true;
}

HANDLER(op_vzeroall)
{
    CPU_TRY(op_vzeroupper(cpu, insn));
    const unsigned count = cpu.s.in_64bit_code() ? 16 : 8;
    for (unsigned r = 0; r < count; ++r)
        set_xmm(cpu, r, Vec{});
    return true;
}

HANDLER(op_vpbroadcastb) { return broadcast<u8>(cpu, insn); }
HANDLER(op_vpbroadcastw) { return broadcast<u16>(cpu, insn); }
HANDLER(op_vpbroadcastd) { return broadcast<u32>(cpu, insn); }
HANDLER(op_vpbroadcastq) { return broadcast<u64>(cpu, insn); }

// VBROADCASTI128/VBROADCASTF128: an m128 into both lanes.
HANDLER(op_vbroadcast128)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec s[2];
    CPU_TRY(vex_read(cpu, insn, 1, s));
    const Vec out[2] = {s[0], s[0]};
    return vex_write(cpu, insn, out);
}

// VINSERTI128/VINSERTF128 ymm1, ymm2, xmm3/m128, imm8.
HANDLER(op_vinsert128)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec d[2], s[2];
    CPU_TRY(vex_read(cpu, insn, 1, d));
    CPU_TRY(vex_read(cpu, insn, 2, s));
    d[imm8(insn) & 1] = s[0];
    return vex_write(cpu, insn, d);
}

// VEXTRACTI128/VEXTRACTF128 xmm1/m128, ymm2, imm8.
HANDLER(op_vextract128)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec s[2];
    CPU_TRY(vex_read(cpu, insn, 1, s));
    const Vec out[2] = {s[imm8(insn) & 1], Vec{}};
    return vex_write(cpu, insn, out);
}

// VPERM2I128/VPERM2F128 ymm1, ymm2, ymm3/m256, imm8: each lane picks one of
// the four source lanes (imm[1:0], imm[5:4]) or zero (imm[3], imm[7]).
HANDLER(op_vperm2x128)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec a[2], b[2];
    CPU_TRY(vex_read(cpu, insn, 1, a));
    CPU_TRY(vex_read(cpu, insn, 2, b));
    const Vec all[4] = {a[0], a[1], b[0], b[1]};
    const u8 imm = imm8(insn);
    const Vec out[2] = {(imm & 0x08) ? Vec{} : all[imm & 3],
                        (imm & 0x80) ? Vec{} : all[(imm >> 4) & 3]};
    return vex_write(cpu, insn, out);
}

// VPERMQ/VPERMPD ymm1, ymm2/m256, imm8: qword i = source qword imm[2i+1:2i].
HANDLER(op_vpermq)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    if (!is_vex256(insn))
        return cpu.raise_ud();
    Vec s[2];
    CPU_TRY(vex_read(cpu, insn, 1, s));
    const u8 imm = imm8(insn);
    Vec out[2];
    for (unsigned i = 0; i < 4; ++i) {
        const unsigned k = (imm >> (2 * i)) & 3;
        out[i / 2].q[i % 2] = s[k / 2].q[k % 2];
    }
    return vex_write(cpu, insn, out);
}

// VPERMD/VPERMPS ymm1, ymm2 (indices), ymm3/m256: dword i = source dword idx[i] & 7.
HANDLER(op_vpermd)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    if (!is_vex256(insn))
        return cpu.raise_ud();
    Vec idx[2], s[2];
    CPU_TRY(vex_read(cpu, insn, 1, idx));
    CPU_TRY(vex_read(cpu, insn, 2, s));
    Vec out[2];
    for (unsigned i = 0; i < 8; ++i) {
        const unsigned k = idx[i / 4].get<u32>(i % 4) & 7;
        out[i / 4].set<u32>(i % 4, s[k / 4].get<u32>(k % 4));
    }
    return vex_write(cpu, insn, out);
}

#define VEX_EXTEND(name, legacy, from, to)                                                         \
    HANDLER(name)                                                                                  \
    {                                                                                              \
        return is_vex256(insn) ? extend256<from, to>(cpu, insn) : vex128<legacy>(cpu, insn);      \
    }
VEX_EXTEND(op_vpmovsxbw, op_pmovsxbw, i8, i16)
VEX_EXTEND(op_vpmovsxbd, op_pmovsxbd, i8, i32)
VEX_EXTEND(op_vpmovsxbq, op_pmovsxbq, i8, i64)
VEX_EXTEND(op_vpmovsxwd, op_pmovsxwd, i16, i32)
VEX_EXTEND(op_vpmovsxwq, op_pmovsxwq, i16, i64)
VEX_EXTEND(op_vpmovsxdq, op_pmovsxdq, i32, i64)
VEX_EXTEND(op_vpmovzxbw, op_pmovzxbw, u8, u16)
VEX_EXTEND(op_vpmovzxbd, op_pmovzxbd, u8, u32)
VEX_EXTEND(op_vpmovzxbq, op_pmovzxbq, u8, u64)
VEX_EXTEND(op_vpmovzxwd, op_pmovzxwd, u16, u32)
VEX_EXTEND(op_vpmovzxwq, op_pmovzxwq, u16, u64)
VEX_EXTEND(op_vpmovzxdq, op_pmovzxdq, u32, u64)
#undef VEX_EXTEND

// ---- Scalar moves, blends, permutes, variable shifts, masks ----

namespace {

// VMOVSS/VMOVSD: a load zero-extends the element to 255; a store writes the
// element; the three-register form takes the element from operand 2 and bits
// 127:T from operand 1.
template <class T>
bool vmove_scalar(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    if (insn.op[0].kind == OpKind::Mem) {
        const Vec v = xmm(cpu, insn.op[1].reg);
        return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), sizeof(T), v.get<T>(0));
    }
    Vec r;
    if (insn.op[1].kind == OpKind::Mem) {
        u64 value;
        CPU_TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), sizeof(T), value));
        r.set<T>(0, static_cast<T>(value));
    } else {
        r = xmm(cpu, insn.op[1].reg);
        r.set<T>(0, xmm(cpu, insn.op[2].reg).get<T>(0));
    }
    const Vec out[2] = {r, Vec{}};
    return vex_write(cpu, insn, out);
}

// VBLENDPS/VBLENDPD/VPBLENDD: imm8 bit i picks operand 2 for element i,
// counting across both lanes.
template <class T>
bool vblend_imm(Cpu& cpu, const Insn& insn)
{
    const unsigned imm = imm8(insn), per_lane = 16 / sizeof(T);
    return vex_lanes(cpu, insn, [imm, per_lane](const Vec& a, const Vec& b, unsigned lane) {
        Vec r = a;
        for (unsigned i = 0; i < per_lane; ++i)
            if ((imm >> (lane * per_lane + i)) & 1)
                r.set<T>(i, b.get<T>(i));
        return r;
    });
}

// VBLENDVPS/VBLENDVPD/VPBLENDVB: the top bit of each element of operand 3
// (VEX /is4) picks operand 2.
template <class T>
bool vblend_var(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec a[2], b[2], m[2];
    CPU_TRY(vex_read(cpu, insn, 1, a));
    CPU_TRY(vex_read(cpu, insn, 2, b));
    CPU_TRY(vex_read(cpu, insn, 3, m));
    const unsigned lanes = is_vex256(insn) ? 2 : 1;
    Vec r[2];
    for (unsigned l = 0; l < lanes; ++l) {
        r[l] = a[l];
        for (unsigned i = 0; i < 16 / sizeof(T); ++i)
            if (m[l].get<T>(i) >> (sizeof(T) * 8 - 1))
                r[l].set<T>(i, b[l].get<T>(i));
    }
    return vex_write(cpu, insn, r);
}

// VPSLLVD/Q, VPSRLVD/Q, VPSRAVD: each element shifted by the matching element
// of operand 2; a count past the width clears it (or fills it with the sign).
template <class T, int Kind> // 0 left, 1 logical right, 2 arithmetic right
bool vshift_var(Cpu& cpu, const Insn& insn)
{
    return vex_binary(cpu, insn, [](const Vec& d, const Vec& s) {
        constexpr unsigned bits = sizeof(T) * 8;
        Vec r;
        for (unsigned i = 0; i < 16 / sizeof(T); ++i) {
            const T v = d.get<T>(i), n = s.get<T>(i);
            T out;
            if constexpr (Kind == 2) {
                using S = std::make_signed_t<T>;
                out = static_cast<T>(static_cast<S>(v) >> (n >= bits ? bits - 1 : n));
            } else if (n >= bits) {
                out = 0;
            } else {
                out = static_cast<T>(Kind == 0 ? v << n : v >> n);
            }
            r.set<T>(i, out);
        }
        return r;
    });
}

// VTESTPS/VTESTPD: VPTEST on the sign bits of the elements only.
template <class T>
bool vtest(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec d[2], s[2];
    CPU_TRY(vex_read(cpu, insn, 0, d));
    CPU_TRY(vex_read(cpu, insn, 1, s));
    const unsigned lanes = is_vex256(insn) ? 2 : 1;
    bool any_and = false, any_andn = false;
    for (unsigned l = 0; l < lanes; ++l)
        for (unsigned i = 0; i < 16 / sizeof(T); ++i) {
            const bool a = d[l].get<T>(i) >> (sizeof(T) * 8 - 1),
                       b = s[l].get<T>(i) >> (sizeof(T) * 8 - 1);
            any_and |= a && b;
            any_andn |= !a && b;
        }
    cpu.set_rflags_arith((any_and ? 0 : rf::ZF) | (any_andn ? 0 : rf::CF));
    return true;
}

// VMOVMSKPS/VMOVMSKPD: the element sign bits of 128 or 256 bits into a GPR.
template <class T>
bool vmovmsk(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec s[2];
    CPU_TRY(vex_read(cpu, insn, 1, s));
    const unsigned lanes = insn.op[1].kind == OpKind::Ymm ? 2 : 1, per_lane = 16 / sizeof(T);
    u64 mask = 0;
    for (unsigned l = 0; l < lanes; ++l)
        for (unsigned i = 0; i < per_lane; ++i)
            mask |= static_cast<u64>(s[l].get<T>(i) >> (sizeof(T) * 8 - 1)) << (l * per_lane + i);
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, mask);
    return true;
}

// VPINSRB/W/D/Q xmm1, xmm2, r/m, imm8: operand 1 with one element replaced.
template <class T>
bool vinsert_element(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec d[2], s[2];
    CPU_TRY(vex_read(cpu, insn, 1, d));
    CPU_TRY(vex_read(cpu, insn, 2, s));
    d[0].set<T>(imm8(insn) & (16 / sizeof(T) - 1), s[0].get<T>(0));
    d[1] = Vec{};
    return vex_write(cpu, insn, d);
}

} // namespace

HANDLER(op_vmovss) { return vmove_scalar<u32>(cpu, insn); }
HANDLER(op_vmovsd) { return vmove_scalar<u64>(cpu, insn); }
HANDLER(op_vblendps) { return vblend_imm<u32>(cpu, insn); }
HANDLER(op_vblendpd) { return vblend_imm<u64>(cpu, insn); }
HANDLER(op_vpblendd) { return vblend_imm<u32>(cpu, insn); }
HANDLER(op_vblendvps) { return vblend_var<u32>(cpu, insn); }
HANDLER(op_vblendvpd) { return vblend_var<u64>(cpu, insn); }
HANDLER(op_vpblendvb) { return vblend_var<u8>(cpu, insn); }
HANDLER(op_vpsllvd) { return vshift_var<u32, 0>(cpu, insn); }
HANDLER(op_vpsllvq) { return vshift_var<u64, 0>(cpu, insn); }
HANDLER(op_vpsrlvd) { return vshift_var<u32, 1>(cpu, insn); }
HANDLER(op_vpsrlvq) { return vshift_var<u64, 1>(cpu, insn); }
HANDLER(op_vpsravd) { return vshift_var<u32, 2>(cpu, insn); }
HANDLER(op_vtestps) { return vtest<u32>(cpu, insn); }
HANDLER(op_vtestpd) { return vtest<u64>(cpu, insn); }
HANDLER(op_vmovmskps) { return vmovmsk<u32>(cpu, insn); }
HANDLER(op_vmovmskpd) { return vmovmsk<u64>(cpu, insn); }
HANDLER(op_vpinsrb) { return vinsert_element<u8>(cpu, insn); }
HANDLER(op_vpinsrw) { return vinsert_element<u16>(cpu, insn); }
HANDLER(op_vpinsrd) { return vinsert_element<u32>(cpu, insn); }
HANDLER(op_vpinsrq) { return vinsert_element<u64>(cpu, insn); }
HANDLER(op_vextractps) { return vex128<op_extractps, Writes::Gpr>(cpu, insn); }
HANDLER(op_vldmxcsr) { return vex128<op_ldmxcsr, Writes::Gpr>(cpu, insn); }
HANDLER(op_vstmxcsr) { return vex128<op_stmxcsr, Writes::Gpr>(cpu, insn); }

// VSHUFPD: imm8 bits 2l and 2l+1 pick the qwords of lane l.
HANDLER(op_vshufpd)
{
    const unsigned imm = imm8(insn);
    return vex_lanes(cpu, insn, [imm](const Vec& a, const Vec& b, unsigned lane) {
        const unsigned bits = imm >> (2 * lane);
        return Vec{{a.q[bits & 1], b.q[(bits >> 1) & 1]}};
    });
}

// VPERMILPS: each dword of a lane picks a dword of the same source lane, by
// imm8 2-bit fields (same for both lanes) or by bits 1:0 of a control dword.
HANDLER(op_vpermilps)
{
    const bool by_imm = insn.op[2].kind == OpKind::Imm;
    const unsigned imm = imm8(insn);
    if (by_imm)
        return vex_lanes(cpu, insn, [imm](const Vec&, const Vec& s, unsigned) {
            Vec r;
            for (unsigned i = 0; i < 4; ++i)
                r.set<u32>(i, s.get<u32>((imm >> (2 * i)) & 3));
            return r;
        });
    return vex_lanes(cpu, insn, [](const Vec& s, const Vec& c, unsigned) {
        Vec r;
        for (unsigned i = 0; i < 4; ++i)
            r.set<u32>(i, s.get<u32>(c.get<u32>(i) & 3));
        return r;
    });
}

// VPERMILPD: qword i of a lane picks by imm8 bit (2·lane + i) or by bit 1 of
// a control qword.
HANDLER(op_vpermilpd)
{
    const bool by_imm = insn.op[2].kind == OpKind::Imm;
    const unsigned imm = imm8(insn);
    if (by_imm)
        return vex_lanes(cpu, insn, [imm](const Vec&, const Vec& s, unsigned lane) {
            return Vec{{s.q[(imm >> (2 * lane)) & 1], s.q[(imm >> (2 * lane + 1)) & 1]}};
        });
    return vex_lanes(cpu, insn, [](const Vec& s, const Vec& c, unsigned) {
        return Vec{{s.q[(c.q[0] >> 1) & 1], s.q[(c.q[1] >> 1) & 1]}};
    });
}

// VMOVLPS/VMOVLPD (High = false) and VMOVHPS/VMOVHPD (High = true): a load
// merges the m64 into one half of operand 1; a store writes that half.
template <bool High>
static bool vmove_half(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    if (insn.op[0].kind == OpKind::Mem)
        return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), 8,
                             xmm(cpu, insn.op[1].reg).q[High ? 1 : 0]);
    return vex_binary(cpu, insn, [](Vec d, const Vec& s) {
        d.q[High ? 1 : 0] = s.q[0];
        return d;
    });
}

HANDLER(op_vmovlps) { return vmove_half<false>(cpu, insn); }
HANDLER(op_vmovhps) { return vmove_half<true>(cpu, insn); }

// VINSERTPS xmm1, xmm2, xmm3/m32, imm8: INSERTPS with operand 1 as the base.
HANDLER(op_vinsertps)
{
    const u8 imm = imm8(insn);
    const bool from_mem = insn.op[2].kind == OpKind::Mem;
    return vex_binary(cpu, insn, [imm, from_mem](Vec d, const Vec& s) {
        d.set<u32>((imm >> 4) & 3, s.get<u32>(from_mem ? 0 : imm >> 6));
        for (unsigned i = 0; i < 4; ++i)
            if ((imm >> i) & 1)
                d.set<u32>(i, 0);
        return d;
    });
}

// Checks that a masked store can write its selected elements before any is
// written. AMD checks each element as a store of its own: one that runs onto
// a page that faults reports that page's first byte, as any split store
// does (AMD host). Intel checks the selected elements as one store from the
// first selected byte to the last: when that store runs onto a second page
// that faults, CR2 is the last selected byte (Intel host: seed 1 case 72822
// `vpmaskmovd [r10-0x23], ymm12, ymm10`, element 7 at 0x10020FFF, CR2
// 0x10021002 where AMD's is 0x10021000; seed 6 case 172302 `vmaskmovpd`,
// element 0 at 0x10020FFE, CR2 0x10021005; Intel Xeon host, seed 105 case
// 1500 `vpmaskmovd`, elements 6 and 7 at 0x10020FFE and 0x10021002, CR2
// 0x10021005, and seed 106 case 59009, elements 0 and 2 at 0x10020FFE and
// 0x10021006, CR2 0x10021009). A store that lies on one page reports its
// first byte on both.
template <class Selected>
static bool probe_masked_store(Cpu& cpu, unsigned seg, u64 ea, u64 addr_mask, unsigned size,
                               const Selected& selected, unsigned count)
{
    if (cpu.amd()) {
        for (unsigned i = 0; i < count; ++i)
            if (selected(i))
                CPU_TRY(probe_write(cpu, seg, (ea + i * size) & addr_mask, size));
        return true;
    }
    std::optional<u64> first;
    u64 last = 0;
    for (unsigned i = 0; i < count; ++i) {
        if (!selected(i))
            continue;
        u64 linear;
        CPU_TRY(cpu.segment_linear(seg, (ea + i * size) & addr_mask, size, true, linear));
        if (cpu.s.cr0 & cr::CR0_AM)
            CPU_TRY(cpu.check_alignment(linear, size));
        if (!first)
            first = linear;
        last = (linear + size - 1) & cpu.linear_wrap();
    }
    if (!first)
        return true;
    const bool user = cpu.access_is_user(false);
    SoftTlb::Entry* e;
    CPU_TRY(cpu.translate(*first, Access::Write, user, e));
    if ((last >> 12) != (*first >> 12))
        CPU_TRY(cpu.translate(last, Access::Write, user, e));
    return true;
}

// VMASKMOVPS/PD and VPMASKMOVD/Q: elements whose mask (operand 1) has its
// top bit set are loaded (the rest zeroed) or stored (the rest untouched);
// masked-off elements never fault (SDM Vol 2B VMASKMOV).
template <class T>
static bool masked_move(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    const bool store = insn.op[0].kind == OpKind::Mem;
    const bool wide = insn.op[store ? 2 : 0].kind == OpKind::Ymm;
    const unsigned count = (wide ? 32 : 16) / sizeof(T), per_lane = 16 / sizeof(T);
    Vec mask[2], data[2];
    CPU_TRY(vex_read(cpu, insn, 1, mask));
    const u64 ea = cpu.effective_address(insn);
    const u64 addr_mask = insn.addrsize == 8 ? ~0ull : insn.addrsize == 4 ? 0xFFFFFFFFull : 0xFFFF;
    const auto selected = [&](unsigned i) {
        return (mask[i / per_lane].get<T>(i % per_lane) >> (sizeof(T) * 8 - 1)) != 0;
    };
    if (store) {
        CPU_TRY(vex_read(cpu, insn, 2, data));
        CPU_TRY(probe_masked_store(cpu, insn.mem.seg, ea, addr_mask, sizeof(T), selected, count));
        for (unsigned i = 0; i < count; ++i)
            if (selected(i))
                CPU_TRY(cpu.write_mem(insn.mem.seg, (ea + i * sizeof(T)) & addr_mask, sizeof(T),
                                  data[i / per_lane].get<T>(i % per_lane)));
        return true;
    }
    Vec out[2];
    for (unsigned i = 0; i < count; ++i) {
        if (!selected(i))
            continue;
        u64 v;
        CPU_TRY(cpu.read_mem(insn.mem.seg, (ea + i * sizeof(T)) & addr_mask, sizeof(T), v));
        out[i / per_lane].set<T>(i % per_lane, static_cast<T>(v));
    }
    return vex_write(cpu, insn, out);
}

HANDLER(op_vmaskmovps) { return masked_move<u32>(cpu, insn); }
HANDLER(op_vmaskmovpd) { return masked_move<u64>(cpu, insn); }
HANDLER(op_vpmaskmov)
{
    return (insn.prefixes & pfx::REX_W) ? masked_move<u64>(cpu, insn) : masked_move<u32>(cpu, insn);
}
HANDLER(op_vmaskmovdqu) { return vex128<op_maskmov, Writes::Gpr>(cpu, insn); }

// VMPSADBW: the 256-bit form takes imm8[2:0] for the low lane and imm8[5:3]
// for the high one.
HANDLER(op_vmpsadbw)
{
    const unsigned imm = imm8(insn);
    return vex_lanes(cpu, insn, [imm](const Vec& d, const Vec& s, unsigned lane) {
        return mpsadbw_lane(d, s, static_cast<u8>(imm >> (3 * lane)));
    });
}

// ---- AVX2 gathers ----

// The mask a gather leaves when element `first` faults, on Intel: the
// SDM's operation first sets each mask element to its top bit extended
// (all ones or zero) across the instruction's vector length, then clears
// each element as it completes; bits past the vector length are zeroed
// (an XMM mask's bits 255:128 under VEX.128). The vector length covers
// the elements a QPS/QD form does not use: VEX.128 `vgatherqps xmm13,
// [r10+xmm10*8], xmm11` normalizes all four dwords of XMM11, VEX.256
// `vpgatherqd xmm14, [rdi+ymm13], xmm1` all eight of YMM1 (Intel Xeon
// host, seed 101 cases 13892 and 36692). Seed 2 case 192525 `vgatherqpd
// xmm13, [r14+xmm2+0x32], xmm8`: XMM8 0x94eb06cae8dc85f3_0 →
// 0xffffffffffffffff_0, YMM8.hi → 0. AMD leaves the elements not yet
// done and the upper half as they were (AMD host).
template <class T>
static void normalize_gather_mask(Vec k[2], unsigned first, unsigned vector_elements)
{
    constexpr unsigned per_lane = 16 / sizeof(T);
    for (unsigned i = 0; i < 32 / sizeof(T); ++i) {
        const bool live = i >= first && i < vector_elements;
        const bool set = live && (k[i / per_lane].get<T>(i % per_lane) >> (sizeof(T) * 8 - 1));
        k[i / per_lane].set<T>(i % per_lane, set ? static_cast<T>(~T{0}) : T{0});
    }
}

// Clears the elements of T from `first` to the end of a 256-bit register.
template <class T>
static void clear_elements_from(Vec v[2], unsigned first)
{
    constexpr unsigned per_lane = 16 / sizeof(T);
    for (unsigned i = first; i < 32 / sizeof(T); ++i)
        v[i / per_lane].set<T>(i % per_lane, T{0});
}

// VGATHERDPS/DPD/QPS/QPD and VPGATHERDD/DQ/QD/QQ (SDM Vol 2C): element i of
// T is loaded from base + index[i] (a signed I of the VSIB register) · scale
// + disp when the top bit of mask element i is set. Each element's mask is
// cleared as it completes, so a fault leaves a restartable state; at the end
// the whole mask register is zero and the destination's unused upper part
// cleared. Destination, index and mask registers must differ (#UD).
template <class T, class I>
static bool gather(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    const MemRef& m = insn.mem;
    const unsigned dst = insn.op[0].reg, mask = insn.op[2].reg, index = m.vsib;
    if (m.vsib == NO_REG || dst == mask || dst == index || mask == index)
        return cpu.raise_ud();
    const unsigned dst_bytes = insn.op[0].kind == OpKind::Ymm ? 32 : 16;
    const unsigned count = std::min(m.vsib_bytes / unsigned{sizeof(I)}, dst_bytes / unsigned{sizeof(T)});
    // VEX.L: the wider of the destination and the index register.
    const unsigned vector_elements = std::max(dst_bytes, unsigned{m.vsib_bytes}) / unsigned{sizeof(T)};
    const u64 base = cpu.effective_address(insn); // base + disp (the VSIB index is not a GPR)
    const u64 addr_mask = insn.addrsize == 8 ? ~0ull : insn.addrsize == 4 ? 0xFFFFFFFFull : 0xFFFF;
    const auto lanes_of = [&cpu](unsigned r, Vec v[2]) {
        v[0] = xmm(cpu, r);
        v[1] = ymm_high(cpu, r);
    };
    Vec d[2], k[2], idx[2];
    lanes_of(dst, d);
    lanes_of(mask, k);
    lanes_of(index, idx);
    constexpr unsigned per_lane = 16 / sizeof(T), idx_per_lane = 16 / sizeof(I);
    for (unsigned i = 0; i < count; ++i) {
        const T mask_element = k[i / per_lane].get<T>(i % per_lane);
        // An element whose mask is off completes at once: its mask element
        // is cleared too (as on the host CPU), and stays so if a later one faults.
        k[i / per_lane].set<T>(i % per_lane, T{0});
        if (!(mask_element >> (sizeof(T) * 8 - 1)))
            continue;
        using S = std::make_signed_t<I>;
        const i64 offset = static_cast<S>(idx[i / idx_per_lane].get<I>(i % idx_per_lane));
        u64 value;
        if (!cpu.read_mem(m.seg, (base + static_cast<u64>(offset) * m.scale) & addr_mask,
                          sizeof(T), value)) {
            k[i / per_lane].set<T>(i % per_lane, mask_element); // not done
            if (cpu.intel())
                normalize_gather_mask<T>(k, i, vector_elements);
            set_xmm(cpu, mask, k[0]);
            set_ymm_high(cpu, mask, k[1]);
            return false;
        }
        d[i / per_lane].set<T>(i % per_lane, static_cast<T>(value));
        // Intel's first loaded element also clears the destination past
        // the vector length, so a later fault leaves it cleared (Intel host,
        // seed 101 case 143338 VEX.128 `vgatherdpd xmm6, ...`: YMM6.hi 0
        // after a #PF on element 1). An element-0 fault leaves it as it was
        // (case 13892), and so does one after a VEX.256 QPS/QD element, whose
        // XMM destination's bits 255:128 are inside the vector length until
        // the instruction completes (seed 22 case 143592 `vgatherqps xmm13,
        // [rbx+ymm2*4], xmm0`, #GP on element 1: YMM13.hi kept).
        if (cpu.intel())
            clear_elements_from<T>(d, vector_elements);
        set_xmm(cpu, dst, d[0]);
        set_ymm_high(cpu, dst, d[1]);
        set_xmm(cpu, mask, k[0]);
        set_ymm_high(cpu, mask, k[1]);
    }
    // Elements past `count` (and bits 255:128 of an XMM destination) are cleared.
    clear_elements_from<T>(d, count);
    set_xmm(cpu, dst, d[0]);
    set_ymm_high(cpu, dst, d[1]);
    set_xmm(cpu, mask, Vec{});
    set_ymm_high(cpu, mask, Vec{});
    return true;
}

HANDLER(op_vgatherd_dword) { return gather<u32, u32>(cpu, insn); }
HANDLER(op_vgatherd_qword) { return gather<u64, u32>(cpu, insn); }
HANDLER(op_vgatherq_dword) { return gather<u32, u64>(cpu, insn); }
HANDLER(op_vgatherq_qword) { return gather<u64, u64>(cpu, insn); }
