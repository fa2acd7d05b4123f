// Packed integer arithmetic on MMX and XMM registers: MMX, SSE2, SSSE3,
// SSE4.1 and SSE4.2 (PCMPGTQ), plus the bitwise logic that the float forms
// (ANDPS, XORPD, ...) share (SDM Vol 2). One template per shape; the
// register width (8 or 16 bytes) comes from the destination operand.
#include "cpu/simd/simd.h"

#include <limits>
#include <type_traits>

using namespace simd;

namespace {

template <class T>
T saturate(i64 v)
{
    constexpr i64 lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
    return static_cast<T>(v < lo ? lo : v > hi ? hi : v);
}

// r[i] = f(dst[i], src[i]) over lanes of T.
template <class T, class F>
bool lanewise(Cpu& cpu, const Insn& insn, F f)
{
    const unsigned n = width(insn) / sizeof(T);
    return binary(cpu, insn, [n, f](const Vec& d, const Vec& s) {
        Vec r;
        for (unsigned i = 0; i < n; ++i)
            r.set<T>(i, static_cast<T>(f(d.get<T>(i), s.get<T>(i))));
        return r;
    });
}

// r[i] = f(src[i]) over lanes of T (PABSx).
template <class T, class F>
bool unary_lanes(Cpu& cpu, const Insn& insn, F f)
{
    const unsigned n = width(insn) / sizeof(T);
    return binary(cpu, insn, [n, f](const Vec&, const Vec& s) {
        Vec r;
        for (unsigned i = 0; i < n; ++i)
            r.set<T>(i, static_cast<T>(f(s.get<T>(i))));
        return r;
    });
}

// PHADDx/PHSUBx: pairs of the destination, then pairs of the source.
template <class T, class F>
bool horizontal(Cpu& cpu, const Insn& insn, F f)
{
    const unsigned n = width(insn) / sizeof(T);
    return binary(cpu, insn, [n, f](const Vec& d, const Vec& s) {
        Vec r;
        for (unsigned i = 0; i < n / 2; ++i) {
            r.set<T>(i, static_cast<T>(f(d.get<T>(2 * i), d.get<T>(2 * i + 1))));
            r.set<T>(n / 2 + i, static_cast<T>(f(s.get<T>(2 * i), s.get<T>(2 * i + 1))));
        }
        return r;
    });
}

// PACKxx: the destination's lanes of From narrowed with saturation, then the source's.
template <class From, class To>
bool pack(Cpu& cpu, const Insn& insn)
{
    const unsigned n = width(insn) / sizeof(From);
    return binary(cpu, insn, [n](const Vec& d, const Vec& s) {
        Vec r;
        for (unsigned i = 0; i < n; ++i) {
            r.set<To>(i, saturate<To>(d.get<From>(i)));
            r.set<To>(n + i, saturate<To>(s.get<From>(i)));
        }
        return r;
    });
}

enum class ShiftKind : u8 { Left, Logical, Arithmetic };

// PSLLx/PSRLx/PSRAx: the count is an immediate or the low 64 bits of the
// source; a count past the lane width clears the lane (or fills it with the sign).
template <class T, ShiftKind K>
bool shift(Cpu& cpu, const Insn& insn)
{
    constexpr unsigned bits = sizeof(T) * 8;
    const unsigned n = width(insn) / sizeof(T);
    return binary(cpu, insn, [n](const Vec& d, const Vec& s) {
        const u64 count = s.q[0];
        Vec r;
        for (unsigned i = 0; i < n; ++i) {
            const T v = d.get<T>(i);
            T out;
            if constexpr (K == ShiftKind::Arithmetic) {
                using S = std::make_signed_t<T>;
                out = static_cast<T>(static_cast<S>(v) >> (count >= bits ? bits - 1 : count));
            } else if (count >= bits) {
                out = 0;
            } else {
                out = static_cast<T>(K == ShiftKind::Left ? v << count : v >> count);
            }
            r.set<T>(i, out);
        }
        return r;
    });
}

template <class T>
T sign_op(T a, T b)
{
    using S = std::make_signed_t<T>;
    const S sb = static_cast<S>(b);
    return sb < 0 ? static_cast<T>(0 - a) : sb == 0 ? T{0} : a;
}

// Lane operations; the lane templates narrow the results back to the lane type.
constexpr auto add = [](auto a, auto b) { return a + b; };
constexpr auto sub = [](auto a, auto b) { return a - b; };
constexpr auto add_saturate = []<class T>(T a, T b) { return saturate<T>(i64{a} + b); };
constexpr auto sub_saturate = []<class T>(T a, T b) { return saturate<T>(i64{a} - b); };
constexpr auto minimum = [](auto a, auto b) { return a < b ? a : b; };
constexpr auto maximum = [](auto a, auto b) { return a > b ? a : b; };
constexpr auto average = [](auto a, auto b) { return (a + b + 1) >> 1; };
constexpr auto equal = []<class T>(T a, T b) { return a == b ? static_cast<T>(~T{0}) : T{0}; };
constexpr auto greater = []<class T>(T a, T b) { return a > b ? static_cast<T>(-1) : T{0}; };
constexpr auto absolute = []<class T>(T a) {
    using U = std::make_unsigned_t<T>; // |INT_MIN| wraps to itself, as the hardware gives
    return static_cast<T>(a < 0 ? static_cast<U>(U{0} - static_cast<U>(a)) : static_cast<U>(a));
};

} // namespace

// ---- Add and subtract ----

HANDLER(op_paddb) { return lanewise<u8>(cpu, insn, add); }
HANDLER(op_paddw) { return lanewise<u16>(cpu, insn, add); }
HANDLER(op_paddd) { return lanewise<u32>(cpu, insn, add); }
HANDLER(op_paddq) { return lanewise<u64>(cpu, insn, add); }
HANDLER(op_psubb) { return lanewise<u8>(cpu, insn, sub); }
HANDLER(op_psubw) { return lanewise<u16>(cpu, insn, sub); }
HANDLER(op_psubd) { return lanewise<u32>(cpu, insn, sub); }
HANDLER(op_psubq) { return lanewise<u64>(cpu, insn, sub); }
HANDLER(op_paddsb) { return lanewise<i8>(cpu, insn, add_saturate); }
HANDLER(op_paddsw) { return lanewise<i16>(cpu, insn, add_saturate); }
HANDLER(op_paddusb) { return lanewise<u8>(cpu, insn, add_saturate); }
HANDLER(op_paddusw) { return lanewise<u16>(cpu, insn, add_saturate); }
HANDLER(op_psubsb) { return lanewise<i8>(cpu, insn, sub_saturate); }
HANDLER(op_psubsw) { return lanewise<i16>(cpu, insn, sub_saturate); }
HANDLER(op_psubusb) { return lanewise<u8>(cpu, insn, sub_saturate); }
HANDLER(op_psubusw) { return lanewise<u16>(cpu, insn, sub_saturate); }

// ---- Multiply ----

HANDLER(op_pmullw) { return lanewise<i16>(cpu, insn, [](i16 a, i16 b) { return a * b; }); }
HANDLER(op_pmulhw) { return lanewise<i16>(cpu, insn, [](i16 a, i16 b) { return (a * b) >> 16; }); }
HANDLER(op_pmulld) { return lanewise<u32>(cpu, insn, [](u32 a, u32 b) { return a * b; }); }

HANDLER(op_pmulhuw)
{
    return lanewise<u16>(cpu, insn, [](u16 a, u16 b) { return (u32{a} * b) >> 16; });
}

HANDLER(op_pmulhrsw)
{
    return lanewise<i16>(cpu, insn, [](i16 a, i16 b) { return (((a * b) >> 14) + 1) >> 1; });
}

// PMULUDQ/PMULDQ: the low doubleword of each quadword lane, full 64-bit product.
HANDLER(op_pmuludq)
{
    return lanewise<u64>(cpu, insn, [](u64 a, u64 b) { return u64{u32(a)} * u32(b); });
}

HANDLER(op_pmuldq)
{
    return lanewise<u64>(cpu, insn, [](u64 a, u64 b) {
        return static_cast<u64>(i64{static_cast<i32>(a)} * static_cast<i32>(b));
    });
}

HANDLER(op_pmaddwd)
{
    const unsigned n = width(insn) / 4;
    return binary(cpu, insn, [n](const Vec& d, const Vec& s) {
        Vec r;
        for (unsigned i = 0; i < n; ++i) {
            const i32 lo = i32{d.get<i16>(2 * i)} * s.get<i16>(2 * i);
            const i32 hi = i32{d.get<i16>(2 * i + 1)} * s.get<i16>(2 * i + 1);
            // 0x8000 * 0x8000 twice wraps to 0x80000000, as the hardware does.
            r.set<u32>(i, static_cast<u32>(lo) + static_cast<u32>(hi));
        }
        return r;
    });
}

// PMADDUBSW: unsigned bytes of the destination times signed bytes of the source.
HANDLER(op_pmaddubsw)
{
    const unsigned n = width(insn) / 2;
    return binary(cpu, insn, [n](const Vec& d, const Vec& s) {
        Vec r;
        for (unsigned i = 0; i < n; ++i) {
            const i32 sum = i32{d.get<u8>(2 * i)} * s.get<i8>(2 * i) +
                            i32{d.get<u8>(2 * i + 1)} * s.get<i8>(2 * i + 1);
            r.set<i16>(i, saturate<i16>(sum));
        }
        return r;
    });
}

// ---- Average, absolute difference, min and max ----

HANDLER(op_pavgb) { return lanewise<u8>(cpu, insn, average); }
HANDLER(op_pavgw) { return lanewise<u16>(cpu, insn, average); }

HANDLER(op_psadbw)
{
    const unsigned n = width(insn) / 8;
    return binary(cpu, insn, [n](const Vec& d, const Vec& s) {
        Vec r;
        for (unsigned q = 0; q < n; ++q) {
            u64 sum = 0;
            for (unsigned i = 0; i < 8; ++i) {
                const int a = d.byte(8 * q + i), b = s.byte(8 * q + i);
                sum += static_cast<u64>(a > b ? a - b : b - a);
            }
            r.q[q] = sum;
        }
        return r;
    });
}

// MPSADBW: eight sums of absolute differences of a sliding 4-byte window of
// the destination against a fixed 4-byte group of the source.
namespace simd {

// MPSADBW on one 128-bit lane: eight sums of absolute differences between a
// 4-byte block of the source (imm[1:0]) and sliding windows of the
// destination starting at byte 4·imm[2].
Vec mpsadbw_lane(const Vec& d, const Vec& s, u8 imm)
{
    const unsigned src_off = (imm & 3) * 4, dst_off = ((imm >> 2) & 1) * 4;
    Vec r;
    for (unsigned i = 0; i < 8; ++i) {
        unsigned sum = 0;
        for (unsigned j = 0; j < 4; ++j) {
            const int a = d.byte(dst_off + i + j), b = s.byte(src_off + j);
            sum += static_cast<unsigned>(a > b ? a - b : b - a);
        }
        r.set<u16>(i, static_cast<u16>(sum));
    }
    return r;
}

} // namespace simd

HANDLER(op_mpsadbw)
{
    const u8 imm = static_cast<u8>(insn.imm);
    return binary(cpu, insn, [imm](const Vec& d, const Vec& s) { return mpsadbw_lane(d, s, imm); });
}

HANDLER(op_phminposuw)
{
    return binary(cpu, insn, [](const Vec&, const Vec& s) {
        unsigned index = 0;
        for (unsigned i = 1; i < 8; ++i)
            if (s.get<u16>(i) < s.get<u16>(index))
                index = i;
        Vec r;
        r.set<u16>(0, s.get<u16>(index));
        r.set<u16>(1, static_cast<u16>(index));
        return r;
    });
}

HANDLER(op_pminub) { return lanewise<u8>(cpu, insn, minimum); }
HANDLER(op_pmaxub) { return lanewise<u8>(cpu, insn, maximum); }
HANDLER(op_pminsw) { return lanewise<i16>(cpu, insn, minimum); }
HANDLER(op_pmaxsw) { return lanewise<i16>(cpu, insn, maximum); }
HANDLER(op_pminsb) { return lanewise<i8>(cpu, insn, minimum); }
HANDLER(op_pmaxsb) { return lanewise<i8>(cpu, insn, maximum); }
HANDLER(op_pminuw) { return lanewise<u16>(cpu, insn, minimum); }
HANDLER(op_pmaxuw) { return lanewise<u16>(cpu, insn, maximum); }
HANDLER(op_pminsd) { return lanewise<i32>(cpu, insn, minimum); }
HANDLER(op_pmaxsd) { return lanewise<i32>(cpu, insn, maximum); }
HANDLER(op_pminud) { return lanewise<u32>(cpu, insn, minimum); }
HANDLER(op_pmaxud) { return lanewise<u32>(cpu, insn, maximum); }

// ---- Compare ----

HANDLER(op_pcmpeqb) { return lanewise<u8>(cpu, insn, equal); }
HANDLER(op_pcmpeqw) { return lanewise<u16>(cpu, insn, equal); }
HANDLER(op_pcmpeqd) { return lanewise<u32>(cpu, insn, equal); }
HANDLER(op_pcmpeqq) { return lanewise<u64>(cpu, insn, equal); }
HANDLER(op_pcmpgtb) { return lanewise<i8>(cpu, insn, greater); }
HANDLER(op_pcmpgtw) { return lanewise<i16>(cpu, insn, greater); }
HANDLER(op_pcmpgtd) { return lanewise<i32>(cpu, insn, greater); }
HANDLER(op_pcmpgtq) { return lanewise<i64>(cpu, insn, greater); }

// PTEST: ZF when dst AND src is zero, CF when (NOT dst) AND src is zero; the
// other arithmetic flags clear.
HANDLER(op_ptest)
{
    CPU_TRY(begin(cpu, insn));
    Vec d, s;
    CPU_TRY(read_src(cpu, insn, 0, d));
    CPU_TRY(read_src(cpu, insn, 1, s));
    const bool zf = ((d.q[0] & s.q[0]) | (d.q[1] & s.q[1])) == 0;
    const bool cf = ((~d.q[0] & s.q[0]) | (~d.q[1] & s.q[1])) == 0;
    cpu.set_rflags_arith((zf ? rf::ZF : 0) | (cf ? rf::CF : 0));
    return true;
}

// ---- Logic (also ANDPS/ANDPD, ANDNPS/ANDNPD, ORPS/ORPD, XORPS/XORPD) ----

HANDLER(op_pand) { return lanewise<u64>(cpu, insn, [](u64 a, u64 b) { return a & b; }); }
HANDLER(op_pandn) { return lanewise<u64>(cpu, insn, [](u64 a, u64 b) { return ~a & b; }); }
HANDLER(op_por) { return lanewise<u64>(cpu, insn, [](u64 a, u64 b) { return a | b; }); }
HANDLER(op_pxor) { return lanewise<u64>(cpu, insn, [](u64 a, u64 b) { return a ^ b; }); }

// ---- Shifts ----

HANDLER(op_psllw) { return shift<u16, ShiftKind::Left>(cpu, insn); }
HANDLER(op_pslld) { return shift<u32, ShiftKind::Left>(cpu, insn); }
HANDLER(op_psllq) { return shift<u64, ShiftKind::Left>(cpu, insn); }
HANDLER(op_psrlw) { return shift<u16, ShiftKind::Logical>(cpu, insn); }
HANDLER(op_psrld) { return shift<u32, ShiftKind::Logical>(cpu, insn); }
HANDLER(op_psrlq) { return shift<u64, ShiftKind::Logical>(cpu, insn); }
HANDLER(op_psraw) { return shift<u16, ShiftKind::Arithmetic>(cpu, insn); }
HANDLER(op_psrad) { return shift<u32, ShiftKind::Arithmetic>(cpu, insn); }

// ---- Pack ----

HANDLER(op_packsswb) { return pack<i16, i8>(cpu, insn); }
HANDLER(op_packssdw) { return pack<i32, i16>(cpu, insn); }
HANDLER(op_packuswb) { return pack<i16, u8>(cpu, insn); }
HANDLER(op_packusdw) { return pack<i32, u16>(cpu, insn); }

// ---- SSSE3 horizontal, absolute value and sign ----

HANDLER(op_phaddw) { return horizontal<u16>(cpu, insn, add); }
HANDLER(op_phaddd) { return horizontal<u32>(cpu, insn, add); }
HANDLER(op_phsubw) { return horizontal<u16>(cpu, insn, sub); }
HANDLER(op_phsubd) { return horizontal<u32>(cpu, insn, sub); }
HANDLER(op_phaddsw) { return horizontal<i16>(cpu, insn, add_saturate); }
HANDLER(op_phsubsw) { return horizontal<i16>(cpu, insn, sub_saturate); }

HANDLER(op_pabsb) { return unary_lanes<i8>(cpu, insn, absolute); }
HANDLER(op_pabsw) { return unary_lanes<i16>(cpu, insn, absolute); }
HANDLER(op_pabsd) { return unary_lanes<i32>(cpu, insn, absolute); }

HANDLER(op_psignb) { return lanewise<u8>(cpu, insn, sign_op<u8>); }
HANDLER(op_psignw) { return lanewise<u16>(cpu, insn, sign_op<u16>); }
HANDLER(op_psignd) { return lanewise<u32>(cpu, insn, sign_op<u32>); }
