#include "cpu/core/lazy_flags.h"

u64 compute_arith_flags(const LazyFlags& lf)
{
    const unsigned size = lf.size;
    const u64 mask = size_mask(size);
    const u64 sign = sign_bit(size);
    const u64 res = lf.result & mask;
    const u64 a = lf.src1 & mask;
    const u64 b = lf.src2 & mask;
    u64 flags = zf_sf_pf(res, size);

    switch (lf.op) {
    case FlagOp::None:
        break;
    case FlagOp::Add:
    case FlagOp::Adc: {
        bool carry = lf.op == FlagOp::Adc && lf.carry_in;
        if (res < a || (carry && res == a))
            flags |= rf::CF;
        if ((~(a ^ b) & (a ^ res)) & sign)
            flags |= rf::OF;
        if ((a ^ b ^ res) & 0x10)
            flags |= rf::AF;
        break;
    }
    case FlagOp::Sub:
    case FlagOp::Sbb: {
        bool borrow = lf.op == FlagOp::Sbb && lf.carry_in;
        if (a < b || (borrow && a == b))
            flags |= rf::CF;
        if (((a ^ b) & (a ^ res)) & sign)
            flags |= rf::OF;
        if ((a ^ b ^ res) & 0x10)
            flags |= rf::AF;
        break;
    }
    case FlagOp::Logic:
        break;
    case FlagOp::Inc:
        flags |= lf.preserved_cf & rf::CF;
        if (res == sign)
            flags |= rf::OF;
        if ((res & 0xF) == 0)
            flags |= rf::AF;
        break;
    case FlagOp::Dec:
        flags |= lf.preserved_cf & rf::CF;
        if (res == sign - 1)
            flags |= rf::OF;
        if ((res & 0xF) == 0xF)
            flags |= rf::AF;
        break;
    }
    return flags;
}
