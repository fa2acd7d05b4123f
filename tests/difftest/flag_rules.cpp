#include "tests/difftest/flag_rules.h"

namespace difftest {

namespace {

// How the count of a shift or rotate changes what is defined.
enum class Count : u8 {
    None,
    Shift,       // SAR: AF undefined for count != 0, OF for count > 1
    ShiftWide,   // SHL (and its /6 alias)/SHR: as Shift, and CF undefined for count >= width
    Rotate,      // ROL/ROR/RCL/RCR: OF undefined for count != 1
    DoubleShift, // SHLD/SHRD: as Shift; count > width makes everything undefined
};

struct FlagRule {
    ZydisMnemonic mnemonic;
    u64 undefined;
    Count count;
};

constexpr u64 SZAP = FLAG_SF | FLAG_ZF | FLAG_AF | FLAG_PF;

// The one table of undefined flags (SDM Vol 2 "Flags Affected"). Instructions
// not listed define every flag they write.
constexpr FlagRule FLAG_RULES[] = {
    {ZYDIS_MNEMONIC_AND, FLAG_AF, Count::None},
    {ZYDIS_MNEMONIC_OR, FLAG_AF, Count::None},
    {ZYDIS_MNEMONIC_XOR, FLAG_AF, Count::None},
    {ZYDIS_MNEMONIC_TEST, FLAG_AF, Count::None},
    {ZYDIS_MNEMONIC_MUL, SZAP, Count::None},
    {ZYDIS_MNEMONIC_IMUL, SZAP, Count::None},
    {ZYDIS_MNEMONIC_DIV, FLAGS_ARITH, Count::None},
    {ZYDIS_MNEMONIC_IDIV, FLAGS_ARITH, Count::None},
    {ZYDIS_MNEMONIC_BT, FLAG_OF | FLAG_SF | FLAG_AF | FLAG_PF, Count::None},
    {ZYDIS_MNEMONIC_BTS, FLAG_OF | FLAG_SF | FLAG_AF | FLAG_PF, Count::None},
    {ZYDIS_MNEMONIC_BTR, FLAG_OF | FLAG_SF | FLAG_AF | FLAG_PF, Count::None},
    {ZYDIS_MNEMONIC_BTC, FLAG_OF | FLAG_SF | FLAG_AF | FLAG_PF, Count::None},
    {ZYDIS_MNEMONIC_BSF, FLAGS_ARITH & ~FLAG_ZF, Count::None},
    {ZYDIS_MNEMONIC_BSR, FLAGS_ARITH & ~FLAG_ZF, Count::None},
    {ZYDIS_MNEMONIC_SHL, 0, Count::ShiftWide},
    {ZYDIS_MNEMONIC_SHR, 0, Count::ShiftWide},
    {ZYDIS_MNEMONIC_SAR, 0, Count::Shift},
    {ZYDIS_MNEMONIC_ROL, 0, Count::Rotate},
    {ZYDIS_MNEMONIC_ROR, 0, Count::Rotate},
    {ZYDIS_MNEMONIC_RCL, 0, Count::Rotate},
    {ZYDIS_MNEMONIC_RCR, 0, Count::Rotate},
    {ZYDIS_MNEMONIC_SHLD, 0, Count::DoubleShift},
    {ZYDIS_MNEMONIC_SHRD, 0, Count::DoubleShift},
    {ZYDIS_MNEMONIC_DAA, FLAG_OF, Count::None},
    {ZYDIS_MNEMONIC_DAS, FLAG_OF, Count::None},
    {ZYDIS_MNEMONIC_AAA, FLAG_OF | FLAG_SF | FLAG_ZF | FLAG_PF, Count::None},
    {ZYDIS_MNEMONIC_AAS, FLAG_OF | FLAG_SF | FLAG_ZF | FLAG_PF, Count::None},
    {ZYDIS_MNEMONIC_AAM, FLAG_OF | FLAG_AF | FLAG_CF, Count::None},
    {ZYDIS_MNEMONIC_AAD, FLAG_OF | FLAG_AF | FLAG_CF, Count::None},
};

// The count operand of a shift: an immediate, CL, or the implicit 1.
u64 shift_count(const ZydisDecodedInstruction& insn, const ZydisDecodedOperand* ops,
                const Regs& init)
{
    for (unsigned i = 1; i < insn.operand_count; ++i) {
        const ZydisDecodedOperand& op = ops[i];
        if (op.type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
            return op.imm.value.u;
        if (op.type == ZYDIS_OPERAND_TYPE_REGISTER && op.reg.value == ZYDIS_REGISTER_CL &&
            op.visibility != ZYDIS_OPERAND_VISIBILITY_HIDDEN)
            return init.gpr[1] & 0xFF;
    }
    return 1;
}

} // namespace

Undefined undefined_for(const ZydisDecodedInstruction& insn, const ZydisDecodedOperand* ops,
                        const Regs& init)
{
    Undefined u;
    if (insn.mnemonic == ZYDIS_MNEMONIC_BSWAP && insn.operand_width == 16) {
        u.result = true; // SDM Vol 2A BSWAP: "the result is undefined" for 16-bit operands
        return u;
    }
    for (const FlagRule& rule : FLAG_RULES) {
        if (rule.mnemonic != insn.mnemonic)
            continue;
        u.flags = rule.undefined;
        if (rule.count == Count::None)
            return u;
        const unsigned width = insn.operand_width;
        const u64 count = shift_count(insn, ops, init) & (width == 64 ? 0x3F : 0x1F);
        if (count == 0)
            return u; // flags unaffected: all compared
        switch (rule.count) {
        case Count::None:
            break;
        case Count::ShiftWide:
            if (count >= width)
                u.flags |= FLAG_CF;
            [[fallthrough]];
        case Count::Shift:
            u.flags |= FLAG_AF;
            if (count > 1)
                u.flags |= FLAG_OF;
            break;
        case Count::Rotate:
            if (count != 1)
                u.flags |= FLAG_OF;
            break;
        case Count::DoubleShift:
            u.flags |= FLAG_AF;
            if (count > 1)
                u.flags |= FLAG_OF;
            if (count > width) {
                u.flags = FLAGS_ARITH;
                u.result = true;
            }
            break;
        }
        return u;
    }
    return u;
}

} // namespace difftest
