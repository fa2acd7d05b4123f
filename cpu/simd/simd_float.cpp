// SSE/SSE2/SSE3/SSE4.1 floating point: arithmetic, square root, min/max,
// compares, conversions, rounding, dot products and horizontal operations
// under the guest's MXCSR (rounding control, DAZ, FTZ, flags and masks).
//
// The arithmetic runs on the host's own SSE unit with the guest's MXCSR
// loaded around the one instruction (inline asm, so the compiler can neither
// move the operation across LDMXCSR nor fold it). IEEE 754 fixes every
// result bit, NaN propagation and flag that x86 defines, so this is bit-exact
// and deterministic on any x86-64 host with SSE4.1. Two exceptions:
// RCPPS/RSQRTPS, whose approximations differ between Intel and AMD, run in
// software (simd_approx.cpp); and which NaN DPPS/DPPD return when several
// products are NaN or invalid is the host's (an Intel and an AMD host pick
// different ones, and Intel's differs from lane to lane: not modelled). A
// portable soft-float fallback for non-x86 hosts is out of scope.
//
// Unmasked exceptions (SDM Vol 1 11.5.2): the host always runs with every
// exception masked. When the guest unmasks one, each element is run alone to
// find its flags: pre-computation exceptions (IE, DE, ZE) of all elements
// come first and, if one is unmasked, trap without post-computation flags.
// An unmasked underflow traps on any tiny result, exact or not. An element
// whose overflow or underflow traps reports OE or UE, plus PE only when its
// significand was rounded (the result with an unbounded exponent is
// inexact); the other elements report their masked flags. On a trap the
// destination is unchanged and the flags gathered are set in MXCSR. This is
// what the hardware does: tests/cpu/simd_host_test.cpp compares it with the
// host CPU, traps included.
#include "cpu/simd/simd.h"
#include "cpu/simd/simd_approx.h"

#include <emmintrin.h>

#include <array>
#include <utility>

using namespace simd;

namespace {

// Runs one host SSE instruction on d (destination) and s (source) under
// `csr`; returns the MXCSR afterwards. Scalar results merge into d's upper
// lanes; a GPR source comes in s.q[0], a GPR result goes out in d.q[0].
using Kernel = u32 (*)(Vec& d, const Vec& s, u32 csr);

__m128i load(const Vec& v)
{
    __m128i x;
    std::memcpy(&x, v.q, 16);
    return x;
}

void store(Vec& v, __m128i x)
{
    std::memcpy(v.q, &x, 16);
}

// The host's MXCSR is saved and restored inside the same asm statement.
#define GUEST_MXCSR_BEGIN "stmxcsr %[host]\n\tldmxcsr %[csr]\n\t"
#define GUEST_MXCSR_END "\n\tstmxcsr %[out]\n\tldmxcsr %[host]"
#define MXCSR_OPERANDS [host] "=m"(host), [out] "=m"(out)

// xmm op xmm: `text` is the AT&T mnemonic.
#define XMM_KERNEL(name, text)                                                                   \
    u32 name(Vec& d, const Vec& s, u32 csr)                                                      \
    {                                                                                            \
        __m128i x = load(d), y = load(s);                                                        \
        u32 host, out;                                                                           \
        asm volatile(GUEST_MXCSR_BEGIN text " %[y], %[x]" GUEST_MXCSR_END                        \
                     : [x] "+x"(x), MXCSR_OPERANDS                                               \
                     : [y] "x"(y), [csr] "m"(csr));                                              \
        store(d, x);                                                                             \
        return out;                                                                              \
    }

// xmm op xmm with an immediate, one function per immediate value.
#define XMM_IMM_KERNEL(name, text)                                                               \
    template <unsigned Imm>                                                                      \
    u32 name(Vec& d, const Vec& s, u32 csr)                                                      \
    {                                                                                            \
        __m128i x = load(d), y = load(s);                                                        \
        u32 host, out;                                                                           \
        asm volatile(GUEST_MXCSR_BEGIN text " %[imm], %[y], %[x]" GUEST_MXCSR_END                \
                     : [x] "+x"(x), MXCSR_OPERANDS                                               \
                     : [y] "x"(y), [csr] "m"(csr), [imm] "i"(Imm));                              \
        store(d, x);                                                                             \
        return out;                                                                              \
    }

// GPR (in s.q[0]) converted into d's low element.
#define FROM_GPR_KERNEL(name, text, type)                                                        \
    u32 name(Vec& d, const Vec& s, u32 csr)                                                      \
    {                                                                                            \
        __m128i x = load(d);                                                                     \
        const type g = static_cast<type>(s.q[0]);                                                \
        u32 host, out;                                                                           \
        asm volatile(GUEST_MXCSR_BEGIN text " %[g], %[x]" GUEST_MXCSR_END                        \
                     : [x] "+x"(x), MXCSR_OPERANDS                                               \
                     : [g] "rm"(g), [csr] "m"(csr));                                             \
        store(d, x);                                                                             \
        return out;                                                                              \
    }

// s's low element converted into a GPR (returned in d.q[0]).
#define TO_GPR_KERNEL(name, text, type)                                                          \
    u32 name(Vec& d, const Vec& s, u32 csr)                                                      \
    {                                                                                            \
        const __m128i y = load(s);                                                               \
        type g;                                                                                  \
        u32 host, out;                                                                           \
        asm volatile(GUEST_MXCSR_BEGIN text " %[y], %[g]" GUEST_MXCSR_END                        \
                     : [g] "=r"(g), MXCSR_OPERANDS                                               \
                     : [y] "x"(y), [csr] "m"(csr));                                              \
        d.q[0] = static_cast<u64>(static_cast<std::make_unsigned_t<type>>(g));                   \
        return out;                                                                              \
    }

// (U)COMISS/(U)COMISD: the resulting ZF, PF, CF (as RFLAGS bits) in d.q[0].
#define COMPARE_KERNEL(name, text)                                                               \
    u32 name(Vec& d, const Vec& s, u32 csr)                                                      \
    {                                                                                            \
        const __m128i x = load(d), y = load(s);                                                  \
        bool zf, pf, cf;                                                                         \
        u32 host, out;                                                                           \
        asm volatile(GUEST_MXCSR_BEGIN text " %[y], %[x]" GUEST_MXCSR_END                        \
                     : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf), MXCSR_OPERANDS                     \
                     : [x] "x"(x), [y] "x"(y), [csr] "m"(csr));                                  \
        d.q[0] = (zf ? rf::ZF : 0) | (pf ? rf::PF : 0) | (cf ? rf::CF : 0);                      \
        return out;                                                                              \
    }

XMM_KERNEL(k_addps, "addps") XMM_KERNEL(k_addss, "addss")
XMM_KERNEL(k_addpd, "addpd") XMM_KERNEL(k_addsd, "addsd")
XMM_KERNEL(k_subps, "subps") XMM_KERNEL(k_subss, "subss")
XMM_KERNEL(k_subpd, "subpd") XMM_KERNEL(k_subsd, "subsd")
XMM_KERNEL(k_mulps, "mulps") XMM_KERNEL(k_mulss, "mulss")
XMM_KERNEL(k_mulpd, "mulpd") XMM_KERNEL(k_mulsd, "mulsd")
XMM_KERNEL(k_divps, "divps") XMM_KERNEL(k_divss, "divss")
XMM_KERNEL(k_divpd, "divpd") XMM_KERNEL(k_divsd, "divsd")
XMM_KERNEL(k_minps, "minps") XMM_KERNEL(k_minss, "minss")
XMM_KERNEL(k_minpd, "minpd") XMM_KERNEL(k_minsd, "minsd")
XMM_KERNEL(k_maxps, "maxps") XMM_KERNEL(k_maxss, "maxss")
XMM_KERNEL(k_maxpd, "maxpd") XMM_KERNEL(k_maxsd, "maxsd")
XMM_KERNEL(k_sqrtps, "sqrtps") XMM_KERNEL(k_sqrtss, "sqrtss")
XMM_KERNEL(k_sqrtpd, "sqrtpd") XMM_KERNEL(k_sqrtsd, "sqrtsd")
// RCPPS/RSQRTPS and their scalar forms: no flags, MXCSR unchanged.
template <u32 (*Approx)(u32)>
u32 k_approx_packed(Vec& d, const Vec& s, u32 csr)
{
    for (unsigned i = 0; i < 4; ++i)
        d.set<u32>(i, Approx(s.get<u32>(i)));
    return csr;
}
template <u32 (*Approx)(u32)>
u32 k_approx_scalar(Vec& d, const Vec& s, u32 csr)
{
    d.set<u32>(0, Approx(s.get<u32>(0)));
    return csr;
}

XMM_KERNEL(k_addsubps, "addsubps") XMM_KERNEL(k_addsubpd, "addsubpd")
XMM_KERNEL(k_haddps, "haddps") XMM_KERNEL(k_haddpd, "haddpd")
XMM_KERNEL(k_hsubps, "hsubps") XMM_KERNEL(k_hsubpd, "hsubpd")
XMM_KERNEL(k_cvtps2pd, "cvtps2pd") XMM_KERNEL(k_cvtpd2ps, "cvtpd2ps")
XMM_KERNEL(k_cvtss2sd, "cvtss2sd") XMM_KERNEL(k_cvtsd2ss, "cvtsd2ss")
XMM_KERNEL(k_cvtdq2ps, "cvtdq2ps") XMM_KERNEL(k_cvtps2dq, "cvtps2dq")
XMM_KERNEL(k_cvttps2dq, "cvttps2dq") XMM_KERNEL(k_cvtdq2pd, "cvtdq2pd")
XMM_KERNEL(k_cvtpd2dq, "cvtpd2dq") XMM_KERNEL(k_cvttpd2dq, "cvttpd2dq")

XMM_IMM_KERNEL(k_cmpps, "cmpps") XMM_IMM_KERNEL(k_cmpss, "cmpss")
XMM_IMM_KERNEL(k_cmppd, "cmppd") XMM_IMM_KERNEL(k_cmpsd, "cmpsd")
XMM_IMM_KERNEL(k_roundps, "roundps") XMM_IMM_KERNEL(k_roundss, "roundss")
XMM_IMM_KERNEL(k_roundpd, "roundpd") XMM_IMM_KERNEL(k_roundsd, "roundsd")
XMM_IMM_KERNEL(k_dpps, "dpps") XMM_IMM_KERNEL(k_dppd, "dppd")

FROM_GPR_KERNEL(k_cvtsi2ss_32, "cvtsi2ssl", u32) FROM_GPR_KERNEL(k_cvtsi2ss_64, "cvtsi2ssq", u64)
FROM_GPR_KERNEL(k_cvtsi2sd_32, "cvtsi2sdl", u32) FROM_GPR_KERNEL(k_cvtsi2sd_64, "cvtsi2sdq", u64)

TO_GPR_KERNEL(k_cvtss2si_32, "cvtss2si", i32) TO_GPR_KERNEL(k_cvtss2si_64, "cvtss2si", i64)
TO_GPR_KERNEL(k_cvttss2si_32, "cvttss2si", i32) TO_GPR_KERNEL(k_cvttss2si_64, "cvttss2si", i64)
TO_GPR_KERNEL(k_cvtsd2si_32, "cvtsd2si", i32) TO_GPR_KERNEL(k_cvtsd2si_64, "cvtsd2si", i64)
TO_GPR_KERNEL(k_cvttsd2si_32, "cvttsd2si", i32) TO_GPR_KERNEL(k_cvttsd2si_64, "cvttsd2si", i64)

COMPARE_KERNEL(k_comiss, "comiss") COMPARE_KERNEL(k_ucomiss, "ucomiss")
COMPARE_KERNEL(k_comisd, "comisd") COMPARE_KERNEL(k_ucomisd, "ucomisd")

// One kernel per immediate value: table[imm] runs the instruction with that imm8.
template <unsigned N, class Make>
constexpr std::array<Kernel, N> kernel_table(Make make)
{
    return [&]<unsigned... I>(std::integer_sequence<unsigned, I...>) {
        return std::array<Kernel, N>{make.template operator()<I>()...};
    }(std::make_integer_sequence<unsigned, N>{});
}

// Legacy-SSE compares use imm8[2:0] and ROUNDxx imm8[3:0]; the other bits are ignored.
constexpr auto cmpps_table = kernel_table<8>([]<unsigned I>() { return &k_cmpps<I>; });
constexpr auto cmpss_table = kernel_table<8>([]<unsigned I>() { return &k_cmpss<I>; });
constexpr auto cmppd_table = kernel_table<8>([]<unsigned I>() { return &k_cmppd<I>; });
constexpr auto cmpsd_table = kernel_table<8>([]<unsigned I>() { return &k_cmpsd<I>; });
constexpr auto roundps_table = kernel_table<16>([]<unsigned I>() { return &k_roundps<I>; });
constexpr auto roundss_table = kernel_table<16>([]<unsigned I>() { return &k_roundss<I>; });
constexpr auto roundpd_table = kernel_table<16>([]<unsigned I>() { return &k_roundpd<I>; });
constexpr auto roundsd_table = kernel_table<16>([]<unsigned I>() { return &k_roundsd<I>; });
constexpr auto dpps_table = kernel_table<256>([]<unsigned I>() { return &k_dpps<I>; });
constexpr auto dppd_table = kernel_table<256>([]<unsigned I>() { return &k_dppd<I>; });

// How an instruction splits into independent elements for per-element flags.
enum class Lanes : u8 { One, Ps, Pd };
enum class Elem : u8 { F32, F64 };
// The arithmetic of an operation that can overflow or underflow: with those
// exceptions unmasked, PE reports whether the result was exact when rounded
// with an unbounded exponent, which the host's masked run cannot tell.
enum class Arith : u8 { None, Add, Sub, AddSub, Mul, Div, Narrow };

struct Shape {
    Lanes lanes;
    Elem elem; // element type of the sources
    Arith arith;
};

constexpr Shape ps(Arith a = Arith::None) { return {Lanes::Ps, Elem::F32, a}; }
constexpr Shape pd(Arith a = Arith::None) { return {Lanes::Pd, Elem::F64, a}; }
constexpr Shape ss(Arith a = Arith::None) { return {Lanes::One, Elem::F32, a}; }
constexpr Shape sd(Arith a = Arith::None) { return {Lanes::One, Elem::F64, a}; }

// Neutral filler for the elements not under test: 1.0 op 1.0 raises nothing
// for any of the operations above (including as an integer conversion source).
constexpr u32 ONE_F32 = 0x3F800000;
constexpr u64 ONE_F64 = 0x3FF0000000000000ull;

Vec isolate(const Vec& v, Lanes lanes, unsigned i)
{
    Vec r;
    if (lanes == Lanes::Ps) {
        for (unsigned k = 0; k < 4; ++k)
            r.set<u32>(k, k == i ? v.get<u32>(k) : ONE_F32);
    } else {
        for (unsigned k = 0; k < 2; ++k)
            r.q[k] = k == i ? v.q[k] : ONE_F64;
    }
    return r;
}

// A finite value as ±odd·2^exp (odd = 0 for zero).
struct Exact {
    bool negative;
    u64 odd;
    int exp;
};

Exact decompose(u64 bits, Elem elem, bool daz)
{
    const unsigned frac_bits = elem == Elem::F32 ? 23 : 52, exp_bits = elem == Elem::F32 ? 8 : 11;
    const int bias = (1 << (exp_bits - 1)) - 1;
    const bool negative = (bits >> (frac_bits + exp_bits)) & 1;
    const unsigned e = static_cast<unsigned>((bits >> frac_bits) & ((1u << exp_bits) - 1));
    u64 m = bits & ((1ull << frac_bits) - 1);
    int exp = 1 - bias - static_cast<int>(frac_bits);
    if (e != 0) {
        m |= 1ull << frac_bits;
        exp = static_cast<int>(e) - bias - static_cast<int>(frac_bits);
    } else if (daz) {
        m = 0;
    }
    if (m == 0)
        return {negative, 0, 0};
    const int tz = __builtin_ctzll(m);
    return {negative, m >> tz, exp + tz};
}

unsigned bit_length(unsigned __int128 v)
{
    const u64 hi = static_cast<u64>(v >> 64), lo = static_cast<u64>(v);
    return hi ? 128 - __builtin_clzll(hi) : lo ? 64 - __builtin_clzll(lo) : 0;
}

bool fits(unsigned __int128 odd, unsigned precision) { return bit_length(odd) <= precision; }

// Whether a ± b is exact in `precision` bits with an unbounded exponent.
bool sum_is_exact(Exact a, Exact b, bool subtract, unsigned precision)
{
    if (subtract)
        b.negative = !b.negative;
    if (a.odd == 0 || b.odd == 0)
        return true;
    const int low = a.exp < b.exp ? a.exp : b.exp;
    const int shift_a = a.exp - low, shift_b = b.exp - low;
    // One odd term far above the other: the sum is odd and spans more than `precision` bits.
    if (shift_a > static_cast<int>(precision) + 1 || shift_b > static_cast<int>(precision) + 1)
        return false;
    const __int128 va = static_cast<__int128>(a.odd) << shift_a;
    const __int128 vb = static_cast<__int128>(b.odd) << shift_b;
    __int128 sum = (a.negative ? -va : va) + (b.negative ? -vb : vb);
    if (sum < 0)
        sum = -sum;
    if (sum == 0)
        return true;
    auto u = static_cast<unsigned __int128>(sum);
    while (!(u & 1))
        u >>= 1;
    return fits(u, precision);
}

// Exactness, with an unbounded exponent, of element i of an operation on (d, s).
bool result_is_exact(const Shape& shape, const Vec& d, const Vec& s, unsigned i, bool daz)
{
    const Elem e = shape.elem;
    const unsigned precision = shape.arith == Arith::Narrow ? 24 : e == Elem::F32 ? 24 : 53;
    auto lane = [&](const Vec& v) {
        return decompose(e == Elem::F32 ? v.get<u32>(i) : v.q[i], e, daz);
    };
    const Exact a = lane(d), b = lane(s);
    switch (shape.arith) {
    case Arith::Add:
        return sum_is_exact(a, b, false, precision);
    case Arith::Sub:
        return sum_is_exact(a, b, true, precision);
    case Arith::AddSub: // ADDSUBPS/PD subtract in the even elements
        return sum_is_exact(a, b, i % 2 == 0, precision);
    case Arith::Mul:
        return fits(static_cast<unsigned __int128>(a.odd) * b.odd, precision);
    case Arith::Div:
        return b.odd != 0 && a.odd % b.odd == 0 && fits(a.odd / b.odd, precision);
    case Arith::Narrow:
        return fits(b.odd, precision);
    case Arith::None:
        break;
    }
    return true;
}

// Flags of a run with unmasked exceptions; `trap` when one of them fires.
struct Outcome {
    u32 flags = 0;
    bool trap = false;
    u32 pre = 0; // the pre-computation flags (IE, DE, ZE) among them
};

Outcome classify(Kernel k, const Shape& shape, const Vec& d, const Vec& s, u32 control)
{
    using namespace mxcsr;
    const u32 unmasked = ~(control >> MASK_SHIFT) & FLAGS;
    // Everything masked and flags clear; FTZ only applies while UE is masked.
    u32 run = (control | MASKS) & ~FLAGS;
    if (unmasked & UE)
        run &= ~FTZ;
    const Lanes lanes = shape.lanes;
    const unsigned count = lanes == Lanes::Ps ? 4 : lanes == Lanes::Pd ? 2 : 1;
    u32 pre = 0, post = 0;
    for (unsigned i = 0; i < count; ++i) {
        Vec de = lanes == Lanes::One ? d : isolate(d, lanes, i);
        const Vec se = lanes == Lanes::One ? s : isolate(s, lanes, i);
        Vec probe = de;
        const u32 f = k(de, se, run) & FLAGS;
        pre |= f & (IE | DE | ZE);
        // With FTZ the host reports UE for every tiny result, exact or not.
        const bool tiny = (unmasked & UE) && (k(probe, se, run | FTZ) & UE);
        const bool overflow_trap = (unmasked & OE) && (f & OE);
        if (overflow_trap || tiny) {
            const bool exact = result_is_exact(shape, d, s, lanes == Lanes::One ? 0 : i,
                                               control & DAZ);
            post |= (overflow_trap ? OE : UE) | (exact ? 0 : PE);
        } else {
            post |= f & (OE | UE | PE);
        }
    }
    if (pre & unmasked)
        return {pre, true, pre};
    return {pre | post, ((pre | post) & unmasked) != 0, pre};
}

// A lane-wise equivalent of a horizontal instruction, for its per-element flags.
struct FlagModel {
    Kernel k;
    Shape shape;
    Vec d, s;
};

// Runs kernel k on (d, s) under the guest MXCSR. On an unmasked exception it
// raises #XM (or #UD) and leaves d alone.
bool execute(Cpu& cpu, Kernel k, const Shape& shape, Vec& d, const Vec& s,
             const FlagModel* model = nullptr)
{
    u32& csr = cpu.s.fpu.mxcsr;
    const u32 control = csr & mxcsr::WRITABLE;
    if ((control & mxcsr::MASKS) == mxcsr::MASKS) [[likely]] {
        csr |= k(d, s, control) & mxcsr::FLAGS;
        return true;
    }
    const Outcome o = model ? classify(model->k, model->shape, model->d, model->s, control)
                            : classify(k, shape, d, s, control);
    csr |= o.flags;
    if (o.trap)
        return raise_xm(cpu);
    // No unmasked exception happened, so the all-masked run gives the result.
    k(d, s, (control | mxcsr::MASKS) & ~mxcsr::FLAGS);
    return true;
}

// Runs the two 128-bit halves of a 256-bit instruction, `half(h, out)`, as
// one instruction for MXCSR: when either half raises an unmasked
// pre-computation exception (IE, DE, ZE), MXCSR gets only the
// pre-computation flags of the whole instruction, none of the
// post-computation ones (OE, UE, PE) of the other half (SDM Vol 1 11.5.2;
// the host CPU agrees). `half` must not depend on `out`'s prior contents.
template <class Half>
bool run_halves(Cpu& cpu, Vec (&out)[2], Half half)
{
    u32& csr = cpu.s.fpu.mxcsr;
    const u32 before = csr;
    bool ok = half(0, out[0]);
    ok = half(1, out[1]) && ok;
    if (ok)
        return true;
    // An unmasked exception: the flags each half raises on its own.
    u32 flags = 0;
    for (unsigned h = 0; h < 2; ++h) {
        Vec scratch{};
        csr = before & ~mxcsr::FLAGS;
        half(h, scratch);
        flags |= csr & mxcsr::FLAGS;
    }
    const u32 unmasked = ~(before >> mxcsr::MASK_SHIFT) & mxcsr::FLAGS;
    const u32 pre = flags & (mxcsr::IE | mxcsr::DE | mxcsr::ZE);
    csr = before | ((pre & unmasked) ? pre : flags);
    return raise_xm(cpu);
}

// The VEX form of a float instruction: `run(d, s)` on each 128-bit lane
// (the 256-bit forms here are lane-wise), sources as simd::vex_binary picks
// them. Every lane runs before an unmasked exception is delivered, so MXCSR
// collects the flags of all elements (through run_halves); the destination is
// then left alone.
template <class Run>
bool vex_fp(Cpu& cpu, const Insn& insn, Run run)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    const unsigned first = (insn.prefixes & pfx::VEX_VVVV) ? 1 : 0;
    Vec d[2], s[2];
    CPU_TRY(vex_read(cpu, insn, first, d));
    CPU_TRY(vex_read(cpu, insn, first + 1, s));
    if (!is_vex256(insn)) {
        CPU_TRY(run(d[0], s[0]));
        return vex_write(cpu, insn, d);
    }
    const Vec d_in[2] = {d[0], d[1]};
    CPU_TRY(run_halves(cpu, d, [&](unsigned h, Vec& out) {
        out = d_in[h];
        return run(out, s[h]);
    }));
    return vex_write(cpu, insn, d);
}

// dst = k(dst, src) for an XMM destination.
bool fp_op(Cpu& cpu, const Insn& insn, Kernel k, const Shape& shape)
{
    if (is_vex(insn)) [[unlikely]]
        return vex_fp(cpu, insn,
                      [&](Vec& d, const Vec& s) { return execute(cpu, k, shape, d, s); });
    CPU_TRY(begin(cpu, insn));
    Vec d = xmm(cpu, insn.op[0].reg), s;
    CPU_TRY(read_src(cpu, insn, 1, s));
    CPU_TRY(execute(cpu, k, shape, d, s));
    set_xmm(cpu, insn.op[0].reg, d);
    return true;
}

template <Kernel K, Shape S>
bool fp(Cpu& cpu, const Insn& insn)
{
    return fp_op(cpu, insn, K, S);
}

// HADDPS/HSUBPS/HADDPD/HSUBPD: the same as a lane-wise add or subtract of
// the even elements and the odd elements of dst:src, which gives the flags.
template <class T>
FlagModel horizontal_model(Kernel lanewise, Arith arith, const Vec& d, const Vec& s)
{
    const unsigned half = 8 / sizeof(T);
    FlagModel m{lanewise, sizeof(T) == 4 ? ps(arith) : pd(arith), {}, {}};
    for (unsigned i = 0; i < half; ++i) {
        m.d.set<T>(i, d.get<T>(2 * i));
        m.s.set<T>(i, d.get<T>(2 * i + 1));
        m.d.set<T>(half + i, s.get<T>(2 * i));
        m.s.set<T>(half + i, s.get<T>(2 * i + 1));
    }
    return m;
}

template <Kernel K, Kernel Lanewise, Arith A, class T>
bool fp_horizontal(Cpu& cpu, const Insn& insn)
{
    if (is_vex(insn)) [[unlikely]]
        return vex_fp(cpu, insn, [&](Vec& d, const Vec& s) {
            const FlagModel model = horizontal_model<T>(Lanewise, A, d, s);
            return execute(cpu, K, model.shape, d, s, &model);
        });
    CPU_TRY(begin(cpu, insn));
    Vec d = xmm(cpu, insn.op[0].reg), s;
    CPU_TRY(read_src(cpu, insn, 1, s));
    const FlagModel model = horizontal_model<T>(Lanewise, A, d, s);
    CPU_TRY(execute(cpu, K, model.shape, d, s, &model));
    set_xmm(cpu, insn.op[0].reg, d);
    return true;
}

struct Step {
    bool trapped;
    Vec value;
};

// DPPS/DPPD with an unmasked exception: the multiplies, then each level of
// adds, each step's exceptions decided before the next runs (SDM Vol 2A DPPS:
// "determined separately for each add and multiply operation, in the order of
// their execution").
template <class T>
bool dot_product_steps(Cpu& cpu, u8 imm, const Vec* d, const Vec* s, unsigned count)
{
    const unsigned halves = count > 1 ? 2 : 1;
    constexpr bool single = sizeof(T) == 4;
    constexpr unsigned n = 16 / sizeof(T);
    const u32 control = cpu.s.fpu.mxcsr & mxcsr::WRITABLE;
    const u32 run = (control | mxcsr::MASKS) & ~mxcsr::FLAGS;
    const u32 unmasked = ~(control >> mxcsr::MASK_SHIFT) & mxcsr::FLAGS;
    u32 flags = 0;
    // One step over every half at once (VDPPS ymm steps both 128-bit halves
    // in lockstep, as the host does): an unmasked pre-computation exception
    // in either half keeps out the post-computation flags of both.
    auto step = [&](Kernel k, const Shape& shape, Vec (&a)[2], const Vec (&b)[2]) {
        u32 pre = 0, all = 0;
        bool trap = false;
        for (unsigned h = 0; h < halves; ++h) {
            const Outcome o = classify(k, shape, a[h], b[h], control);
            pre |= o.pre;
            all |= o.flags;
            trap |= o.trap;
            k(a[h], b[h], run);
        }
        flags |= (pre & unmasked) ? pre : all;
        return trap;
    };
    // Products of the elements imm[7:4] (imm[5:4] for DPPD) selects; +0.0 elsewhere.
    Vec a[2], b[2];
    for (unsigned h = 0; h < halves; ++h)
        for (unsigned i = 0; i < n; ++i) {
            const bool on = (imm >> (4 + i)) & 1;
            a[h].set<T>(i, on ? d[h].get<T>(i) : static_cast<T>(single ? ONE_F32 : ONE_F64));
            b[h].set<T>(i, on ? s[h].get<T>(i) : static_cast<T>(single ? ONE_F32 : ONE_F64));
        }
    const Shape mul_shape = single ? ps(Arith::Mul) : pd(Arith::Mul);
    bool trapped = step(single ? k_mulps : k_mulpd, mul_shape, a, b);
    for (unsigned h = 0; h < halves; ++h)
        for (unsigned i = 0; i < n; ++i)
            if (!((imm >> (4 + i)) & 1))
                a[h].set<T>(i, 0);
    if (!trapped && single) {
        Vec lo[2], hi[2];
        for (unsigned h = 0; h < halves; ++h) {
            lo[h].set<u32>(0, a[h].get<u32>(0));
            hi[h].set<u32>(0, a[h].get<u32>(1));
            lo[h].set<u32>(1, a[h].get<u32>(2));
            hi[h].set<u32>(1, a[h].get<u32>(3));
            for (unsigned i = 2; i < 4; ++i) {
                lo[h].set<u32>(i, ONE_F32);
                hi[h].set<u32>(i, ONE_F32);
            }
        }
        trapped = step(k_addps, ps(Arith::Add), lo, hi);
        if (!trapped) {
            Vec odd[2];
            for (unsigned h = 0; h < halves; ++h)
                odd[h] = Vec{{lo[h].get<u32>(1), 0}};
            trapped = step(k_addss, ss(Arith::Add), lo, odd);
        }
    } else if (!trapped) {
        Vec x[2], y[2];
        for (unsigned h = 0; h < halves; ++h) {
            x[h] = Vec{{a[h].q[0], 0}};
            y[h] = Vec{{a[h].q[1], 0}};
        }
        trapped = step(k_addsd, sd(Arith::Add), x, y);
    }
    cpu.s.fpu.mxcsr |= flags;
    return !trapped;
}

template <class T>
bool dot_product(Cpu& cpu, const Insn& insn, Kernel k)
{
    if (is_vex(insn)) [[unlikely]] { // VDPPS ymm: each lane on its own, same imm8
        CPU_TRY(cpu.check_fpu_available(insn));
        const unsigned first = (insn.prefixes & pfx::VEX_VVVV) ? 1 : 0;
        Vec d[2], s[2];
        CPU_TRY(vex_read(cpu, insn, first, d));
        CPU_TRY(vex_read(cpu, insn, first + 1, s));
        const unsigned halves = is_vex256(insn) ? 2 : 1;
        const u32 control = cpu.s.fpu.mxcsr & mxcsr::WRITABLE;
        const bool all_masked = (control & mxcsr::MASKS) == mxcsr::MASKS;
        // With an exception unmasked the steps give the flags (or the trap).
        if (!all_masked && !dot_product_steps<T>(cpu, static_cast<u8>(insn.imm), d, s, halves))
            return raise_xm(cpu);
        for (unsigned h = 0; h < halves; ++h) {
            const u32 f = k(d[h], s[h], all_masked ? control : (control | mxcsr::MASKS) & ~mxcsr::FLAGS);
            if (all_masked)
                cpu.s.fpu.mxcsr |= f & mxcsr::FLAGS;
        }
        return vex_write(cpu, insn, d);
    }
    CPU_TRY(begin(cpu, insn));
    Vec d = xmm(cpu, insn.op[0].reg), s;
    CPU_TRY(read_src(cpu, insn, 1, s));
    const u32 control = cpu.s.fpu.mxcsr & mxcsr::WRITABLE;
    if ((control & mxcsr::MASKS) == mxcsr::MASKS) {
        cpu.s.fpu.mxcsr |= k(d, s, control) & mxcsr::FLAGS;
    } else {
        if (!dot_product_steps<T>(cpu, static_cast<u8>(insn.imm), &d, &s, 1))
            return raise_xm(cpu);
        k(d, s, (control | mxcsr::MASKS) & ~mxcsr::FLAGS);
    }
    set_xmm(cpu, insn.op[0].reg, d);
    return true;
}

// CVTSI2SS/CVTSI2SD: the GPR or memory source's size picks the kernel.
bool from_gpr(Cpu& cpu, const Insn& insn, Kernel k32, Kernel k64)
{
    if (is_vex(insn)) [[unlikely]] { // VCVTSI2Sx xmm1, xmm2, r/m32|64
        const Kernel k = insn.op[2].size == 8 ? k64 : k32;
        return vex_fp(cpu, insn, [&](Vec& d, const Vec& s) { return execute(cpu, k, ss(), d, s); });
    }
    CPU_TRY(begin(cpu, insn));
    Vec d = xmm(cpu, insn.op[0].reg), s;
    CPU_TRY(read_src(cpu, insn, 1, s));
    CPU_TRY(execute(cpu, insn.op[1].size == 8 ? k64 : k32, ss(), d, s));
    set_xmm(cpu, insn.op[0].reg, d);
    return true;
}

// CVT(T)SS2SI/CVT(T)SD2SI: the destination GPR's size picks the kernel.
bool to_gpr(Cpu& cpu, const Insn& insn, Kernel k32, Kernel k64)
{
    CPU_TRY(begin(cpu, insn));
    Vec s, r;
    CPU_TRY(read_src(cpu, insn, 1, s));
    CPU_TRY(execute(cpu, insn.op[0].size == 8 ? k64 : k32, ss(), r, s));
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, r.q[0]);
    return true;
}

// COMISS/UCOMISS/COMISD/UCOMISD: ZF, PF, CF from the compare; OF, SF, AF clear.
bool compare_flags(Cpu& cpu, const Insn& insn, Kernel k)
{
    CPU_TRY(begin(cpu, insn));
    Vec d = xmm(cpu, insn.op[0].reg), s;
    CPU_TRY(read_src(cpu, insn, 1, s));
    CPU_TRY(execute(cpu, k, ss(), d, s));
    cpu.set_rflags_arith(d.q[0]);
    return true;
}

// CVTPI2PS/CVTPI2PD/CVTPS2PI/CVTTPS2PI/CVTPD2PI/CVTTPD2PI: the packed
// conversions with an MMX side, run as their XMM forms on the low elements.
bool mmx_convert(Cpu& cpu, const Insn& insn, Kernel k, const Shape& shape, bool merge_high)
{
    CPU_TRY(begin(cpu, insn));
    Vec s;
    CPU_TRY(read_src(cpu, insn, 1, s));
    if (insn.op[1].size == 8)
        s.q[1] = 0; // the unused upper elements convert exactly (0 ↔ 0.0)
    Vec r;
    CPU_TRY(execute(cpu, k, shape, r, s));
    if (merge_high) {
        Vec d = xmm(cpu, insn.op[0].reg);
        d.q[0] = r.q[0];
        r = d;
    }
    return write_dst(cpu, insn, 0, r);
}

// VCVTPS2PD/VCVTDQ2PD ymm, xmm/m128: four 32-bit elements widen to a
// 256-bit result, two per lane.
bool vex_widen(Cpu& cpu, const Insn& insn, Kernel k, const Shape& shape)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec s[2];
    CPU_TRY(vex_read(cpu, insn, 1, s));
    const Vec halves[2] = {s[0], Vec{{s[0].q[1], 0}}};
    Vec r[2];
    CPU_TRY(run_halves(cpu, r, [&](unsigned h, Vec& out) {
        out = Vec{};
        return execute(cpu, k, shape, out, halves[h]);
    }));
    return vex_write(cpu, insn, r);
}

// VCVTPD2PS/VCVTPD2DQ/VCVTTPD2DQ xmm, ymm/m256: four doubles narrow to an
// XMM result (bits 255:128 cleared).
bool vex_narrow(Cpu& cpu, const Insn& insn, Kernel k, const Shape& shape)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec s[2];
    CPU_TRY(vex_read(cpu, insn, 1, s));
    Vec r[2];
    CPU_TRY(run_halves(cpu, r, [&](unsigned h, Vec& out) {
        out = Vec{};
        return execute(cpu, k, shape, out, s[h]);
    }));
    const Vec out[2] = {Vec{{r[0].q[0], r[1].q[0]}}, Vec{}};
    return vex_write(cpu, insn, out);
}

// VCMPPS/PD/SS/SD with AVX's 32 predicates (SDM Vol 2A CMPPS, Table 3-1),
// built from the eight legacy compares: predicates 8-15 are unions,
// intersections and operand swaps of them (FALSE/TRUE constants), 16-31
// repeat 0-15 with the QNaN signalling reversed. The flags (IE, DE) and any
// trap come from a legacy compare of the right kind: EQ_OQ (quiet) or LT_OS
// (signalling) on the same operands.
bool signalling_predicate(unsigned p)
{
    const unsigned rel = p & 3;
    return p < 16 ? (rel == 1 || rel == 2) : (rel == 0 || rel == 3);
}

Vec compare_result(const std::array<Kernel, 8>& table, bool scalar, unsigned p, const Vec& d,
                   const Vec& s, u32 control)
{
    const u32 masked = (control | mxcsr::MASKS) & ~mxcsr::FLAGS;
    const auto run = [&](unsigned q, bool swap) {
        Vec a = swap ? s : d;
        table[q](a, swap ? d : s, masked);
        return a;
    };
    const auto both = [](const Vec& a, const Vec& b, bool any) {
        return any ? Vec{{a.q[0] | b.q[0], a.q[1] | b.q[1]}}
                   : Vec{{a.q[0] & b.q[0], a.q[1] & b.q[1]}};
    };
    Vec r;
    switch (p & 15) {
    case 8: r = both(run(0, false), run(3, false), true); break;  // EQ_UQ
    case 9: r = run(6, true); break;                              // NGE: NLE swapped
    case 10: r = run(5, true); break;                             // NGT: NLT swapped
    case 11: r = Vec{}; break;                                    // FALSE
    case 12: r = both(run(4, false), run(7, false), false); break; // NEQ_OQ
    case 13: r = run(2, true); break;                             // GE: LE swapped
    case 14: r = run(1, true); break;                             // GT: LT swapped
    case 15: r = Vec{{~0ull, ~0ull}}; break;                      // TRUE
    default: r = run(p & 7, false); break;
    }
    if (!scalar)
        return r;
    Vec out = d; // scalar forms: the upper elements come from the first source
    const unsigned bytes = &table == &cmpss_table ? 4 : 8;
    std::memcpy(out.q, r.q, bytes);
    return out;
}

bool vex_compare(Cpu& cpu, const Insn& insn, const std::array<Kernel, 8>& table, const Shape& shape,
                 bool scalar)
{
    const unsigned p = insn.imm & 31;
    const Kernel flags_from = table[signalling_predicate(p) ? 1 : 0];
    return vex_fp(cpu, insn, [&](Vec& d, const Vec& s) {
        Vec probe = d;
        CPU_TRY(execute(cpu, flags_from, shape, probe, s));
        d = compare_result(table, scalar, p, d, s, cpu.s.fpu.mxcsr);
        return true;
    });
}

bool wide_source(const Insn& insn)
{
    return is_vex(insn) && (insn.op[1].kind == OpKind::Ymm ||
                            (insn.op[1].kind == OpKind::Mem && insn.op[1].size == 32));
}

} // namespace

using enum Arith;

HANDLER(op_addps) { return fp<k_addps, ps(Add)>(cpu, insn); }
HANDLER(op_addss) { return fp<k_addss, ss(Add)>(cpu, insn); }
HANDLER(op_addpd) { return fp<k_addpd, pd(Add)>(cpu, insn); }
HANDLER(op_addsd) { return fp<k_addsd, sd(Add)>(cpu, insn); }
HANDLER(op_subps) { return fp<k_subps, ps(Sub)>(cpu, insn); }
HANDLER(op_subss) { return fp<k_subss, ss(Sub)>(cpu, insn); }
HANDLER(op_subpd) { return fp<k_subpd, pd(Sub)>(cpu, insn); }
HANDLER(op_subsd) { return fp<k_subsd, sd(Sub)>(cpu, insn); }
HANDLER(op_mulps) { return fp<k_mulps, ps(Mul)>(cpu, insn); }
HANDLER(op_mulss) { return fp<k_mulss, ss(Mul)>(cpu, insn); }
HANDLER(op_mulpd) { return fp<k_mulpd, pd(Mul)>(cpu, insn); }
HANDLER(op_mulsd) { return fp<k_mulsd, sd(Mul)>(cpu, insn); }
HANDLER(op_divps) { return fp<k_divps, ps(Div)>(cpu, insn); }
HANDLER(op_divss) { return fp<k_divss, ss(Div)>(cpu, insn); }
HANDLER(op_divpd) { return fp<k_divpd, pd(Div)>(cpu, insn); }
HANDLER(op_divsd) { return fp<k_divsd, sd(Div)>(cpu, insn); }
HANDLER(op_minps) { return fp<k_minps, ps()>(cpu, insn); }
HANDLER(op_minss) { return fp<k_minss, ss()>(cpu, insn); }
HANDLER(op_minpd) { return fp<k_minpd, pd()>(cpu, insn); }
HANDLER(op_minsd) { return fp<k_minsd, sd()>(cpu, insn); }
HANDLER(op_maxps) { return fp<k_maxps, ps()>(cpu, insn); }
HANDLER(op_maxss) { return fp<k_maxss, ss()>(cpu, insn); }
HANDLER(op_maxpd) { return fp<k_maxpd, pd()>(cpu, insn); }
HANDLER(op_maxsd) { return fp<k_maxsd, sd()>(cpu, insn); }
HANDLER(op_sqrtps) { return fp<k_sqrtps, ps()>(cpu, insn); }
HANDLER(op_sqrtss) { return fp<k_sqrtss, ss()>(cpu, insn); }
HANDLER(op_sqrtpd) { return fp<k_sqrtpd, pd()>(cpu, insn); }
HANDLER(op_sqrtsd) { return fp<k_sqrtsd, sd()>(cpu, insn); }
HANDLER(op_rcpps) { return fp<k_approx_packed<approx_reciprocal>, ps()>(cpu, insn); }
HANDLER(op_rcpss) { return fp<k_approx_scalar<approx_reciprocal>, ss()>(cpu, insn); }
HANDLER(op_rsqrtps) { return fp<k_approx_packed<approx_reciprocal_sqrt>, ps()>(cpu, insn); }
HANDLER(op_rsqrtss) { return fp<k_approx_scalar<approx_reciprocal_sqrt>, ss()>(cpu, insn); }
HANDLER(op_addsubps) { return fp<k_addsubps, ps(AddSub)>(cpu, insn); }
HANDLER(op_addsubpd) { return fp<k_addsubpd, pd(AddSub)>(cpu, insn); }
HANDLER(op_haddps) { return fp_horizontal<k_haddps, k_addps, Add, u32>(cpu, insn); }
HANDLER(op_haddpd) { return fp_horizontal<k_haddpd, k_addpd, Add, u64>(cpu, insn); }
HANDLER(op_hsubps) { return fp_horizontal<k_hsubps, k_subps, Sub, u32>(cpu, insn); }
HANDLER(op_hsubpd) { return fp_horizontal<k_hsubpd, k_subpd, Sub, u64>(cpu, insn); }

HANDLER(op_cmpps)
{
    if (is_vex(insn))
        return vex_compare(cpu, insn, cmpps_table, ps(), false);
    return fp_op(cpu, insn, cmpps_table[insn.imm & 7], ps());
}
HANDLER(op_cmpss)
{
    if (is_vex(insn))
        return vex_compare(cpu, insn, cmpss_table, ss(), true);
    return fp_op(cpu, insn, cmpss_table[insn.imm & 7], ss());
}
HANDLER(op_cmppd)
{
    if (is_vex(insn))
        return vex_compare(cpu, insn, cmppd_table, pd(), false);
    return fp_op(cpu, insn, cmppd_table[insn.imm & 7], pd());
}
HANDLER(op_cmpsd_sse)
{
    if (is_vex(insn))
        return vex_compare(cpu, insn, cmpsd_table, sd(), true);
    return fp_op(cpu, insn, cmpsd_table[insn.imm & 7], sd());
}
HANDLER(op_roundps) { return fp_op(cpu, insn, roundps_table[insn.imm & 15], ps()); }
HANDLER(op_roundss) { return fp_op(cpu, insn, roundss_table[insn.imm & 15], ss()); }
HANDLER(op_roundpd) { return fp_op(cpu, insn, roundpd_table[insn.imm & 15], pd()); }
HANDLER(op_roundsd) { return fp_op(cpu, insn, roundsd_table[insn.imm & 15], sd()); }
HANDLER(op_dpps) { return dot_product<u32>(cpu, insn, dpps_table[insn.imm & 0xFF]); }
HANDLER(op_dppd) { return dot_product<u64>(cpu, insn, dppd_table[insn.imm & 0xFF]); }

HANDLER(op_comiss) { return compare_flags(cpu, insn, k_comiss); }
HANDLER(op_ucomiss) { return compare_flags(cpu, insn, k_ucomiss); }
HANDLER(op_comisd) { return compare_flags(cpu, insn, k_comisd); }
HANDLER(op_ucomisd) { return compare_flags(cpu, insn, k_ucomisd); }

HANDLER(op_cvtps2pd)
{
    if (is_vex(insn) && is_vex256(insn))
        return vex_widen(cpu, insn, k_cvtps2pd, ps());
    return fp<k_cvtps2pd, ps()>(cpu, insn);
}
HANDLER(op_cvtpd2ps)
{
    if (wide_source(insn))
        return vex_narrow(cpu, insn, k_cvtpd2ps, pd(Narrow));
    return fp<k_cvtpd2ps, pd(Narrow)>(cpu, insn);
}
HANDLER(op_cvtss2sd) { return fp<k_cvtss2sd, ss()>(cpu, insn); }
HANDLER(op_cvtsd2ss) { return fp<k_cvtsd2ss, sd(Narrow)>(cpu, insn); }
HANDLER(op_cvtdq2ps) { return fp<k_cvtdq2ps, ps()>(cpu, insn); }
HANDLER(op_cvtps2dq) { return fp<k_cvtps2dq, ps()>(cpu, insn); }
HANDLER(op_cvttps2dq) { return fp<k_cvttps2dq, ps()>(cpu, insn); }
HANDLER(op_cvtdq2pd)
{
    if (is_vex(insn) && is_vex256(insn))
        return vex_widen(cpu, insn, k_cvtdq2pd, ps());
    return fp<k_cvtdq2pd, ps()>(cpu, insn);
}
HANDLER(op_cvtpd2dq)
{
    if (wide_source(insn))
        return vex_narrow(cpu, insn, k_cvtpd2dq, pd());
    return fp<k_cvtpd2dq, pd()>(cpu, insn);
}
HANDLER(op_cvttpd2dq)
{
    if (wide_source(insn))
        return vex_narrow(cpu, insn, k_cvttpd2dq, pd());
    return fp<k_cvttpd2dq, pd()>(cpu, insn);
}

HANDLER(op_cvtsi2ss) { return from_gpr(cpu, insn, k_cvtsi2ss_32, k_cvtsi2ss_64); }
HANDLER(op_cvtsi2sd) { return from_gpr(cpu, insn, k_cvtsi2sd_32, k_cvtsi2sd_64); }
HANDLER(op_cvtss2si) { return to_gpr(cpu, insn, k_cvtss2si_32, k_cvtss2si_64); }
HANDLER(op_cvttss2si) { return to_gpr(cpu, insn, k_cvttss2si_32, k_cvttss2si_64); }
HANDLER(op_cvtsd2si) { return to_gpr(cpu, insn, k_cvtsd2si_32, k_cvtsd2si_64); }
HANDLER(op_cvttsd2si) { return to_gpr(cpu, insn, k_cvttsd2si_32, k_cvttsd2si_64); }

HANDLER(op_cvtpi2ps) { return mmx_convert(cpu, insn, k_cvtdq2ps, ps(), true); }
HANDLER(op_cvtpi2pd) { return mmx_convert(cpu, insn, k_cvtdq2pd, ps(), false); }
HANDLER(op_cvtps2pi) { return mmx_convert(cpu, insn, k_cvtps2dq, ps(), false); }
HANDLER(op_cvttps2pi) { return mmx_convert(cpu, insn, k_cvttps2dq, ps(), false); }
HANDLER(op_cvtpd2pi) { return mmx_convert(cpu, insn, k_cvtpd2dq, pd(), false); }
HANDLER(op_cvttpd2pi) { return mmx_convert(cpu, insn, k_cvttpd2dq, pd(), false); }
