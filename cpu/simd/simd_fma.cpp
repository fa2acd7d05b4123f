// FMA3 (SDM Vol 2A VFMADD*/VFMSUB*/VFNMADD*/VFNMSUB*/VFMADDSUB*/VFMSUBADD*):
// a·b ± c with one rounding, in software. The exact product and the addend
// are aligned in 128-bit integers (a sticky bit keeps what falls off the
// end), summed, and rounded once under MXCSR's rounding control, DAZ and FTZ,
// with the invalid, denormal, overflow, underflow and precision flags.
#include "cpu/simd/simd.h"

#include <bit>

using namespace simd;

namespace {

using u128 = unsigned __int128;

template <class T>
struct Format;
template <>
struct Format<u32> {
    static constexpr unsigned FRAC = 23, EXP = 8;
    static constexpr int BIAS = 127;
    static constexpr u32 DEFAULT_NAN = 0xFFC00000u;
};
template <>
struct Format<u64> {
    static constexpr unsigned FRAC = 52, EXP = 11;
    static constexpr int BIAS = 1023;
    static constexpr u64 DEFAULT_NAN = 0xFFF8000000000000ull;
};

template <class T>
struct Fields {
    using F = Format<T>;
    static constexpr T EXP_MAX = (T{1} << F::EXP) - 1;
    static constexpr T FRAC_MASK = (T{1} << F::FRAC) - 1;
    static constexpr T QUIET = T{1} << (F::FRAC - 1);
    static bool sign(T v) { return v >> (F::FRAC + F::EXP); }
    static T exp(T v) { return (v >> F::FRAC) & EXP_MAX; }
    static T frac(T v) { return v & FRAC_MASK; }
    static bool nan(T v) { return exp(v) == EXP_MAX && frac(v); }
    static bool snan(T v) { return nan(v) && !(v & QUIET); }
    static bool inf(T v) { return exp(v) == EXP_MAX && !frac(v); }
    static bool zero(T v) { return !exp(v) && !frac(v); }
    static bool denormal(T v) { return !exp(v) && frac(v); }
    static T sign_bit() { return T{1} << (F::FRAC + F::EXP); }
};

unsigned msb(u128 v)
{
    const u64 hi = static_cast<u64>(v >> 64);
    return hi ? 127 - std::countl_zero(hi) : 63 - std::countl_zero(static_cast<u64>(v));
}

struct Result {
    u64 bits;
    u32 flags;
};

// Rounds sign · m · 2^e (m != 0) to format T under `rc` with FTZ; `unmasked`
// holds the MXCSR exceptions that are not masked.
template <class T>
Result round_pack(bool negative, u128 m, int e, unsigned rc, bool ftz, u32 unmasked)
{
    using F = Format<T>;
    using B = Fields<T>;
    constexpr int P = F::FRAC + 1, EMIN = 1 - F::BIAS, EMAX = F::BIAS;
    const T sign = negative ? B::sign_bit() : T{0};
    const auto round_at = [&](unsigned shift, bool& inexact) -> u128 {
        if (shift == 0) {
            inexact = false;
            return m;
        }
        if (shift > 127) {
            inexact = true;
            return ((rc == 1 && negative) || (rc == 2 && !negative)) ? 1 : 0;
        }
        const u128 kept = m >> shift, rest = m & ((u128{1} << shift) - 1), half = u128{1} << (shift - 1);
        inexact = rest != 0;
        bool up = false;
        if (rc == 0)
            up = rest > half || (rest == half && (kept & 1));
        else if (rc == 1)
            up = inexact && negative;
        else if (rc == 2)
            up = inexact && !negative;
        return kept + (up ? 1 : 0);
    };
    const int top = static_cast<int>(msb(m));
    const int value_exp = e + top; // exponent of the leading bit
    // Tininess after rounding: round to P bits with an unbounded exponent.
    bool inexact_unbounded;
    u128 r = round_at(top >= P - 1 ? static_cast<unsigned>(top - (P - 1)) : 0, inexact_unbounded);
    int r_exp = value_exp;
    if (top >= P - 1 && (r >> P))
        ++r_exp;
    const bool tiny = r_exp < EMIN;
    u32 flags = 0;
    // Unmasked overflow or underflow: #XM follows and the result is not
    // written; PE tells whether the rounded significand was inexact, and an
    // exact tiny result still underflows (SDM Vol 1 11.5.2.3-11.5.2.4).
    if ((r_exp > EMAX && (unmasked & mxcsr::OE)) || (tiny && (unmasked & mxcsr::UE)))
        return {0, (r_exp > EMAX ? mxcsr::OE : mxcsr::UE) | (inexact_unbounded ? mxcsr::PE : 0u)};
    if (r_exp > EMAX) {
        const bool to_inf = rc == 0 || (rc == 1 && negative) || (rc == 2 && !negative);
        const T big = to_inf ? (B::EXP_MAX << F::FRAC) : (((B::EXP_MAX - 1) << F::FRAC) | B::FRAC_MASK);
        return {static_cast<u64>(sign | big), mxcsr::OE | mxcsr::PE};
    }
    if (tiny && ftz)
        return {static_cast<u64>(sign), mxcsr::UE | mxcsr::PE};
    const int lsb_exp = value_exp < EMIN ? EMIN - (P - 1) : value_exp - (P - 1);
    const int shift = lsb_exp - e;
    bool inexact = false;
    u128 q = shift > 0 ? round_at(static_cast<unsigned>(shift), inexact) : m << -shift;
    T bits;
    if (value_exp < EMIN) {
        bits = static_cast<T>(q); // a denormal, or the smallest normal when q reaches 2^(P-1)
    } else {
        int be = value_exp;
        if (q >> P) {
            q >>= 1;
            ++be;
        }
        if (be > EMAX) {
            const bool to_inf = rc == 0 || (rc == 1 && negative) || (rc == 2 && !negative);
            const T big =
                to_inf ? (B::EXP_MAX << F::FRAC) : (((B::EXP_MAX - 1) << F::FRAC) | B::FRAC_MASK);
            return {static_cast<u64>(sign | big), mxcsr::OE | mxcsr::PE};
        }
        bits = static_cast<T>((static_cast<T>(be + F::BIAS) << F::FRAC) | (static_cast<T>(q) & B::FRAC_MASK));
    }
    if (inexact)
        flags |= mxcsr::PE | (tiny ? mxcsr::UE : 0);
    return {static_cast<u64>(sign | bits), flags};
}

// The significand (with its integer bit) and exponent of a finite nonzero value.
template <class T>
void unpack(T v, u128& m, int& e)
{
    using F = Format<T>;
    using B = Fields<T>;
    if (B::exp(v)) {
        m = B::frac(v) | (T{1} << F::FRAC);
        e = static_cast<int>(B::exp(v)) - F::BIAS - static_cast<int>(F::FRAC);
    } else {
        m = B::frac(v);
        e = 1 - F::BIAS - static_cast<int>(F::FRAC);
    }
}

// ±(a·b) ± c. `nan_order` lists the operands in the order that picks the
// NaN result when several are NaNs.
template <class T>
Result fma(T a, T b, T c, bool negate_product, bool negate_addend, const T* nan_order, u32 csr)
{
    using B = Fields<T>;
    const unsigned rc = (csr >> mxcsr::RC_SHIFT) & 3;
    const bool daz = csr & mxcsr::DAZ, ftz = csr & mxcsr::FTZ;
    u32 flags = 0;
    if (B::snan(a) || B::snan(b) || B::snan(c))
        flags |= mxcsr::IE;
    if (B::nan(a) || B::nan(b) || B::nan(c)) {
        // ∞·0 + QNaN does not signal invalid (IEEE 754-2008 7.2(c) leaves it
        // to the implementation; the host CPU does not).
        for (unsigned i = 0; i < 3; ++i)
            if (B::nan(nan_order[i]))
                return {static_cast<u64>(nan_order[i] | B::QUIET), flags};
    }
    // DE is reported for a denormal operand unless the operation is invalid.
    const bool denormal_operand = !daz && (B::denormal(a) || B::denormal(b) || B::denormal(c));
    if (daz) {
        if (B::denormal(a)) a &= B::sign_bit();
        if (B::denormal(b)) b &= B::sign_bit();
        if (B::denormal(c)) c &= B::sign_bit();
    }
    const bool ps = B::sign(a) ^ B::sign(b) ^ negate_product, cs = B::sign(c) ^ negate_addend;
    const bool product_inf = B::inf(a) || B::inf(b);
    const bool product_zero = B::zero(a) || B::zero(b);
    if (product_inf && product_zero)
        return {static_cast<u64>(Format<T>::DEFAULT_NAN), flags | mxcsr::IE};
    if (product_inf && B::inf(c) && ps != cs)
        return {static_cast<u64>(Format<T>::DEFAULT_NAN), flags | mxcsr::IE};
    if (denormal_operand)
        flags |= mxcsr::DE;
    if (product_inf || B::inf(c)) {
        const bool s = product_inf ? ps : cs;
        return {static_cast<u64>((s ? B::sign_bit() : T{0}) | (B::EXP_MAX << Format<T>::FRAC)), flags};
    }
    const T c_abs = c & ~B::sign_bit();
    if (product_zero) {
        if (B::zero(c)) { // exact zero: the signs decide, or the rounding when they differ
            const bool s = ps == cs ? ps : rc == 1;
            return {static_cast<u64>(s ? B::sign_bit() : T{0}), flags};
        }
        // The exact result is c: a denormal c is an exact tiny result, which
        // underflows when UE is unmasked, and under FTZ still flushes.
        if (B::denormal(c_abs) && (~csr & (mxcsr::UE << mxcsr::MASK_SHIFT)))
            return {0, flags | mxcsr::UE};
        if (B::denormal(c_abs) && ftz)
            return {static_cast<u64>(cs ? B::sign_bit() : T{0}), flags | mxcsr::UE | mxcsr::PE};
        return {static_cast<u64>((cs ? B::sign_bit() : T{0}) | c_abs), flags};
    }
    u128 ma, mb, mc = 0;
    int ea, eb, ec = 0;
    unpack(a, ma, ea);
    unpack(b, mb, eb);
    u128 mp = ma * mb;
    int ep = ea + eb;
    // Both terms normalized with the leading bit at 125, then aligned.
    const auto normalize = [](u128& m, int& e) {
        const int up = 125 - static_cast<int>(msb(m));
        m <<= up;
        e -= up;
    };
    normalize(mp, ep);
    if (!B::zero(c)) {
        unpack(c, mc, ec);
        normalize(mc, ec);
    }
    const auto align = [](u128& m, int by) {
        if (by >= 127) {
            m = m != 0;
            return;
        }
        const bool sticky = (m & ((u128{1} << by) - 1)) != 0;
        m = (m >> by) | (sticky ? 1 : 0);
    };
    int e = ep;
    if (mc) {
        if (ec > ep) {
            align(mp, ec - ep);
            e = ec;
        } else {
            align(mc, ep - ec);
        }
    }
    u128 sum;
    bool negative;
    if (!mc || ps == cs) {
        sum = mp + mc;
        negative = ps;
    } else if (mp >= mc) {
        sum = mp - mc;
        negative = ps;
    } else {
        sum = mc - mp;
        negative = cs;
    }
    if (sum == 0)
        return {static_cast<u64>(rc == 1 ? B::sign_bit() : T{0}), flags};
    const Result r =
        round_pack<T>(negative, sum, e, rc, ftz, ~(csr >> mxcsr::MASK_SHIFT) & mxcsr::FLAGS);
    return {r.bits, flags | r.flags};
}

enum class Order : u8 { O132, O213, O231 };
enum class Sign : u8 { Add, Sub, NegAdd, NegSub, AddSub, SubAdd };

template <class T, Order O, Sign S>
bool fma_op(Cpu& cpu, const Insn& insn, bool scalar)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec x[2], y[2], z[2]; // operands 0 (destination), 1 (VEX.vvvv) and 2
    CPU_TRY(vex_read(cpu, insn, 0, x));
    CPU_TRY(vex_read(cpu, insn, 1, y));
    CPU_TRY(vex_read(cpu, insn, 2, z));
    const unsigned lanes = is_vex256(insn) ? 2 : 1, per_lane = 16 / sizeof(T);
    const unsigned count = scalar ? 1 : per_lane;
    const u32 csr = cpu.s.fpu.mxcsr;
    u32 flags = 0;
    Vec out[2] = {x[0], x[1]};
    for (unsigned l = 0; l < lanes; ++l)
        for (unsigned i = 0; i < count; ++i) {
            const T o1 = x[l].get<T>(i), o2 = y[l].get<T>(i), o3 = z[l].get<T>(i);
            T a, b, c;
            switch (O) {
            case Order::O132: a = o1, b = o3, c = o2; break;
            case Order::O213: a = o2, b = o1, c = o3; break;
            default: a = o2, b = o3, c = o1; break;
            }
            bool neg_product = S == Sign::NegAdd || S == Sign::NegSub;
            bool neg_addend = S == Sign::Sub || S == Sign::NegSub;
            if (S == Sign::AddSub)
                neg_addend = (i % 2) == 0;
            if (S == Sign::SubAdd)
                neg_addend = (i % 2) == 1;
            const T order[3] = {a, b, c};
            const Result r = fma<T>(a, b, c, neg_product, neg_addend, order, csr);
            out[l].set<T>(i, static_cast<T>(r.bits));
            flags |= r.flags;
        }
    // An unmasked pre-computation exception (IE, DE) in any element leaves
    // out every post-computation flag (SDM Vol 1 11.5.2; the host agrees).
    u32& mx = cpu.s.fpu.mxcsr;
    const u32 unmasked = ~(mx >> mxcsr::MASK_SHIFT) & mxcsr::FLAGS;
    const u32 pre = flags & (mxcsr::IE | mxcsr::DE | mxcsr::ZE);
    mx |= (pre & unmasked) ? pre : flags;
    if (flags & unmasked)
        return raise_xm(cpu);
    if (!is_vex256(insn))
        out[1] = Vec{};
    return vex_write(cpu, insn, out);
}

} // namespace

#define FMA_FAMILY(stem, sign)                                                                     \
    HANDLER(op_##stem##132ps) { return fma_op<u32, Order::O132, sign>(cpu, insn, false); }        \
    HANDLER(op_##stem##213ps) { return fma_op<u32, Order::O213, sign>(cpu, insn, false); }        \
    HANDLER(op_##stem##231ps) { return fma_op<u32, Order::O231, sign>(cpu, insn, false); }        \
    HANDLER(op_##stem##132pd) { return fma_op<u64, Order::O132, sign>(cpu, insn, false); }        \
    HANDLER(op_##stem##213pd) { return fma_op<u64, Order::O213, sign>(cpu, insn, false); }        \
    HANDLER(op_##stem##231pd) { return fma_op<u64, Order::O231, sign>(cpu, insn, false); }
#define FMA_SCALAR(stem, sign)                                                                     \
    HANDLER(op_##stem##132ss) { return fma_op<u32, Order::O132, sign>(cpu, insn, true); }         \
    HANDLER(op_##stem##213ss) { return fma_op<u32, Order::O213, sign>(cpu, insn, true); }         \
    HANDLER(op_##stem##231ss) { return fma_op<u32, Order::O231, sign>(cpu, insn, true); }         \
    HANDLER(op_##stem##132sd) { return fma_op<u64, Order::O132, sign>(cpu, insn, true); }         \
    HANDLER(op_##stem##213sd) { return fma_op<u64, Order::O213, sign>(cpu, insn, true); }         \
    HANDLER(op_##stem##231sd) { return fma_op<u64, Order::O231, sign>(cpu, insn, true); }

FMA_FAMILY(vfmadd, Sign::Add)
FMA_FAMILY(vfmsub, Sign::Sub)
FMA_FAMILY(vfnmadd, Sign::NegAdd)
FMA_FAMILY(vfnmsub, Sign::NegSub)
FMA_FAMILY(vfmaddsub, Sign::AddSub)
FMA_FAMILY(vfmsubadd, Sign::SubAdd)
FMA_SCALAR(vfmadd, Sign::Add)
FMA_SCALAR(vfmsub, Sign::Sub)
FMA_SCALAR(vfnmadd, Sign::NegAdd)
FMA_SCALAR(vfnmsub, Sign::NegSub)
