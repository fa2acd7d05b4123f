// SSE4.2 string and text processing: PCMPESTRI, PCMPESTRM, PCMPISTRI,
// PCMPISTRM (SDM Vol 2B 4.1), and CRC32 (CRC-32C, the Castagnoli polynomial).
#include "cpu/simd/simd.h"

using namespace simd;

namespace {

// The imm8 control byte (SDM Vol 2B 4.1.2-4.1.6).
struct StringControl {
    bool words;      // imm[0]: 16-bit elements
    bool is_signed;  // imm[1]
    unsigned aggregation; // imm[3:2]: equal any, ranges, equal each, equal ordered
    unsigned polarity;    // imm[5:4]
    bool most_significant; // imm[6]: index of the highest set bit / byte-word mask

    explicit StringControl(u8 imm)
        : words(imm & 1), is_signed(imm & 2), aggregation((imm >> 2) & 3),
          polarity((imm >> 4) & 3), most_significant(imm & 0x40)
    {
    }
    unsigned count() const { return words ? 8 : 16; }
};

enum Aggregation : unsigned { EQUAL_ANY = 0, RANGES = 1, EQUAL_EACH = 2, EQUAL_ORDERED = 3 };

i32 element(const Vec& v, unsigned i, const StringControl& c)
{
    if (c.words)
        return c.is_signed ? i32{v.get<i16>(i)} : i32{v.get<u16>(i)};
    return c.is_signed ? i32{v.get<i8>(i)} : i32{v.get<u8>(i)};
}

// Length of an implicit (NUL-terminated) string.
unsigned implicit_length(const Vec& v, const StringControl& c)
{
    for (unsigned i = 0; i < c.count(); ++i)
        if (element(v, i, c) == 0)
            return i;
    return c.count();
}

// Length of an explicit string: |reg| saturated to the element count.
unsigned explicit_length(i64 reg, const StringControl& c)
{
    const i64 n = c.count();
    return static_cast<unsigned>(reg < -n || reg > n ? n : reg < 0 ? -reg : reg);
}

// The result of one comparison after the element-validity rules (SDM Vol 2B
// 4.1.5, "override if invalid"): `a_valid` is for the first operand's element.
bool validated(bool value, bool a_valid, bool b_valid, unsigned aggregation)
{
    switch (aggregation) {
    case EQUAL_ANY:
    case RANGES:
        return a_valid && b_valid && value;
    case EQUAL_EACH:
        return a_valid == b_valid && (!a_valid || value);
    default: // EQUAL_ORDERED
        return !a_valid || (b_valid && value);
    }
}

// IntRes2: one bit per element of the second operand.
u32 compare_strings(const Vec& a, unsigned len_a, const Vec& b, unsigned len_b,
                    const StringControl& c)
{
    const unsigned n = c.count();
    auto equal = [&](unsigned i, unsigned j) { return element(a, i, c) == element(b, j, c); };
    u32 res = 0;
    for (unsigned j = 0; j < n; ++j) {
        bool bit = false;
        switch (c.aggregation) {
        case EQUAL_ANY:
            for (unsigned i = 0; i < n && !bit; ++i)
                bit = validated(equal(i, j), i < len_a, j < len_b, EQUAL_ANY);
            break;
        case RANGES:
            // Pairs of the first operand are inclusive [low, high] ranges.
            for (unsigned i = 0; i + 1 < n && !bit; i += 2) {
                const i32 v = element(b, j, c);
                bit = validated(element(a, i, c) <= v, i < len_a, j < len_b, RANGES) &&
                      validated(element(a, i + 1, c) >= v, i + 1 < len_a, j < len_b, RANGES);
            }
            break;
        case EQUAL_EACH:
            bit = validated(equal(j, j), j < len_a, j < len_b, EQUAL_EACH);
            break;
        case EQUAL_ORDERED:
            // Does the first operand occur in the second starting at j?
            bit = true;
            for (unsigned i = 0, k = j; i < n - j && k < n && bit; ++i, ++k)
                bit = validated(equal(i, k), i < len_a, k < len_b, EQUAL_ORDERED);
            break;
        }
        res |= u32{bit} << j;
    }
    const u32 all = (1u << n) - 1;
    switch (c.polarity) {
    case 1:
        res ^= all;
        break;
    case 3:
        res ^= (1u << len_b) - 1; // negate only the valid elements
        break;
    default:
        break;
    }
    return res;
}

template <bool Explicit, bool Index>
bool string_compare(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(begin(cpu, insn));
    const StringControl c(static_cast<u8>(insn.imm));
    const Vec a = xmm(cpu, insn.op[0].reg);
    Vec b;
    // PCMPxSTRx does not require its memory operand to be aligned.
    CPU_TRY(read_src(cpu, insn, 1, b, Align::Any));
    unsigned len_a, len_b;
    if constexpr (Explicit) {
        // REX.W / VEX.W selects RAX and RDX in 64-bit mode only; elsewhere
        // VEX.W is ignored (the host reads EAX and EDX).
        const bool wide = (insn.prefixes & pfx::REX_W) && cpu.s.in_64bit_code();
        const i64 eax = wide ? static_cast<i64>(cpu.s.gpr[RAX]) : static_cast<i32>(cpu.s.gpr[RAX]);
        const i64 edx = wide ? static_cast<i64>(cpu.s.gpr[RDX]) : static_cast<i32>(cpu.s.gpr[RDX]);
        len_a = explicit_length(eax, c);
        len_b = explicit_length(edx, c);
    } else {
        len_a = implicit_length(a, c);
        len_b = implicit_length(b, c);
    }
    const u32 res = compare_strings(a, len_a, b, len_b, c);
    const unsigned n = c.count();

    if constexpr (Index) {
        unsigned index = n;
        if (res != 0)
            index = c.most_significant ? 31 - __builtin_clz(res) : __builtin_ctz(res);
        cpu.set_gpr(RCX, 4, index);
    } else {
        Vec mask;
        if (c.most_significant) {
            // Each result bit widened to its element's bytes.
            const unsigned shift = c.words ? 1 : 0;
            for (unsigned i = 0; i < 16; ++i)
                mask.set<u8>(i, (res >> (i >> shift)) & 1 ? 0xFF : 0);
        } else {
            mask.q[0] = res;
        }
        set_xmm(cpu, 0, mask);
    }
    u64 flags = 0;
    if (res != 0) flags |= rf::CF;
    if (len_b < n) flags |= rf::ZF;
    if (len_a < n) flags |= rf::SF;
    if (res & 1) flags |= rf::OF;
    cpu.set_rflags_arith(flags);
    return true;
}

} // namespace

HANDLER(op_pcmpestri) { return string_compare<true, true>(cpu, insn); }
HANDLER(op_pcmpestrm) { return string_compare<true, false>(cpu, insn); }
HANDLER(op_pcmpistri) { return string_compare<false, true>(cpu, insn); }
HANDLER(op_pcmpistrm) { return string_compare<false, false>(cpu, insn); }

// CRC32: the destination's CRC-32C accumulated over the source's bytes, least
// significant first, in the bit-reflected form (polynomial 0x82F63B78).
HANDLER(op_crc32)
{
    u64 acc, src;
    CPU_TRY(cpu.read_operand(insn, 0, acc));
    CPU_TRY(cpu.read_operand(insn, 1, src));
    u32 crc = static_cast<u32>(acc);
    for (unsigned i = 0; i < insn.op[1].size; ++i) {
        crc ^= static_cast<u8>(src >> (8 * i));
        for (unsigned bit = 0; bit < 8; ++bit)
            crc = (crc >> 1) ^ ((crc & 1) ? 0x82F63B78u : 0);
    }
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, crc);
    return true;
}
