// x87 transcendental instructions: F2XM1, FYL2X, FYL2XP1, FPATAN, FSIN,
// FCOS, FSINCOS, FPTAN. Each result is computed in a 128-bit-significand
// internal format (error below 2^-120 relative) and rounded once with the
// control word's rounding mode, so results are correctly rounded unless the
// exact value lies within ~2^-56 ulp of a rounding boundary. Argument
// reduction for the trigonometric functions uses 640 bits of 2/pi (exact
// for every |x| < 2^63), unlike Intel hardware's 66-bit pi. Special operands
// follow the SDM Vol 2 tables for each instruction.
#include "cpu/x87/float80.h"

#include "cpu/x87/float80_internal.h"

using namespace f80detail;

namespace {

// sign * sig * 2^(exp - 127); sig has bit 127 set, or is 0 for zero.
struct Wide {
    bool sign = false;
    i32 exp = 0;
    u128 sig = 0;
};

Wide normalize(bool sign, i32 exp, u128 sig)
{
    if (sig == 0)
        return Wide{sign, 0, 0};
    const unsigned n = clz128(sig);
    return Wide{sign, exp - static_cast<i32>(n), sig << n};
}

Wide wide_const(u64 hi, u64 lo, i32 exp)
{
    return Wide{false, exp, (u128(hi) << 64) | lo};
}

const Wide PI = wide_const(0xc90fdaa22168c234ull, 0xc4c6628b80dc1cd1ull, 1);
const Wide PI_2 = wide_const(0xc90fdaa22168c234ull, 0xc4c6628b80dc1cd1ull, 0);
const Wide PI_4 = wide_const(0xc90fdaa22168c234ull, 0xc4c6628b80dc1cd1ull, -1);
const Wide LN2 = wide_const(0xb17217f7d1cf79abull, 0xc9e3b39803f2f6afull, -1);
const Wide LOG2E = wide_const(0xb8aa3b295c17f0bbull, 0xbe87fed0691d3e88ull, 0);
const Wide ONE = wide_const(0x8000000000000000ull, 0, 0);

Wide from_f80(Float80 v)
{
    const Unpacked u = unpack(v);
    return Wide{u.sign, u.exp, u128(u.sig) << 64};
}

Wide from_int(i64 v)
{
    const bool sign = v < 0;
    const u64 mag = sign ? 0 - static_cast<u64>(v) : static_cast<u64>(v);
    return normalize(sign, 127, mag);
}

Wide neg(Wide a)
{
    a.sign = !a.sign;
    return a;
}

Wide add(Wide a, Wide b)
{
    if (a.sig == 0)
        return b;
    if (b.sig == 0)
        return a;
    if (a.exp < b.exp || (a.exp == b.exp && a.sig < b.sig)) {
        const Wide t = a;
        a = b;
        b = t;
    }
    const i32 d = a.exp - b.exp;
    const u128 y = d >= 128 ? 0 : b.sig >> d;
    if (a.sign == b.sign) {
        const u128 sum = a.sig + y;
        if (sum < a.sig)
            return Wide{a.sign, a.exp + 1, (sum >> 1) | (u128(1) << 127)};
        return Wide{a.sign, a.exp, sum};
    }
    return normalize(a.sign, a.exp, a.sig - y);
}

Wide sub(Wide a, Wide b)
{
    return add(a, neg(b));
}

Wide mul(Wide a, Wide b)
{
    const bool sign = a.sign != b.sign;
    if (a.sig == 0 || b.sig == 0)
        return Wide{sign, 0, 0};
    const u64 a1 = static_cast<u64>(a.sig >> 64), a0 = static_cast<u64>(a.sig);
    const u64 b1 = static_cast<u64>(b.sig >> 64), b0 = static_cast<u64>(b.sig);
    const u128 p11 = u128(a1) * b1, p10 = u128(a1) * b0, p01 = u128(a0) * b1, p00 = u128(a0) * b0;
    const u128 mid = (p00 >> 64) + static_cast<u64>(p10) + static_cast<u64>(p01);
    u128 hi = p11 + (p10 >> 64) + (p01 >> 64) + (mid >> 64);
    i32 exp = a.exp + b.exp + 1;
    if (!(hi >> 127)) {
        hi = (hi << 1) | (static_cast<u64>(mid) >> 63);
        --exp;
    }
    return Wide{sign, exp, hi};
}

Wide div(Wide a, Wide b)
{
    const bool sign = a.sign != b.sign;
    if (a.sig == 0)
        return Wide{sign, 0, 0};
    u128 rem = a.sig;
    const bool top = rem >= b.sig;
    if (top)
        rem -= b.sig;
    u128 q = 0;
    for (int i = 0; i < 128; ++i) {
        const bool carry = rem >> 127;
        rem <<= 1;
        q <<= 1;
        if (carry || rem >= b.sig) {
            rem -= b.sig;
            q |= 1;
        }
    }
    if (top)
        return Wide{sign, a.exp - b.exp, (u128(1) << 127) | (q >> 1)};
    return Wide{sign, a.exp - b.exp - 1, q};
}

Wide div_int(Wide a, i64 k)
{
    return div(a, from_int(k));
}

// Below 2^-130 of `sum`: a series term too small to matter.
bool negligible(const Wide& term, const Wide& sum)
{
    return term.sig == 0 || term.exp < sum.exp - 130;
}

// e^t - 1 for |t| <= ln 2 (Taylor series).
Wide expm1(Wide t)
{
    Wide sum = t, term = t;
    for (int k = 2; k < 60; ++k) {
        term = div_int(mul(term, t), k);
        sum = add(sum, term);
        if (negligible(term, sum))
            break;
    }
    return sum;
}

// 2 * atanh(s) = ln((1 + s) / (1 - s)) for |s| <= 0.18.
Wide two_atanh(Wide s)
{
    const Wide s2 = mul(s, s);
    Wide sum = s, power = s;
    for (int k = 3; k < 200; k += 2) {
        power = mul(power, s2);
        const Wide term = div_int(power, k);
        sum = add(sum, term);
        if (negligible(term, sum))
            break;
    }
    sum.exp += 1;
    return sum;
}

// log2(x) for x > 0.
Wide log2_wide(Wide x)
{
    // x = m * 2^e with m in [sqrt(1/2), sqrt(2)).
    i32 e = x.exp;
    Wide m{false, 0, x.sig};
    if (m.sig > ((u128(0xb504f333f9de6484ull) << 64) | 0x597d89b3754abe9full)) {
        m.exp = -1;
        ++e;
    }
    const Wide s = div(sub(m, ONE), add(m, ONE));
    return add(from_int(e), mul(two_atanh(s), LOG2E));
}

// sin and cos of |r| <= pi/4 (Taylor series).
Wide sin_small(Wide r)
{
    const Wide r2 = mul(r, r);
    Wide sum = r, term = r;
    for (int k = 2; k < 80; k += 2) {
        term = neg(div_int(mul(term, r2), static_cast<i64>(k) * (k + 1)));
        sum = add(sum, term);
        if (negligible(term, sum))
            break;
    }
    return sum;
}

Wide cos_small(Wide r)
{
    const Wide r2 = mul(r, r);
    Wide sum = ONE, term = ONE;
    for (int k = 1; k < 80; k += 2) {
        term = neg(div_int(mul(term, r2), static_cast<i64>(k) * (k + 1)));
        sum = add(sum, term);
        if (negligible(term, sum))
            break;
    }
    return sum;
}

// atan(t) for 0 <= t <= 1.
Wide atan_unit(Wide t)
{
    // Above tan(pi/8), atan(t) = pi/4 + atan((t - 1) / (t + 1)).
    const u128 tan_pi_8 = (u128(0xd413cccfe7799211ull) << 64) | 0x65f626cdd52afa7cull; // *2^-129
    bool shifted = false;
    if (t.sig != 0 && (t.exp > -2 || (t.exp == -2 && t.sig > tan_pi_8))) {
        t = div(sub(t, ONE), add(t, ONE));
        shifted = true;
    }
    const Wide t2 = mul(t, t);
    Wide sum = t, power = t;
    for (int k = 3; k < 400 && t.sig != 0; k += 2) {
        power = neg(mul(power, t2));
        const Wide term = div_int(power, k);
        sum = add(sum, term);
        if (negligible(term, sum))
            break;
    }
    return shifted ? add(PI_4, sum) : sum;
}

// 2/pi to 640 bits, most significant word first (Payne-Hanek reduction).
constexpr u64 TWO_OVER_PI[10] = {
    0xa2f9836e4e441529ull, 0xfc2757d1f534ddc0ull, 0xdb6295993c439041ull, 0xfe5163abdebbc561ull,
    0xb7246e3a424dd2e0ull, 0x06492eea09d1921cull, 0xfe1deb1cb129a73eull, 0xe88235f52ebb4484ull,
    0xe99c7026b45f7e41ull, 0x3991d639835339f4ull,
};

// Reduces |x| (finite, < 2^63) to r in [-pi/4, pi/4] and the quadrant q with
// |x| = r + q * pi/2 (mod 2 pi).
void reduce(Float80 x, Wide& r, unsigned& q)
{
    const Unpacked u = unpack(x);
    if (u.exp < -1 || (u.exp == -1 && u.sig <= 0xc90fdaa22168c234ull)) {
        r = Wide{false, u.exp, u128(u.sig) << 64}; // |x| <= pi/4
        q = 0;
        return;
    }
    // P = M * W (little-endian words), |x| * 2/pi = P * 2^(e - 63 - 640).
    u64 p[11] = {};
    u64 carry = 0;
    for (int i = 9; i >= 0; --i) {
        const u128 t = u128(u.sig) * TWO_OVER_PI[i] + carry;
        p[9 - i] = static_cast<u64>(t);
        carry = static_cast<u64>(t >> 64);
    }
    p[10] = carry;
    auto bits = [&](int pos) -> u64 { // 64 bits of P starting at bit pos
        const int w = pos / 64, b = pos % 64;
        u64 lo = w < 11 ? p[w] >> b : 0;
        if (b && w + 1 < 11)
            lo |= p[w + 1] << (64 - b);
        return lo;
    };
    const int point = 703 - u.exp; // bit index of 2^0 in P
    q = static_cast<unsigned>(bits(point) & 3);
    u128 frac_hi = (u128(bits(point - 64)) << 64) | bits(point - 128);
    const u128 frac_lo = (u128(bits(point - 192)) << 64) | bits(point - 256);
    bool negative = false;
    u128 lo = frac_lo;
    if (frac_hi >> 127) { // f >= 1/2: use f - 1 and the next quadrant
        negative = true;
        q = (q + 1) & 3;
        frac_hi = ~frac_hi + (frac_lo == 0 ? 1 : 0);
        lo = ~frac_lo + 1;
    }
    // Normalize the 256-bit fraction into 128 bits.
    i32 exp = -1;
    unsigned n = clz128(frac_hi);
    u128 sig;
    if (n >= 128) {
        n = 128 + clz128(lo);
        sig = lo << (n - 128);
    } else {
        sig = n ? (frac_hi << n) | (lo >> (128 - n)) : frac_hi;
    }
    exp -= static_cast<i32>(n);
    r = mul(Wide{negative, exp, sig}, PI_2);
}

bool finish(FpEnv& env, const Wide& w, Float80& out)
{
    out = round_pack(env, w.sign, w.exp, w.sig, 64);
    return true;
}

bool is_nan_or_unsupported(FpClass c)
{
    return is_nan(c) || c == FpClass::Unsupported;
}

bool denormal_ok(FpEnv& env, FpClass a, FpClass b = FpClass::Zero)
{
    if (a != FpClass::Denormal && b != FpClass::Denormal)
        return true;
    env.raise(fpx::DE);
    return env.masked(fpx::DE);
}

} // namespace

bool f80_f2xm1(FpEnv& env, Float80 x, Float80& out)
{
    const FpClass c = classify(x);
    env.c1 = false;
    if (is_nan_or_unsupported(c))
        return propagate_nan(env, x, x, out);
    if (c == FpClass::Zero) {
        out = x;
        return true;
    }
    if (c == FpClass::Infinity) {
        out = x.sign() ? with_sign(F80_ONE, true) : x;
        return true;
    }
    if (!denormal_ok(env, c))
        return false;
    if (x == F80_ONE || x == with_sign(F80_ONE, true)) { // exact: 1 and -1/2
        out = x.sign() ? Float80{0x8000000000000000ull, 0xBFFE} : F80_ONE;
        return true;
    }
    return finish(env, expm1(mul(from_f80(x), LN2)), out);
}

bool f80_yl2x(FpEnv& env, Float80 x, Float80 y, Float80& out)
{
    const FpClass cx = classify(x), cy = classify(y);
    env.c1 = false;
    if (is_nan_or_unsupported(cx) || is_nan_or_unsupported(cy))
        return propagate_nan(env, x, y, out);
    if (x.sign() && cx != FpClass::Zero)
        return invalid(env, out);
    if (cx == FpClass::Zero) {
        if (cy == FpClass::Zero)
            return invalid(env, out);
        if (!denormal_ok(env, cy))
            return false;
        if (cy != FpClass::Infinity) {
            env.raise(fpx::ZE);
            if (!env.masked(fpx::ZE))
                return false;
        }
        out = make_inf(!y.sign());
        return true;
    }
    if (cx == FpClass::Infinity) {
        if (cy == FpClass::Zero)
            return invalid(env, out);
        if (!denormal_ok(env, cy))
            return false;
        out = make_inf(y.sign());
        return true;
    }
    const bool below_one = x.exp() < F80_BIAS;
    const bool is_one = x == F80_ONE;
    if (cy == FpClass::Infinity) {
        if (is_one)
            return invalid(env, out);
        if (!denormal_ok(env, cx))
            return false;
        out = make_inf(y.sign() != below_one);
        return true;
    }
    if (!denormal_ok(env, cx, cy))
        return false;
    if (cy == FpClass::Zero || is_one) {
        out = make_zero(y.sign() != below_one);
        return true;
    }
    return finish(env, mul(log2_wide(from_f80(x)), from_f80(y)), out);
}

bool f80_yl2xp1(FpEnv& env, Float80 x, Float80 y, Float80& out)
{
    const FpClass cx = classify(x), cy = classify(y);
    env.c1 = false;
    if (is_nan_or_unsupported(cx) || is_nan_or_unsupported(cy))
        return propagate_nan(env, x, y, out);
    if (cx == FpClass::Zero) {
        if (cy == FpClass::Infinity)
            return invalid(env, out);
        if (!denormal_ok(env, cy))
            return false;
        out = make_zero(x.sign() != y.sign());
        return true;
    }
    if (cx == FpClass::Infinity) {
        // Outside the documented range; behave as y * log2(1 + x).
        if (x.sign() || cy == FpClass::Zero)
            return invalid(env, out);
        if (!denormal_ok(env, cy))
            return false;
        out = make_inf(y.sign());
        return true;
    }
    if (cy == FpClass::Infinity) {
        if (!denormal_ok(env, cx))
            return false;
        out = make_inf(x.sign() != y.sign());
        return true;
    }
    if (!denormal_ok(env, cx, cy))
        return false;
    if (cy == FpClass::Zero) {
        out = make_zero(x.sign() != y.sign());
        return true;
    }
    const Wide wx = from_f80(x);
    if (x.sign() && (wx.exp >= 0)) // x <= -1: outside any meaningful range
        return invalid(env, out);
    const Wide two{false, 1, u128(1) << 127};
    const Wide s = div(wx, add(two, wx));
    return finish(env, mul(mul(two_atanh(s), LOG2E), from_f80(y)), out);
}

bool f80_atan2(FpEnv& env, Float80 y, Float80 x, Float80& out)
{
    const FpClass cx = classify(x), cy = classify(y);
    env.c1 = false;
    if (is_nan_or_unsupported(cx) || is_nan_or_unsupported(cy))
        return propagate_nan(env, y, x, out);
    if (!denormal_ok(env, cx, cy))
        return false;
    const bool sy = y.sign(), sx = x.sign();
    auto signed_result = [&](Wide w) {
        w.sign = sy;
        return finish(env, w, out);
    };
    if (cy == FpClass::Zero) {
        if (sx)
            return signed_result(PI);
        out = make_zero(sy);
        return true;
    }
    if (cy == FpClass::Infinity) {
        if (cx == FpClass::Infinity)
            return signed_result(sx ? add(PI_2, PI_4) : PI_4);
        return signed_result(PI_2);
    }
    if (cx == FpClass::Zero)
        return signed_result(PI_2);
    if (cx == FpClass::Infinity) {
        if (sx)
            return signed_result(PI);
        out = make_zero(sy);
        return true;
    }
    Wide ay = from_f80(y), ax = from_f80(x);
    ay.sign = ax.sign = false;
    const bool y_larger = ay.exp > ax.exp || (ay.exp == ax.exp && ay.sig > ax.sig);
    Wide a = y_larger ? sub(PI_2, atan_unit(div(ax, ay))) : atan_unit(div(ay, ax));
    if (sx)
        a = sub(PI, a);
    return signed_result(a);
}

bool f80_sin_cos(FpEnv& env, Float80 x, Float80* sin_out, Float80* cos_out, bool& out_of_range)
{
    const FpClass c = classify(x);
    out_of_range = false;
    env.c1 = false;
    if (is_nan_or_unsupported(c)) {
        Float80 r;
        if (!propagate_nan(env, x, x, r))
            return false;
        if (sin_out)
            *sin_out = r;
        if (cos_out)
            *cos_out = r;
        return true;
    }
    if (c == FpClass::Infinity) {
        Float80 r;
        if (!invalid(env, r))
            return false;
        if (sin_out)
            *sin_out = r;
        if (cos_out)
            *cos_out = r;
        return true;
    }
    if (c != FpClass::Zero && c != FpClass::Denormal && x.exp() >= F80_BIAS + 63) {
        out_of_range = true;
        return true;
    }
    if (!denormal_ok(env, c))
        return false;
    if (c == FpClass::Zero) {
        if (sin_out)
            *sin_out = x;
        if (cos_out)
            *cos_out = F80_ONE;
        return true;
    }
    Wide r;
    unsigned q;
    reduce(x, r, q);
    const Wide s = sin_small(r), co = cos_small(r);
    const Wide quadrant_sin[4] = {s, co, neg(s), neg(co)};
    const Wide quadrant_cos[4] = {co, neg(s), neg(co), s};
    // Round sin last so C1 describes it when both are produced (FSINCOS
    // reports on the value left in ST(0), the cosine: the caller rounds again).
    FpEnv cos_env = env;
    if (cos_out)
        finish(cos_env, quadrant_cos[q], *cos_out);
    if (sin_out) {
        Wide w = quadrant_sin[q];
        if (x.sign())
            w.sign = !w.sign;
        finish(env, w, *sin_out);
        env.flags |= cos_env.flags;
    } else {
        env = cos_env;
    }
    return true;
}

bool f80_tan(FpEnv& env, Float80 x, Float80& out, bool& out_of_range)
{
    const FpClass c = classify(x);
    out_of_range = false;
    env.c1 = false;
    if (is_nan_or_unsupported(c))
        return propagate_nan(env, x, x, out);
    if (c == FpClass::Infinity)
        return invalid(env, out);
    if (c != FpClass::Zero && c != FpClass::Denormal && x.exp() >= F80_BIAS + 63) {
        out_of_range = true;
        return true;
    }
    if (!denormal_ok(env, c))
        return false;
    if (c == FpClass::Zero) {
        out = x;
        return true;
    }
    Wide r;
    unsigned q;
    reduce(x, r, q);
    const Wide s = sin_small(r), co = cos_small(r);
    Wide t = (q & 1) ? neg(div(co, s)) : div(s, co);
    if (x.sign())
        t.sign = !t.sign;
    return finish(env, t, out);
}
