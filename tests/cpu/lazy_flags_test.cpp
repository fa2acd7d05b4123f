#include "cpu/core/lazy_flags.h"

#include <doctest/doctest.h>

namespace {
u64 flags_of(FlagOp op, unsigned size, u64 a, u64 b, u64 carry = 0)
{
    LazyFlags lf;
    lf.op = op;
    lf.size = static_cast<u8>(size);
    lf.src1 = a;
    lf.src2 = b;
    lf.carry_in = carry;
    switch (op) {
    case FlagOp::Add: lf.result = a + b; break;
    case FlagOp::Adc: lf.result = a + b + carry; break;
    case FlagOp::Sub: lf.result = a - b; break;
    case FlagOp::Sbb: lf.result = a - b - carry; break;
    default: lf.result = a; break;
    }
    return compute_arith_flags(lf);
}
} // namespace

TEST_CASE("8-bit ADD of 0xFF and 1 carries, is zero and sets AF")
{
    u64 f = flags_of(FlagOp::Add, 1, 0xFF, 1);
    CHECK((f & rf::CF) != 0);
    CHECK((f & rf::ZF) != 0);
    CHECK((f & rf::AF) != 0);
    CHECK((f & rf::OF) == 0);
    CHECK((f & rf::PF) != 0);
}

TEST_CASE("ADC with carry-in detects a carry when the sum wraps exactly")
{
    u64 f = flags_of(FlagOp::Adc, 4, 0xFFFFFFFF, 0, 1);
    CHECK((f & rf::CF) != 0);
    CHECK((f & rf::ZF) != 0);
}

TEST_CASE("SBB with borrow-in borrows when the operands are equal")
{
    u64 f = flags_of(FlagOp::Sbb, 2, 5, 5, 1);
    CHECK((f & rf::CF) != 0);
    CHECK((f & rf::SF) != 0);
}

TEST_CASE("16-bit SUB of 0x8000 - 1 overflows to a positive")
{
    u64 f = flags_of(FlagOp::Sub, 2, 0x8000, 1);
    CHECK((f & rf::OF) != 0);
    CHECK((f & rf::SF) == 0);
    CHECK((f & rf::CF) == 0);
}

TEST_CASE("INC keeps the carry it was given and sets OF at the sign boundary")
{
    LazyFlags lf{FlagOp::Inc, 1, 0x80, 0x7F, 1, 0, rf::CF};
    u64 f = compute_arith_flags(lf);
    CHECK((f & rf::CF) != 0);
    CHECK((f & rf::OF) != 0);
    CHECK((f & rf::AF) != 0);
}

TEST_CASE("parity counts only the low byte")
{
    CHECK(parity_even(0x0300));
    CHECK(!parity_even(0x01));
    CHECK(parity_even(0x03));
}
