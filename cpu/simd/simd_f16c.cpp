// F16C: VCVTPH2PS and VCVTPS2PH (SDM Vol 2A), conversions between IEEE
// binary16 and binary32 in software. Half to single is always exact; single
// to half rounds by imm8 (or MXCSR.RC when imm8[2] is set) and reports
// invalid, denormal, overflow, underflow and precision flags in MXCSR.
#include "cpu/simd/simd.h"

using namespace simd;

namespace {

struct Converted {
    u32 value;
    u32 flags; // MXCSR flag bits
};

// binary16 → binary32. Signalling NaNs are quieted (IE); denormal halves
// become normal singles exactly, with no DE (as the host CPU reports).
Converted half_to_single(u16 h)
{
    const u32 sign = static_cast<u32>(h >> 15) << 31;
    const unsigned exp = (h >> 10) & 0x1F;
    u32 frac = h & 0x3FF;
    if (exp == 0x1F) {
        if (frac == 0)
            return {sign | 0x7F800000u, 0};
        const bool signalling = !(frac & 0x200);
        return {sign | 0x7FC00000u | (frac << 13), signalling ? mxcsr::IE : 0u};
    }
    if (exp == 0) {
        if (frac == 0)
            return {sign, 0};
        int e = -14;
        while (!(frac & 0x400)) {
            frac <<= 1;
            --e;
        }
        return {sign | (static_cast<u32>(e + 127) << 23) | ((frac & 0x3FF) << 13), 0};
    }
    return {sign | ((exp - 15 + 127) << 23) | (frac << 13), 0};
}

// Rounds `mant` >> `shift` to an integer under rounding control `rc` (0
// nearest-even, 1 down, 2 up, 3 toward zero) for a value of sign `negative`.
u64 round_shift(u64 mant, unsigned shift, unsigned rc, bool negative, bool& inexact)
{
    if (shift == 0) {
        inexact = false;
        return mant;
    }
    if (shift >= 64) {
        inexact = mant != 0;
        const bool up = inexact && ((rc == 1 && negative) || (rc == 2 && !negative));
        return up ? 1 : 0;
    }
    const u64 kept = mant >> shift, rest = mant & ((u64{1} << shift) - 1);
    const u64 half = u64{1} << (shift - 1);
    inexact = rest != 0;
    bool up = false;
    switch (rc) {
    case 0:
        up = rest > half || (rest == half && (kept & 1));
        break;
    case 1:
        up = inexact && negative;
        break;
    case 2:
        up = inexact && !negative;
        break;
    default:
        break;
    }
    return kept + (up ? 1 : 0);
}

// Whether `mant` · 2^e loses bits when rounded to a multiple of 2^lsb_exp.
bool drops_bits(u64 mant, int e, int lsb_exp)
{
    const int dropped = lsb_exp - e;
    if (dropped <= 0)
        return false;
    return dropped >= 64 ? mant != 0 : (mant & ((u64{1} << dropped) - 1)) != 0;
}

// binary32 → binary16 under rounding control `rc`; `daz` treats denormal
// inputs as zero. Underflow is tininess after rounding and inexact, or any
// tininess when UE is in `unmasked` (the MXCSR exceptions not masked). There
// an overflow or underflow reports PE for an inexact significand; Intel's
// underflow also for a result that is inexact once denormalized, as the
// masked result would be (Intel Xeon host, seed 102 case 191341: 0x10000000
// and 0x00000001, exact in 11 bits, flush to 0 with UE and PE).
Converted single_to_half(u32 f, unsigned rc, bool daz, u32 unmasked, bool intel)
{
    const u16 sign = static_cast<u16>((f >> 31) << 15);
    const bool negative = f >> 31;
    const unsigned exp = (f >> 23) & 0xFF;
    const u32 frac = f & 0x7FFFFF;
    if (exp == 0xFF) {
        if (frac == 0)
            return {static_cast<u32>(sign | 0x7C00), 0};
        const bool signalling = !(frac & 0x400000);
        return {static_cast<u32>(sign | 0x7E00 | (frac >> 13)), signalling ? mxcsr::IE : 0u};
    }
    u32 flags = 0;
    if (exp == 0) {
        if (frac == 0 || daz)
            return {sign, 0};
        flags |= mxcsr::DE;
    }
    // value = mant · 2^(e - 23), mant with its integer bit.
    const u64 mant = exp ? (frac | 0x800000u) : frac;
    const int e = exp ? static_cast<int>(exp) - 127 : -126;
    // Tininess after rounding: round to 11 bits with an unbounded exponent.
    int msb = 23;
    while (!((mant >> msb) & 1))
        --msb;
    const int value_exp = e - 23 + msb; // exponent of the leading bit
    bool inexact_unbounded;
    u64 r_unbounded = round_shift(mant, msb > 10 ? static_cast<unsigned>(msb - 10) : 0, rc,
                                  negative, inexact_unbounded);
    int r_exp = value_exp;
    if (r_unbounded >> 11) {
        r_unbounded >>= 1;
        ++r_exp;
    }
    const bool tiny = r_exp < -14;
    if (r_exp > 15 && (unmasked & mxcsr::OE))
        return {0, flags | mxcsr::OE | (inexact_unbounded ? mxcsr::PE : 0u)};
    if (tiny && (unmasked & mxcsr::UE)) {
        const bool inexact = inexact_unbounded || (intel && drops_bits(mant, e - 23, -24));
        return {0, flags | mxcsr::UE | (inexact ? mxcsr::PE : 0u)};
    }
    if (r_exp > 15) { // overflow
        flags |= mxcsr::OE | mxcsr::PE;
        const bool to_inf = rc == 0 || (rc == 1 && negative) || (rc == 2 && !negative);
        return {static_cast<u32>(sign | (to_inf ? 0x7C00 : 0x7BFF)), flags};
    }
    // Round at the half's real precision: LSB 2^-24 for denormal results.
    const int lsb_exp = value_exp < -14 ? -24 : value_exp - 10;
    const int shift = (e - 23) - lsb_exp; // negative: value has fewer bits than the LSB
    bool inexact = false;
    u64 q = shift >= 0 ? mant << shift : round_shift(mant, static_cast<unsigned>(-shift), rc,
                                                       negative, inexact);
    // q is the result in units of 2^lsb_exp.
    u16 bits;
    if (lsb_exp == -24) {
        bits = static_cast<u16>(q); // denormal, or the smallest normal when q reaches 2^10
    } else {
        int be = lsb_exp + 10; // exponent of q's leading bit when q has 11 bits
        if (q >> 11) {
            q >>= 1;
            ++be;
        }
        if (be > 15) {
            flags |= mxcsr::OE | mxcsr::PE;
            const bool to_inf = rc == 0 || (rc == 1 && negative) || (rc == 2 && !negative);
            return {static_cast<u32>(sign | (to_inf ? 0x7C00 : 0x7BFF)), flags};
        }
        bits = static_cast<u16>(((be + 15) << 10) | (q & 0x3FF));
    }
    if (inexact) {
        flags |= mxcsr::PE;
        if (tiny)
            flags |= mxcsr::UE;
    }
    return {static_cast<u32>(sign | bits), flags};
}

// Sets the flags; with one of them unmasked, raises #XM (or #UD) instead of
// letting the caller write its result. An unmasked pre-computation exception
// (IE, DE) in any element keeps out the post-computation flags of all (SDM
// Vol 1 11.5.2; the host agrees).
bool report(Cpu& cpu, u32 flags)
{
    u32& csr = cpu.s.fpu.mxcsr;
    const u32 unmasked = ~(csr >> mxcsr::MASK_SHIFT) & mxcsr::FLAGS;
    const u32 pre = flags & (mxcsr::IE | mxcsr::DE | mxcsr::ZE);
    if (pre & unmasked)
        flags = pre;
    csr |= flags;
    return (flags & unmasked) ? raise_xm(cpu) : true;
}

// Whether the m64 operand of VCVTPH2PS/VCVTPS2PH is checked for alignment
// (#AC). AMD's is, like any 8-byte access (AMD host). Intel's is not: a
// misaligned m64 with alignment checking on loads (Intel host, seed 2 case
// 123439 `vcvtph2ps xmm15, [r13-0x58]`, no fault) or faults on its page
// (seed 1 case 74705; seed 6 case 152653 `vcvtps2ph [0x77E11EF3]`, #PF).
// The 16-byte forms are never checked here (see simd_avx.cpp vector_linear).
bool checks_m64_alignment(const Cpu& cpu) { return cpu.amd(); }

// The m64 source of VCVTPH2PS, with the vendor's alignment rule.
bool read_m64(Cpu& cpu, const Insn& insn, Vec& v)
{
    u64 value;
    if (checks_m64_alignment(cpu)) {
        CPU_TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), 8, value));
    } else {
        u64 linear;
        CPU_TRY(cpu.segment_linear(insn.mem.seg, cpu.effective_address(insn), 8, false, linear));
        CPU_TRY(cpu.read_linear(linear, 8, value));
    }
    v = Vec{{value, 0}};
    return true;
}

// The m64 destination of VCVTPS2PH, with the vendor's alignment rule.
bool write_m64(Cpu& cpu, const Insn& insn, u64 value)
{
    if (checks_m64_alignment(cpu))
        return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), 8, value);
    u64 linear;
    CPU_TRY(cpu.segment_linear(insn.mem.seg, cpu.effective_address(insn), 8, true, linear));
    return cpu.write_linear(linear, 8, value);
}

} // namespace

// VCVTPH2PS xmm1, xmm2/m64 and ymm1, xmm2/m128.
HANDLER(op_vcvtph2ps)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec s[2];
    if (insn.op[1].kind == OpKind::Mem && insn.op[1].size == 8)
        CPU_TRY(read_m64(cpu, insn, s[0]));
    else
        CPU_TRY(vex_read(cpu, insn, 1, s));
    const unsigned count = is_vex256(insn) ? 8 : 4;
    Vec out[2];
    u32 flags = 0;
    for (unsigned i = 0; i < count; ++i) {
        const Converted c = half_to_single(s[0].get<u16>(i));
        out[i / 4].set<u32>(i % 4, c.value);
        flags |= c.flags;
    }
    CPU_TRY(report(cpu, flags));
    return vex_write(cpu, insn, out);
}

// VCVTPS2PH xmm1/m64, xmm2, imm8 and xmm1/m128, ymm2, imm8.
HANDLER(op_vcvtps2ph)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    Vec s[2];
    CPU_TRY(vex_read(cpu, insn, 1, s));
    const unsigned count = insn.op[1].kind == OpKind::Ymm ? 8 : 4;
    const u8 imm = static_cast<u8>(insn.imm);
    const u32 csr = cpu.s.fpu.mxcsr;
    const unsigned rc = (imm & 4) ? (csr >> mxcsr::RC_SHIFT) & 3 : imm & 3;
    Vec out[2];
    u32 flags = 0;
    for (unsigned i = 0; i < count; ++i) {
        const Converted c = single_to_half(s[i / 4].get<u32>(i % 4), rc, csr & mxcsr::DAZ,
                                           ~(csr >> mxcsr::MASK_SHIFT) & mxcsr::FLAGS, cpu.intel());
        out[0].set<u16>(i, static_cast<u16>(c.value));
        flags |= c.flags;
    }
    if (insn.op[0].kind == OpKind::Mem && cpu.intel()) {
        // Intel converts before it stores: the flags are set, and an
        // unmasked one raises #XM, before any fault of the destination
        // (#GP, #PF), which then leaves the flags set (Intel host: seed 1
        // case 56354, MXCSR 0x1fc0 → 0x1ff8 with #PF; seed 1 case 123675 and
        // seed 5 case 87867, #XM where the store would be #PF or #GP).
        CPU_TRY(report(cpu, flags));
        if (count == 8)
            return vex_write(cpu, insn, out);
        return write_m64(cpu, insn, out[0].q[0]);
    }
    if (insn.op[0].kind == OpKind::Mem) {
        // AMD: an unmasked exception is raised instead of the store, after
        // the destination's faults; otherwise the flags follow the store,
        // which a fault leaves them without (AMD host).
        if (flags & ~(csr >> mxcsr::MASK_SHIFT) & mxcsr::FLAGS) {
            // The destination's faults still come first.
            u64 linear;
            const unsigned size = count == 8 ? 16 : 8;
            CPU_TRY(cpu.segment_linear(insn.mem.seg, cpu.effective_address(insn), size, true, linear));
            if (cpu.s.cr0 & cr::CR0_AM)
                CPU_TRY(cpu.check_alignment(linear, size));
            const bool user = cpu.access_is_user(false);
            SoftTlb::Entry* e;
            CPU_TRY(cpu.translate(linear, Access::Write, user, e));
            const u64 last = (linear + size - 1) & cpu.linear_wrap();
            if ((last >> 12) != (linear >> 12))
                CPU_TRY(cpu.translate(last & PAGE_MASK, Access::Write, user, e));
            return report(cpu, flags);
        }
        if (count == 8)
            CPU_TRY(vex_write(cpu, insn, out));
        else
            CPU_TRY(write_m64(cpu, insn, out[0].q[0]));
        return report(cpu, flags);
    }
    CPU_TRY(report(cpu, flags));
    out[0].q[1] = count == 8 ? out[0].q[1] : 0;
    out[1] = Vec{};
    return vex_write(cpu, insn, out);
}
