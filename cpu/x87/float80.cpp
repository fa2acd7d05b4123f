// 80-bit extended-precision arithmetic with the x87's rounding, exception
// and NaN rules (SDM Vol 1 ch. 4.8-4.9, 8.5). Checked bit for bit against
// the host's x87 by tests/cpu/float80_test.cpp.
#include "cpu/x87/float80.h"

#include "cpu/x87/float80_internal.h"

using namespace f80detail;

namespace {

constexpr u64 J_BIT = 1ull << 63;
constexpr u64 QUIET_BIT = 1ull << 62;
constexpr i32 WRAP = 24576; // exponent adjustment of unmasked OE/UE (SDM Vol 1 4.9.1.4)

// A destination format for rounding: significand bits, exponent bias and
// the largest biased exponent of a finite value.
struct Format {
    unsigned precision;
    i32 bias;
    i32 emax;
};
constexpr Format EXT80{64, 16383, 0x7FFE};
constexpr Format SINGLE{24, 127, 254};
constexpr Format DOUBLE{53, 1023, 2046};

// A rounded value before packing: biased exponent and the significand
// left-aligned in 64 bits (bit 63 = integer bit; 0 for denormals).
struct Rounded {
    bool sign = false;
    i32 exp = 0;
    u64 field = 0;
};

// Rounds the 128-bit v to its top p bits (p <= 64), returning them
// left-aligned in 64 bits.
u64 round_field(u128 v, unsigned p, unsigned rc, bool sign, bool& carry, bool& inexact, bool& up)
{
    const unsigned drop = 128 - p;
    const u128 mask = (u128(1) << drop) - 1;
    const u128 rem = v & mask;
    const u128 half = u128(1) << (drop - 1);
    u128 kept = v >> drop;
    inexact = rem != 0;
    bool inc = false;
    switch (rc) {
    case RC_NEAREST:
        inc = rem > half || (rem == half && (kept & 1));
        break;
    case RC_DOWN:
        inc = inexact && sign;
        break;
    case RC_UP:
        inc = inexact && !sign;
        break;
    default:
        break;
    }
    up = inc;
    kept += inc;
    carry = (kept >> p) != 0;
    if (carry)
        kept >>= 1;
    return static_cast<u64>(kept << (64 - p));
}

// Rounds sign * sig * 2^(exp - 127) into `f` with precision p. Returns false
// when an unmasked overflow/underflow leaves a memory destination unwritten.
bool round_generic(FpEnv& env, bool sign, i32 exp, u128 sig, const Format& f, unsigned p,
                   bool register_dest, Rounded& r)
{
    r.sign = sign;
    env.c1 = false;
    if (sig == 0) {
        r.exp = 0;
        r.field = 0;
        return true;
    }
    const unsigned rc = env.rounding();
    bool carry, inexact, up;
    i32 e = exp + f.bias;
    if (e < 1) {
        if (env.masked(fpx::UE)) {
            // Tininess is detected before rounding on the x87 (checked
            // against hardware): a tiny result that is inexact after
            // denormalization signals UE.
            const u128 denorm =
                shift_right_jam(sig, static_cast<unsigned>(1 - e < 200 ? 1 - e : 200));
            r.field = round_field(denorm, p, rc, sign, carry, inexact, up);
            r.exp = (r.field >> 63) ? 1 : 0;
            if (inexact) {
                env.raise(fpx::UE | fpx::PE);
                env.c1 = up;
            }
            return true;
        }
        env.raise(fpx::UE);
        if (!register_dest)
            return false;
        e += WRAP;
        if (e < 1) {
            // Too small even after wrapping (FSCALE): the x87 gives a zero.
            env.raise(fpx::PE);
            r.exp = 0;
            r.field = 0;
            return true;
        }
    }
    r.field = round_field(sig, p, rc, sign, carry, inexact, up);
    if (carry)
        ++e;
    if (e > f.emax) {
        if (env.masked(fpx::OE)) {
            env.raise(fpx::OE | fpx::PE);
            const bool to_inf =
                rc == RC_NEAREST || (rc == RC_UP && !sign) || (rc == RC_DOWN && sign);
            if (to_inf) {
                r.exp = f.emax + 1;
                r.field = J_BIT;
                env.c1 = true;
            } else {
                r.exp = f.emax;
                r.field = ~0ull << (64 - p);
            }
            return true;
        }
        env.raise(fpx::OE);
        if (!register_dest)
            return false;
        e -= WRAP;
        if (e > f.emax) {
            // Too large even after wrapping (FSCALE): the x87 gives infinity.
            env.raise(fpx::PE);
            env.c1 = true;
            r.exp = f.emax + 1;
            r.field = J_BIT;
            return true;
        }
    }
    r.exp = e;
    if (inexact) {
        env.raise(fpx::PE);
        env.c1 = up;
    }
    return true;
}

Float80 pack80(const Rounded& r)
{
    return Float80{r.field, static_cast<u16>((r.sign ? 0x8000 : 0) | (r.exp & 0x7FFF))};
}

u32 pack32(const Rounded& r)
{
    return (r.sign ? 0x80000000u : 0) | (static_cast<u32>(r.exp) << 23) |
           static_cast<u32>((r.field >> 40) & 0x7FFFFF);
}

u64 pack64(const Rounded& r)
{
    return (r.sign ? (1ull << 63) : 0) | (static_cast<u64>(r.exp) << 52) |
           ((r.field >> 11) & 0xFFFFFFFFFFFFFull);
}

Float80 quiet(Float80 v)
{
    v.signif |= QUIET_BIT;
    return v;
}

// Raises DE for denormal operands; false when DE is unmasked (the x87 then
// does not execute the instruction: SDM Vol 1 8.5.2).
bool check_denormal(FpEnv& env, FpClass a, FpClass b = FpClass::Zero)
{
    if (a != FpClass::Denormal && b != FpClass::Denormal)
        return true;
    env.raise(fpx::DE);
    return env.masked(fpx::DE);
}

bool is_nan_or_unsupported(FpClass c)
{
    return is_nan(c) || c == FpClass::Unsupported;
}

// An operand's class, counting a widened single/double denormal as denormal.
FpClass operand_class(const FpEnv& env, Float80 v, unsigned index)
{
    const FpClass c = classify(v);
    return c == FpClass::Normal && (env.denormal_inputs >> index & 1) ? FpClass::Denormal : c;
}

u128 widen(u64 sig)
{
    return u128(sig) << 64;
}

Float80 from_magnitude(bool sign, u64 mag)
{
    if (mag == 0)
        return make_zero(sign);
    const unsigned n = static_cast<unsigned>(__builtin_clzll(mag));
    return Float80{mag << n, static_cast<u16>((sign ? 0x8000 : 0) | (F80_BIAS + 63 - n))};
}

// Rounds |v| = sig * 2^(e - 63) to an integer (e <= 63).
u64 round_integer(u64 sig, i32 e, bool sign, unsigned rc, bool& inexact, bool& up)
{
    u64 kept = 0;
    bool half = false, sticky = false;
    if (e >= 63) {
        kept = sig;
    } else if (e >= 0) {
        const unsigned fr = static_cast<unsigned>(63 - e);
        kept = sig >> fr;
        const u64 rem = sig << (64 - fr);
        half = rem >> 63;
        sticky = (rem << 1) != 0;
    } else if (e == -1) {
        half = true;
        sticky = (sig << 1) != 0;
    } else {
        sticky = sig != 0;
    }
    inexact = half || sticky;
    bool inc = false;
    switch (rc) {
    case RC_NEAREST:
        inc = half && (sticky || (kept & 1));
        break;
    case RC_DOWN:
        inc = inexact && sign;
        break;
    case RC_UP:
        inc = inexact && !sign;
        break;
    default:
        break;
    }
    up = inc;
    return kept + inc;
}

bool add_sub(FpEnv& env, Float80 a, Float80 b, bool subtract, Float80& out)
{
    const FpClass ca = operand_class(env, a, 0), cb = operand_class(env, b, 1);
    if (is_nan_or_unsupported(ca) || is_nan_or_unsupported(cb))
        return propagate_nan(env, a, b, out);
    const bool sa = a.sign(), sb = b.sign() ^ subtract;
    if (ca == FpClass::Infinity || cb == FpClass::Infinity) {
        if (ca == FpClass::Infinity && cb == FpClass::Infinity && sa != sb)
            return invalid(env, out);
        if (!check_denormal(env, ca, cb))
            return false;
        out = make_inf(ca == FpClass::Infinity ? sa : sb);
        return true;
    }
    if (!check_denormal(env, ca, cb))
        return false;
    const unsigned p = env.precision();
    if (ca == FpClass::Zero && cb == FpClass::Zero) {
        env.c1 = false;
        out = make_zero(sa == sb ? sa : env.rounding() == RC_DOWN);
        return true;
    }
    if (ca == FpClass::Zero || cb == FpClass::Zero) {
        const Unpacked u = unpack(ca == FpClass::Zero ? b : a);
        const bool sign = ca == FpClass::Zero ? sb : sa;
        out = round_pack(env, sign, u.exp, widen(u.sig), p);
        return true;
    }
    Unpacked ua = unpack(a), ub = unpack(b);
    ub.sign = sb;
    if (ua.exp < ub.exp || (ua.exp == ub.exp && ua.sig < ub.sig)) {
        Unpacked t = ua;
        ua = ub;
        ub = t;
    }
    const u128 x = u128(ua.sig) << 62;
    const u128 y = shift_right_jam(
        u128(ub.sig) << 62, static_cast<unsigned>(ua.exp - ub.exp > 200 ? 200 : ua.exp - ub.exp));
    u128 sum;
    if (ua.sign == ub.sign) {
        sum = x + y;
    } else {
        sum = x - y;
        if (sum == 0) {
            env.c1 = false;
            out = make_zero(env.rounding() == RC_DOWN);
            return true;
        }
    }
    const unsigned n = clz128(sum);
    out = round_pack(env, ua.sign, ua.exp + 2 - static_cast<i32>(n), sum << n, p);
    return true;
}

} // namespace

namespace f80detail {

Unpacked unpack(Float80 v)
{
    Unpacked u;
    u.sign = v.sign();
    u.sig = v.signif;
    if (u.sig == 0)
        return u;
    if (v.exp() == 0) {
        const unsigned n = static_cast<unsigned>(__builtin_clzll(u.sig));
        u.sig <<= n;
        u.exp = 1 - F80_BIAS - static_cast<i32>(n);
    } else {
        u.exp = v.exp() - F80_BIAS;
    }
    return u;
}

Float80 round_pack(FpEnv& env, bool sign, i32 exp, u128 sig, unsigned precision)
{
    Rounded r;
    round_generic(env, sign, exp, sig, EXT80, precision, true, r);
    return pack80(r);
}

bool invalid(FpEnv& env, Float80& out)
{
    env.raise(fpx::IE);
    env.c1 = false;
    if (!env.masked(fpx::IE))
        return false;
    out = F80_INDEFINITE;
    return true;
}

bool propagate_nan(FpEnv& env, Float80 a, Float80 b, Float80& out)
{
    const FpClass ca = classify(a), cb = classify(b);
    env.c1 = false;
    if (ca == FpClass::Unsupported || cb == FpClass::Unsupported)
        return invalid(env, out);
    if (ca == FpClass::SNaN || cb == FpClass::SNaN) {
        env.raise(fpx::IE);
        if (!env.masked(fpx::IE))
            return false;
    }
    if (is_nan(ca) && is_nan(cb) && ca != cb) // SNaN and QNaN: the QNaN (SDM Vol 1 Table 4-7)
        out = ca == FpClass::QNaN ? a : b;
    else if (is_nan(ca) && is_nan(cb)) {
        // Two NaNs of one kind: the one with the larger significand, quieted;
        // on a tie the positive one.
        const u64 ma = a.signif | QUIET_BIT, mb = b.signif | QUIET_BIT;
        if (ma != mb)
            out = quiet(ma > mb ? a : b);
        else
            out = quiet(a.sign() ? b : a);
    } else {
        out = quiet(is_nan(ca) ? a : b);
    }
    return true;
}

} // namespace f80detail

FpClass classify(Float80 v)
{
    const u16 e = v.exp();
    const bool j = v.signif >> 63;
    if (e == 0) {
        if (v.signif == 0)
            return FpClass::Zero;
        return FpClass::Denormal;
    }
    if (e == 0x7FFF) {
        if (!j)
            return FpClass::Unsupported;
        if ((v.signif << 1) == 0)
            return FpClass::Infinity;
        return (v.signif & QUIET_BIT) ? FpClass::QNaN : FpClass::SNaN;
    }
    return j ? FpClass::Normal : FpClass::Unsupported;
}

Float80 make_inf(bool sign)
{
    return Float80{J_BIT, static_cast<u16>(sign ? 0xFFFF : 0x7FFF)};
}

Float80 make_zero(bool sign)
{
    return Float80{0, static_cast<u16>(sign ? 0x8000 : 0)};
}

unsigned FpEnv::precision() const
{
    if (!use_pc)
        return 64;
    switch ((fcw >> 8) & 3) {
    case 0:
        return 24;
    case 2:
        return 53;
    default:
        return 64; // 01 is reserved; the x87 treats it as extended
    }
}

bool f80_add(FpEnv& env, Float80 a, Float80 b, Float80& out)
{
    return add_sub(env, a, b, false, out);
}

bool f80_sub(FpEnv& env, Float80 a, Float80 b, Float80& out)
{
    return add_sub(env, a, b, true, out);
}

bool f80_mul(FpEnv& env, Float80 a, Float80 b, Float80& out)
{
    const FpClass ca = operand_class(env, a, 0), cb = operand_class(env, b, 1);
    if (is_nan_or_unsupported(ca) || is_nan_or_unsupported(cb))
        return propagate_nan(env, a, b, out);
    const bool sign = a.sign() != b.sign();
    if (ca == FpClass::Infinity || cb == FpClass::Infinity) {
        if (ca == FpClass::Zero || cb == FpClass::Zero)
            return invalid(env, out);
        if (!check_denormal(env, ca, cb))
            return false;
        out = make_inf(sign);
        return true;
    }
    if (!check_denormal(env, ca, cb))
        return false;
    if (ca == FpClass::Zero || cb == FpClass::Zero) {
        env.c1 = false;
        out = make_zero(sign);
        return true;
    }
    const Unpacked ua = unpack(a), ub = unpack(b);
    const u128 prod = u128(ua.sig) * ub.sig;
    const unsigned n = clz128(prod);
    out = round_pack(env, sign, ua.exp + ub.exp + 1 - static_cast<i32>(n), prod << n,
                     env.precision());
    return true;
}

bool f80_div(FpEnv& env, Float80 a, Float80 b, Float80& out)
{
    const FpClass ca = operand_class(env, a, 0), cb = operand_class(env, b, 1);
    if (is_nan_or_unsupported(ca) || is_nan_or_unsupported(cb))
        return propagate_nan(env, a, b, out);
    const bool sign = a.sign() != b.sign();
    if (ca == FpClass::Infinity) {
        if (cb == FpClass::Infinity)
            return invalid(env, out);
        if (!check_denormal(env, cb))
            return false;
        out = make_inf(sign);
        return true;
    }
    if (cb == FpClass::Infinity) {
        if (!check_denormal(env, ca))
            return false;
        env.c1 = false;
        out = make_zero(sign);
        return true;
    }
    if (cb == FpClass::Zero) {
        if (ca == FpClass::Zero)
            return invalid(env, out);
        env.raise(fpx::ZE); // takes priority over DE, which is not reported
        env.c1 = false;
        if (!env.masked(fpx::ZE))
            return false;
        out = make_inf(sign);
        return true;
    }
    if (!check_denormal(env, ca, cb))
        return false;
    if (ca == FpClass::Zero) {
        env.c1 = false;
        out = make_zero(sign);
        return true;
    }
    const Unpacked ua = unpack(a), ub = unpack(b);
    // Long division: one integer quotient bit, then two 64-bit words.
    u128 rem = ua.sig;
    const u64 q_hi = rem >= ub.sig;
    rem -= q_hi ? ub.sig : 0;
    rem <<= 64;
    const u64 q_mid = static_cast<u64>(rem / ub.sig);
    rem = (rem % ub.sig) << 64;
    const u64 q_lo = static_cast<u64>(rem / ub.sig);
    const bool sticky = (rem % ub.sig) != 0;
    u128 q;
    i32 exp = ua.exp - ub.exp;
    if (q_hi) {
        q = (u128(1) << 127) | (u128(q_mid) << 63) | (q_lo >> 1);
        q |= (q_lo & 1) | sticky;
    } else {
        q = (u128(q_mid) << 64) | q_lo | sticky;
        exp -= 1;
    }
    out = round_pack(env, sign, exp, q, env.precision());
    return true;
}

bool f80_sqrt(FpEnv& env, Float80 a, Float80& out)
{
    const FpClass ca = classify(a);
    if (is_nan_or_unsupported(ca))
        return propagate_nan(env, a, a, out);
    env.c1 = false;
    if (ca == FpClass::Zero) {
        out = a;
        return true;
    }
    if (a.sign())
        return invalid(env, out);
    if (ca == FpClass::Infinity) {
        out = a;
        return true;
    }
    if (!check_denormal(env, ca))
        return false;
    const Unpacked u = unpack(a);
    // sqrt(sig * 2^(e-63)): make the exponent of the radicand even.
    const bool odd = (u.exp & 1) != 0;
    u128 x = u128(u.sig) << (odd ? 64 : 63);
    const i32 k = odd ? (u.exp - 127) / 2 : (u.exp - 126) / 2;
    u128 root = 0, bit = u128(1) << 126;
    while (bit) {
        if (x >= root + bit) {
            x -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    // root = floor(sqrt), x = remainder. The next bit is 1 iff x > root, and
    // the square root of an integer is never exactly halfway.
    u128 sig = root << 64;
    if (x > root)
        sig |= u128(1) << 63;
    if (x != 0)
        sig |= 1;
    out = round_pack(env, false, k + 63, sig, env.precision());
    return true;
}

bool f80_round_to_int(FpEnv& env, Float80 a, Float80& out)
{
    const FpClass ca = classify(a);
    if (is_nan_or_unsupported(ca))
        return propagate_nan(env, a, a, out);
    env.c1 = false;
    if (ca == FpClass::Zero || ca == FpClass::Infinity) {
        out = a;
        return true;
    }
    if (!check_denormal(env, ca))
        return false;
    const Unpacked u = unpack(a);
    if (u.exp >= 63) {
        out = a;
        return true;
    }
    bool inexact, up;
    const u64 mag = round_integer(u.sig, u.exp, u.sign, env.rounding(), inexact, up);
    if (inexact) {
        env.raise(fpx::PE);
        env.c1 = up;
    }
    out = from_magnitude(u.sign, mag);
    return true;
}

namespace {

// FPREM/FPREM1 of a finite value by an infinity and FSCALE of a finite value
// by a zero return the value itself (SDM Vol 2A FPREM, FSCALE tables). A
// (true) denormal with UE unmasked shows whether it is rounded on the way:
// AMD rounds it as any tiny result, raising UE and biasing the exponent by
// 24576 (AMD EPYC host: fprem cw=076b a=0000:00000414dea2f4ee b=-inf gives
// 5fec:829bd45e9dc00000 with DE and UE); Intel returns it unchanged with DE
// alone (Intel host, notes/intel-host/unit-x87-float80.txt: that same case,
// fprem1 cw=0f4e a=0000:00000009a3fcfa11 b=-inf, fscale cw=076f
// a=8000:00006a805748e27c b=+0 and cw=0f46 a=8000:000000000084fb52 b=-0).
// Intel still rounds a denormal when the result comes from arithmetic that
// happens to leave it unchanged (FPREM by a larger finite value, FSCALE by
// 0 < |b| < 1: ~130 such host cases agreed with AMD), and renormalizes a
// pseudo-denormal as AMD does. With UE masked a true denormal passes
// unchanged on both, exact and without UE.
bool passes_denormal_through(const FpEnv& env, Float80 a)
{
    return env.vendor == CpuVendor::Intel && a.exp() == 0 && !(a.signif >> 63);
}

} // namespace

bool f80_scale(FpEnv& env, Float80 a, Float80 b, Float80& out)
{
    const FpClass ca = classify(a), cb = classify(b);
    if (is_nan_or_unsupported(ca) || is_nan_or_unsupported(cb))
        return propagate_nan(env, a, b, out);
    env.c1 = false;
    if (cb == FpClass::Infinity) {
        if (b.sign()) {
            if (ca == FpClass::Infinity)
                return invalid(env, out);
            if (!check_denormal(env, ca))
                return false;
            out = make_zero(a.sign());
        } else {
            if (ca == FpClass::Zero)
                return invalid(env, out);
            if (!check_denormal(env, ca))
                return false;
            out = make_inf(a.sign());
        }
        return true;
    }
    if (!check_denormal(env, ca, cb))
        return false;
    if (ca == FpClass::Zero || ca == FpClass::Infinity) {
        out = a;
        return true;
    }
    if (cb == FpClass::Zero && passes_denormal_through(env, a)) {
        out = a;
        return true;
    }
    // trunc(b), clamped far beyond any exponent that can still matter.
    i32 n = 0;
    if (cb != FpClass::Zero) {
        const Unpacked ub = unpack(b);
        if (ub.exp >= 0) {
            const u64 mag = ub.exp >= 20 ? (1u << 20) : (ub.sig >> (63 - ub.exp));
            n = ub.sign ? -static_cast<i32>(mag) : static_cast<i32>(mag);
        }
    }
    const Unpacked ua = unpack(a);
    out = round_pack(env, ua.sign, ua.exp + n, widen(ua.sig), 64);
    return true;
}

bool f80_extract(FpEnv& env, Float80 a, Float80& exponent, Float80& significand)
{
    const FpClass ca = classify(a);
    env.c1 = false;
    if (is_nan_or_unsupported(ca)) {
        if (!propagate_nan(env, a, a, significand))
            return false;
        exponent = significand;
        return true;
    }
    if (ca == FpClass::Infinity) {
        exponent = make_inf(false);
        significand = a;
        return true;
    }
    if (ca == FpClass::Zero) {
        env.raise(fpx::ZE);
        if (!env.masked(fpx::ZE))
            return false;
        exponent = make_inf(true);
        significand = a;
        return true;
    }
    if (!check_denormal(env, ca))
        return false;
    const Unpacked u = unpack(a);
    exponent = f80_from_int(u.exp);
    significand = Float80{u.sig, static_cast<u16>((u.sign ? 0x8000 : 0) | F80_BIAS)};
    return true;
}

bool f80_rem(FpEnv& env, Float80 a, Float80 b, bool ieee, Float80& out, u8& quotient, bool& partial)
{
    quotient = 0;
    partial = false;
    const FpClass ca = classify(a), cb = classify(b);
    if (is_nan_or_unsupported(ca) || is_nan_or_unsupported(cb))
        return propagate_nan(env, a, b, out);
    env.c1 = false;
    if (ca == FpClass::Infinity || cb == FpClass::Zero)
        return invalid(env, out);
    if (!check_denormal(env, ca, cb))
        return false;
    if (ca == FpClass::Zero) {
        out = a;
        return true;
    }
    const Unpacked ua = unpack(a), ub = unpack(b);
    const i32 d = ua.exp - ub.exp;
    if (cb == FpClass::Infinity && passes_denormal_through(env, a)) {
        out = a;
        return true;
    }
    if (cb == FpClass::Infinity || (d < 0 && !(ieee && d == -1))) {
        // No reduction; the operand is renormalized (a pseudo-denormal
        // comes back with exponent 1).
        out = round_pack(env, ua.sign, ua.exp, widen(ua.sig), 64);
        return true;
    }
    // a = A * 2^(ea-63), b = B * 2^(eb-63). Reduce A * 2^k modulo B, where
    // k = d (complete) or a chunk of N = 32 + d % 32 bits (partial, as the
    // AMD manuals specify and Intel parts do).
    i32 k = d;
    i32 rem_exp = ub.exp;
    if (d >= 64) {
        partial = true;
        k = 32 + d % 32;
        rem_exp = ua.exp - k;
    }
    u128 r;
    u64 q = 0;
    bool sign = ua.sign;
    if (k >= 0) {
        const u128 num = u128(ua.sig) << k;
        r = num % ub.sig;
        q = static_cast<u64>(num / ub.sig);
    } else {
        r = ua.sig; // d == -1: |a| < |b|, quotient 0 so far; A/2 compared below
    }
    if (ieee && !partial) {
        // Round the quotient to nearest even: compare 2r with B.
        const u128 twice = k >= 0 ? (r << 1) : r; // for d == -1 the remainder is a = A/2 in B units
        if (twice > ub.sig || (twice == ub.sig && (q & 1))) {
            r = k >= 0 ? u128(ub.sig) - r : (u128(ub.sig) << 1) - r;
            if (k < 0)
                rem_exp = ub.exp - 1;
            ++q;
            sign = !sign;
        } else if (k < 0) {
            rem_exp = ub.exp - 1;
        }
    }
    quotient = static_cast<u8>(partial ? 0 : (q & 7));
    if (r == 0) {
        out = make_zero(ua.sign);
        return true;
    }
    const unsigned n = clz128(r);
    out = round_pack(env, sign, rem_exp + 64 - static_cast<i32>(n), r << n, 64);
    return true;
}

FpOrder f80_compare(FpEnv& env, Float80 a, Float80 b, bool quiet)
{
    const FpClass ca = operand_class(env, a, 0), cb = operand_class(env, b, 1);
    env.c1 = false;
    if (is_nan_or_unsupported(ca) || is_nan_or_unsupported(cb)) {
        if (!quiet || ca == FpClass::SNaN || cb == FpClass::SNaN || ca == FpClass::Unsupported ||
            cb == FpClass::Unsupported)
            env.raise(fpx::IE);
        return FpOrder::Unordered;
    }
    if (ca == FpClass::Denormal || cb == FpClass::Denormal)
        env.raise(fpx::DE);
    if (ca == FpClass::Zero && cb == FpClass::Zero)
        return FpOrder::Equal;
    if (a.sign() != b.sign())
        return a.sign() && !(ca == FpClass::Zero && cb == FpClass::Zero) ? FpOrder::Less
                                                                         : FpOrder::Greater;
    const Unpacked ua = unpack(a), ub = unpack(b);
    const i32 ea = ca == FpClass::Zero ? INT32_MIN : ca == FpClass::Infinity ? INT32_MAX : ua.exp;
    const i32 eb = cb == FpClass::Zero ? INT32_MIN : cb == FpClass::Infinity ? INT32_MAX : ub.exp;
    FpOrder mag;
    if (ea != eb)
        mag = ea < eb ? FpOrder::Less : FpOrder::Greater;
    else if (ua.sig != ub.sig)
        mag = ua.sig < ub.sig ? FpOrder::Less : FpOrder::Greater;
    else
        return FpOrder::Equal;
    if (a.sign())
        return mag == FpOrder::Less ? FpOrder::Greater : FpOrder::Less;
    return mag;
}

Float80 f80_from_int(i64 v)
{
    const bool sign = v < 0;
    const u64 mag = sign ? 0 - static_cast<u64>(v) : static_cast<u64>(v);
    return from_magnitude(sign, mag);
}

namespace {

// Widens a single/double (IEEE binary) value. Exact; SNaN and denormal
// operands raise IE/DE (SDM Vol 2A FLD).
bool from_binary(FpEnv& env, u64 bits, unsigned frac_bits, unsigned exp_bits, Float80& out)
{
    const bool sign = (bits >> (frac_bits + exp_bits)) & 1;
    const u64 emask = (1ull << exp_bits) - 1;
    const u64 e = (bits >> frac_bits) & emask;
    const u64 frac = bits & ((1ull << frac_bits) - 1);
    const i32 bias = static_cast<i32>(emask >> 1);
    env.c1 = false;
    if (e == emask) {
        if (frac == 0) {
            out = make_inf(sign);
            return true;
        }
        out = Float80{J_BIT | (frac << (63 - frac_bits)), static_cast<u16>(sign ? 0xFFFF : 0x7FFF)};
        if (!(out.signif & QUIET_BIT)) {
            env.raise(fpx::IE);
            if (!env.masked(fpx::IE))
                return false;
            out.signif |= QUIET_BIT;
        }
        return true;
    }
    if (e == 0) {
        if (frac == 0) {
            out = make_zero(sign);
            return true;
        }
        env.raise(fpx::DE); // the load completes even when DE is unmasked
        const unsigned n = static_cast<unsigned>(__builtin_clzll(frac));
        const i32 exp = 1 - bias - static_cast<i32>(n - (63 - frac_bits));
        out = Float80{frac << n, static_cast<u16>((sign ? 0x8000 : 0) | (exp + F80_BIAS))};
        return true;
    }
    out = Float80{J_BIT | (frac << (63 - frac_bits)),
                  static_cast<u16>((sign ? 0x8000 : 0) | (static_cast<i32>(e) - bias + F80_BIAS))};
    return true;
}

// Narrows to single or double. A memory destination: unmasked OE/UE store nothing.
bool to_binary(FpEnv& env, Float80 a, const Format& f, Rounded& r, u64 quiet_nan_bits, u64& nan_out,
               bool& is_special)
{
    const FpClass ca = classify(a);
    is_special = false;
    env.c1 = false;
    r.sign = a.sign();
    switch (ca) {
    case FpClass::Unsupported:
        env.raise(fpx::IE);
        if (!env.masked(fpx::IE))
            return false;
        is_special = true;
        nan_out = quiet_nan_bits;
        return true;
    case FpClass::SNaN:
    case FpClass::QNaN: {
        if (ca == FpClass::SNaN) {
            env.raise(fpx::IE);
            if (!env.masked(fpx::IE))
                return false;
        }
        is_special = true;
        const unsigned frac_bits = f.precision - 1;
        const unsigned exp_bits = f.bias == 127 ? 8 : 11;
        const u64 frac = ((a.signif | QUIET_BIT) << 1) >> (64 - frac_bits);
        nan_out = (a.sign() ? (1ull << (frac_bits + exp_bits)) : 0) |
                  (static_cast<u64>(f.emax + 1) << frac_bits) | frac;
        return true;
    }
    case FpClass::Infinity:
        r.exp = f.emax + 1;
        r.field = 0;
        return true;
    case FpClass::Zero:
        r.exp = 0;
        r.field = 0;
        return true;
    default: { // a denormal source raises no DE here, only UE/PE

        const Unpacked u = unpack(a);
        return round_generic(env, u.sign, u.exp, widen(u.sig), f, f.precision, false, r);
    }
    }
}

} // namespace

bool f80_from_f32(FpEnv& env, u32 bits, Float80& out)
{
    return from_binary(env, bits, 23, 8, out);
}

bool f80_from_f64(FpEnv& env, u64 bits, Float80& out)
{
    return from_binary(env, bits, 52, 11, out);
}

bool f80_to_f32(FpEnv& env, Float80 a, u32& out)
{
    Rounded r;
    u64 nan = 0;
    bool special;
    if (!to_binary(env, a, SINGLE, r, 0xFFC00000u, nan, special))
        return false;
    out = special ? static_cast<u32>(nan) : pack32(r);
    return true;
}

bool f80_to_f64(FpEnv& env, Float80 a, u64& out)
{
    Rounded r;
    u64 nan = 0;
    bool special;
    if (!to_binary(env, a, DOUBLE, r, 0xFFF8000000000000ull, nan, special))
        return false;
    out = special ? nan : pack64(r);
    return true;
}

bool f80_to_int(FpEnv& env, Float80 a, unsigned bytes, bool truncate, i64& out)
{
    const i64 indefinite = bytes == 2 ? -32768 : bytes == 4 ? INT32_MIN : INT64_MIN;
    const u64 limit_pos = bytes == 2 ? 0x7FFF : bytes == 4 ? 0x7FFFFFFF : 0x7FFFFFFFFFFFFFFFull;
    const FpClass ca = classify(a);
    env.c1 = false;
    auto out_of_range = [&] {
        env.raise(fpx::IE);
        env.c1 = false;
        if (!env.masked(fpx::IE))
            return false;
        out = indefinite;
        return true;
    };
    if (is_nan_or_unsupported(ca) || ca == FpClass::Infinity)
        return out_of_range();
    if (ca == FpClass::Zero) {
        out = 0;
        return true;
    }
    const Unpacked u = unpack(a);
    if (u.exp > 63)
        return out_of_range();
    bool inexact, up;
    const u64 mag =
        round_integer(u.sig, u.exp, u.sign, truncate ? RC_ZERO : env.rounding(), inexact, up);
    if (u.sign ? mag > limit_pos + 1 : mag > limit_pos)
        return out_of_range();
    if (inexact) {
        env.raise(fpx::PE);
        env.c1 = up;
    }
    out = u.sign ? static_cast<i64>(0 - mag) : static_cast<i64>(mag);
    return true;
}

Float80 f80_from_bcd(const u8 bcd[10])
{
    u64 v = 0;
    for (int i = 8; i >= 0; --i)
        v = v * 100 + (bcd[i] >> 4) * 10 + (bcd[i] & 0xF);
    return from_magnitude(bcd[9] & 0x80, v);
}

bool f80_to_bcd(FpEnv& env, Float80 a, u8 bcd[10])
{
    const FpClass ca = classify(a);
    env.c1 = false;
    auto indefinite = [&] {
        env.raise(fpx::IE);
        env.c1 = false;
        if (!env.masked(fpx::IE))
            return false;
        for (int i = 0; i < 7; ++i)
            bcd[i] = 0;
        bcd[7] = 0xC0;
        bcd[8] = 0xFF;
        bcd[9] = 0xFF;
        return true;
    };
    if (is_nan_or_unsupported(ca) || ca == FpClass::Infinity)
        return indefinite();
    u64 mag = 0;
    if (ca != FpClass::Zero) {
        const Unpacked u = unpack(a);
        if (u.exp > 63)
            return indefinite();
        bool inexact, up;
        mag = round_integer(u.sig, u.exp, u.sign, env.rounding(), inexact, up);
        if (mag > 999999999999999999ull)
            return indefinite();
        if (inexact) {
            env.raise(fpx::PE);
            env.c1 = up;
        }
    }
    for (int i = 0; i < 9; ++i) {
        const u8 lo = static_cast<u8>(mag % 10);
        mag /= 10;
        const u8 hi = static_cast<u8>(mag % 10);
        mag /= 10;
        bcd[i] = static_cast<u8>(hi << 4 | lo);
    }
    bcd[9] = a.sign() ? 0x80 : 0;
    return true;
}

Float80 f80_constant(FpConstant c, unsigned rounding)
{
    // 128-bit significands of the exact values and their unbiased exponents.
    struct Exact {
        u64 hi, lo;
        i32 exp;
    };
    static constexpr Exact table[] = {
        {0x8000000000000000ull, 0, 0},                      // 1
        {0xd49a784bcd1b8afeull, 0x492bf6ff4dafdb4cull, 1},  // log2(10)
        {0xb8aa3b295c17f0bbull, 0xbe87fed0691d3e88ull, 0},  // log2(e)
        {0xc90fdaa22168c234ull, 0xc4c6628b80dc1cd1ull, 1},  // pi
        {0x9a209a84fbcff798ull, 0x8f8959ac0b7c9178ull, -2}, // log10(2)
        {0xb17217f7d1cf79abull, 0xc9e3b39803f2f6afull, -1}, // ln(2)
    };
    if (c == FpConstant::Zero)
        return F80_ZERO;
    const Exact& e = table[static_cast<unsigned>(c)];
    FpEnv env;
    env.fcw = static_cast<u16>(0x037F | (rounding << 10));
    return round_pack(env, false, e.exp, (u128(e.hi) << 64) | e.lo, 64);
}
