// 80-bit extended-precision arithmetic as the x87 performs it (SDM Vol 1
// ch. 4 and 8): rounding to the precision and rounding control of the FPU
// control word, denormals, unsupported encodings, NaN propagation, the six
// exception flags with their masks and the C1 round-up indication.
// Portable C++: no host long double and no soft-float library.
#pragma once

#include "cpu/state/cpu_vendor.h"
#include "mmu/base/types.h"

// x87 status-word exception flags (SDM Vol 1 8.1.3.1); the control word masks
// them with the same bits.
namespace fpx {
constexpr u16 IE = 1u << 0, DE = 1u << 1, ZE = 1u << 2, OE = 1u << 3, UE = 1u << 4, PE = 1u << 5,
              SF = 1u << 6;
constexpr u16 ALL = 0x3F;
} // namespace fpx

// One value in the double extended-precision format: explicit integer bit at
// bit 63 of the significand, sign and 15-bit biased exponent in sign_exp.
struct Float80 {
    u64 signif = 0;
    u16 sign_exp = 0;

    bool sign() const { return sign_exp >> 15; }
    u16 exp() const { return sign_exp & 0x7FFF; }
    bool operator==(const Float80&) const = default;
};

constexpr u16 F80_BIAS = 16383;
constexpr Float80 F80_INDEFINITE{0xC000000000000000ull, 0xFFFF}; // the "real indefinite" QNaN
constexpr Float80 F80_ZERO{0, 0};
constexpr Float80 F80_ONE{0x8000000000000000ull, 0x3FFF};

enum class FpClass : u8 {
    Zero,
    Denormal, // includes pseudo-denormals (exponent 0, integer bit set)
    Normal,
    Infinity,
    QNaN,
    SNaN,
    Unsupported, // unnormals, pseudo-NaNs and pseudo-infinities (SDM Vol 1 8.2.2)
};
FpClass classify(Float80 v);
inline bool is_nan(FpClass c)
{
    return c == FpClass::QNaN || c == FpClass::SNaN;
}
Float80 make_inf(bool sign);
Float80 make_zero(bool sign);
inline Float80 with_sign(Float80 v, bool sign)
{
    return Float80{v.signif, static_cast<u16>((v.sign_exp & 0x7FFF) | (sign ? 0x8000 : 0))};
}

// The control-word fields an operation needs and what it reports back.
struct FpEnv {
    u16 fcw = 0x037F;
    u16 flags = 0;   // fpx bits raised by the operation
    bool c1 = false; // the rounded result's magnitude was increased (SDM Vol 1 8.1.3.3)
    // Round to the precision control (24/53/64 bits). Only the basic
    // arithmetic and FSQRT obey PC; every other operation rounds to 64 bits.
    bool use_pc = false;
    // Operands (bit 0: a, bit 1: b) that were single/double denormals before
    // they were widened: they count as denormal operands for DE.
    u8 denormal_inputs = 0;
    // Whose x87 to imitate where Intel and AMD differ: FPREM/FPREM1 by an
    // infinity and FSCALE by a zero of a denormal (f80_rem, f80_scale).
    CpuVendor vendor = CpuVendor::Intel;

    unsigned rounding() const { return (fcw >> 10) & 3; } // 0 nearest, 1 down, 2 up, 3 zero
    unsigned precision() const;
    bool masked(u16 exception) const { return (fcw & exception) == exception; }
    void raise(u16 exception) { flags |= exception; }
};

constexpr unsigned RC_NEAREST = 0, RC_DOWN = 1, RC_UP = 2, RC_ZERO = 3;

// Every operation returns false when an unmasked invalid-operation,
// zero-divide or denormal-operand exception (or an unmasked overflow or
// underflow on a memory destination) means the destination must not be
// written; the flags in env say why.
bool f80_add(FpEnv& env, Float80 a, Float80 b, Float80& out);
bool f80_sub(FpEnv& env, Float80 a, Float80 b, Float80& out);
bool f80_mul(FpEnv& env, Float80 a, Float80 b, Float80& out);
bool f80_div(FpEnv& env, Float80 a, Float80 b, Float80& out);
bool f80_sqrt(FpEnv& env, Float80 a, Float80& out);
bool f80_round_to_int(FpEnv& env, Float80 a, Float80& out);     // FRNDINT
bool f80_scale(FpEnv& env, Float80 a, Float80 b, Float80& out); // FSCALE: a * 2^trunc(b)
// FXTRACT: exponent and significand; false when nothing is to be written.
bool f80_extract(FpEnv& env, Float80 a, Float80& exponent, Float80& significand);
// FPREM (ieee = false) and FPREM1 (ieee = true). `quotient` gets the low
// three quotient bits, `partial` is C2 (reduction incomplete).
bool f80_rem(FpEnv& env, Float80 a, Float80 b, bool ieee, Float80& out, u8& quotient,
             bool& partial);

// Comparison: less, equal, greater or unordered. `quiet` = FUCOM rules (only
// SNaN operands are invalid); otherwise any NaN is invalid.
enum class FpOrder : u8 { Less, Equal, Greater, Unordered };
FpOrder f80_compare(FpEnv& env, Float80 a, Float80 b, bool quiet);

// Conversions.
Float80 f80_from_int(i64 v);
bool f80_from_f32(FpEnv& env, u32 bits, Float80& out);
bool f80_from_f64(FpEnv& env, u64 bits, Float80& out);
bool f80_to_f32(FpEnv& env, Float80 a, u32& out);
bool f80_to_f64(FpEnv& env, Float80 a, u64& out);
// To a signed integer of `bytes` (2, 4 or 8), rounding with RC or truncating
// (FISTTP). Out-of-range and NaN operands give the integer indefinite.
bool f80_to_int(FpEnv& env, Float80 a, unsigned bytes, bool truncate, i64& out);
// Packed BCD (FBLD/FBSTP): 18 digits in bytes 0-8, sign in bit 7 of byte 9.
Float80 f80_from_bcd(const u8 bcd[10]);
bool f80_to_bcd(FpEnv& env, Float80 a, u8 bcd[10]);

// FLD1 .. FLDZ constants, rounded per RC from their exact values (the x87
// keeps them to more than 64 bits and raises no exception).
enum class FpConstant : u8 { One, L2T, L2E, Pi, LG2, LN2, Zero };
Float80 f80_constant(FpConstant c, unsigned rounding);

// Transcendentals (cpu/x87/float80_math.cpp). Arguments out of the
// instruction's range behave as the SDM describes (FSIN etc. set `out_of_range`
// = C2 and leave the operand). Results are computed with ~128-bit internal
// precision and then rounded once, so they are correctly rounded except in
// astronomically rare cases.
bool f80_f2xm1(FpEnv& env, Float80 x, Float80& out);
bool f80_yl2x(FpEnv& env, Float80 x, Float80 y, Float80& out);   // y * log2(x)
bool f80_yl2xp1(FpEnv& env, Float80 x, Float80 y, Float80& out); // y * log2(x + 1)
bool f80_atan2(FpEnv& env, Float80 y, Float80 x, Float80& out);  // FPATAN: atan(y / x)
// FSIN, FCOS, FSINCOS, FPTAN: which results are wanted.
bool f80_sin_cos(FpEnv& env, Float80 x, Float80* sin_out, Float80* cos_out, bool& out_of_range);
bool f80_tan(FpEnv& env, Float80 x, Float80& out, bool& out_of_range);
