// Pieces of the 80-bit arithmetic shared by cpu/x87/float80.cpp and
// cpu/x87/float80_math.cpp; nothing outside those two files includes this.
#pragma once

#include "cpu/x87/float80.h"

__extension__ typedef unsigned __int128 u128;

namespace f80detail {

// A finite value as sign * sig * 2^(exp - 63); sig has bit 63 set unless the
// value is zero. Denormals are normalized here (exp below -16382).
struct Unpacked {
    bool sign = false;
    i32 exp = 0;
    u64 sig = 0;
};
Unpacked unpack(Float80 v);

inline unsigned clz128(u128 v)
{
    const u64 hi = static_cast<u64>(v >> 64);
    return hi ? static_cast<unsigned>(__builtin_clzll(hi))
              : 64 + static_cast<unsigned>(__builtin_clzll(static_cast<u64>(v)));
}

inline u128 shift_right_jam(u128 v, unsigned n)
{
    if (n == 0)
        return v;
    if (n >= 128)
        return v != 0;
    return (v >> n) | ((v & ((u128(1) << n) - 1)) != 0);
}

// Rounds sign * sig * 2^(exp - 127) (sig normalized: bit 127 set, or zero)
// to the 80-bit format keeping `precision` significand bits, with the x87's
// overflow/underflow rules (masked: infinity/largest or denormal; unmasked:
// exponent wrapped by 24576, SDM Vol 1 4.9.1.4-5). Raises OE/UE/PE, sets C1.
Float80 round_pack(FpEnv& env, bool sign, i32 exp, u128 sig, unsigned precision);

// The result of an operation with a NaN or unsupported operand (a may be
// the only operand: pass b = a). Returns false when an unmasked IE means no
// result is written.
bool propagate_nan(FpEnv& env, Float80 a, Float80 b, Float80& out);
// The invalid-operation result: real indefinite, or false when IE is unmasked.
bool invalid(FpEnv& env, Float80& out);

} // namespace f80detail
