// Random floating-point operands and control words with the interesting
// classes over-represented (zeros, denormals, infinities, quiet and signalling
// NaNs, values near overflow and underflow, small integers, unnormals), shared
// by the host comparisons (tests/cpu/simd_host_test.cpp, avx_host_test.cpp,
// x87_test.cpp) and cpu-difftest (tests/difftest/). `R` is any generator with
// bits() (64 random bits) and below(n) (uniform in [0, n)).
#pragma once

#include "cpu/x87/float80.h"
#include "mmu/base/types.h"

namespace random_fp {

// An IEEE binary value of 1 + exp_bits + frac_bits bits (binary32: 8, 23;
// binary64: 11, 52).
template <typename R> u64 ieee(R& g, unsigned exp_bits, unsigned frac_bits)
{
    const u64 sign = (g.bits() & 1) << (exp_bits + frac_bits);
    const u64 exp_max = (1ull << exp_bits) - 1, frac = g.bits() & ((1ull << frac_bits) - 1);
    const u64 quiet = 1ull << (frac_bits - 1);
    auto make = [&](u64 e, u64 f) { return sign | (e << frac_bits) | f; };
    switch (g.below(16)) {
    case 0:
        return make(0, 0); // zero
    case 1:
        return make(0, frac ? frac : 1); // denormal
    case 2:
        return make(exp_max, 0); // infinity
    case 3:
        return make(exp_max, quiet | frac); // QNaN
    case 4:
        return make(exp_max, (frac & ~quiet) | 1); // SNaN
    case 5:
        return make(exp_max - 1 - g.below(3), frac); // near overflow
    case 6:
        return make(1 + g.below(3), frac); // near underflow
    case 7:
        return make((exp_max >> 1) + g.below(4), 0); // small integers
    case 8:
        return make((exp_max >> 1) + g.below(64), frac & ~0xFFFull); // few digits
    case 9:
        return make((exp_max >> 1) - 1, frac); // 0.5..1
    case 10:
        return g.bits() & ((1ull << (1 + exp_bits + frac_bits)) - 1);
    default:
        return make(1 + g.below(static_cast<unsigned>(exp_max - 1)), frac);
    }
}
template <typename R> u32 f32(R& g)
{
    return static_cast<u32>(ieee(g, 8, 23));
}
template <typename R> u64 f64(R& g)
{
    return ieee(g, 11, 52);
}

// A binary value whose low `cut` fraction bits sit on or next to a rounding
// boundary: exactly half an ulp of the narrower result, just below or just
// above it, or all ones (a carry into the kept bits). `cut` is 29 for binary64
// to binary32, 13 for binary32 to binary16, and so on.
template <typename R> u64 near_rounding_boundary(R& g, u64 value, unsigned cut)
{
    const u64 half = 1ull << (cut - 1), low = (1ull << cut) - 1;
    static constexpr int deltas[] = {0, -1, 1, 0};
    const unsigned pick = static_cast<unsigned>(g.below(4));
    const u64 tail = pick == 3 ? low : half + static_cast<u64>(deltas[pick]);
    return (value & ~low) | (tail & low);
}

// An x87 register value: the IEEE classes plus pseudo-denormals' relatives
// (denormals with any J bit), unnormals and short integers.
template <typename R> Float80 f80(R& g)
{
    const u16 s = (g.bits() & 1) ? 0x8000 : 0;
    u64 m = g.bits() | (1ull << 63);
    if (g.below(3) == 0)
        m &= ~0ull << (32 + g.below(32));
    switch (g.below(16)) {
    case 0:
        return Float80{0, s};
    case 1:
        return Float80{1ull << 63, static_cast<u16>(s | 0x7FFF)};
    case 2:
        return Float80{0xC000000000000000ull | (g.bits() >> 3), static_cast<u16>(s | 0x7FFF)};
    case 3:
        return Float80{(1ull << 63) | (g.bits() >> 3) | 1, static_cast<u16>(s | 0x7FFF)};
    case 4:
        return Float80{g.bits() >> 1, s}; // denormal
    case 5:
        return Float80{g.bits() >> 1, static_cast<u16>(s | (1 + g.below(0x7FFE)))}; // unnormal
    case 6:
    case 7:
        return f80_from_int(static_cast<i64>(g.bits() >> (32 + g.below(32))) * (s ? -1 : 1));
    case 8:
        return Float80{m, static_cast<u16>(s | g.below(64))};
    default:
        return Float80{m, static_cast<u16>(s | (0x3FFF - 70 + g.below(140)))};
    }
}

// MXCSR: random rounding, DAZ and FTZ; every exception masked most of the
// time, random masks otherwise; sometimes sticky flags already set.
template <typename R> u32 mxcsr(R& g)
{
    u32 m =
        static_cast<u32>((g.below(4) << 13) | (g.below(2) ? 0x40 : 0) | (g.below(2) ? 0x8000 : 0));
    m |= g.below(4) == 0 ? static_cast<u32>(g.bits() & 0x1F80) : 0x1F80;
    if (g.below(4) == 0)
        m |= static_cast<u32>(g.bits() & 0x3F);
    return m;
}

} // namespace random_fp
