// Lazy arithmetic flags: ALU instructions record their operands, result and
// kind; CF/PF/AF/ZF/SF/OF are computed only when something reads them.
#pragma once

#include "cpu/state/cpu_state.h"

enum class FlagOp : u8 {
    None, // RFLAGS holds the arithmetic flags
    Add, Adc, Sub, Sbb, Logic, Inc, Dec,
};

struct LazyFlags {
    FlagOp op = FlagOp::None;
    u8 size = 4;  // operand size in bytes
    u64 result = 0;
    u64 src1 = 0; // first operand (destination's old value)
    u64 src2 = 0; // second operand; for Adc/Sbb the carry-in is in `carry_in`
    u64 carry_in = 0;
    u64 preserved_cf = 0; // Inc/Dec keep the CF that was current
};

// Computes the six arithmetic flags (as RFLAGS bits) that `lf` describes.
u64 compute_arith_flags(const LazyFlags& lf);

constexpr u64 sign_bit(unsigned size) { return 1ull << (size * 8 - 1); }
constexpr u64 sign_extend(u64 v, unsigned size)
{
    return size >= 8 ? v : (v & sign_bit(size)) ? v | ~size_mask(size) : v & size_mask(size);
}
inline bool parity_even(u64 v) { return !__builtin_parity(static_cast<unsigned>(v & 0xFF)); }
// ZF, SF and PF (as RFLAGS bits) of a result of `size` bytes.
inline u64 zf_sf_pf(u64 result, unsigned size)
{
    result &= size_mask(size);
    return (result == 0 ? rf::ZF : 0) | ((result & sign_bit(size)) ? rf::SF : 0) |
           (parity_even(result) ? rf::PF : 0);
}

// Flags the SDM leaves undefined, as the vendor's processors set them
// (docs/testing.md "Vendor differences"; Intel Xeon host, 2026-12-08).
// MUL/IMUL: CF = OF = the product does not fit. Intel: SF and PF of the
// low half, ZF and AF clear. AMD: SF, ZF, AF and PF as they were (AMD
// corpus: 3,000 products). `old` is RFLAGS before the instruction.
inline u64 multiply_flags(u64 old, u64 low_half, unsigned size, bool overflow, bool intel)
{
    const u64 carry = overflow ? rf::CF | rf::OF : 0;
    if (intel)
        return (zf_sf_pf(low_half, size) & ~rf::ZF) | carry;
    return (old & (rf::SF | rf::ZF | rf::AF | rf::PF)) | carry;
}
// OF of SHL/SAL, ROL and RCL by more than one bit on Intel: the first
// one-bit step's, the operand's top bit against the next one.
inline bool intel_left_shift_of(u64 operand, unsigned bits)
{
    return ((operand >> (bits - 1)) ^ (operand >> (bits - 2))) & 1;
}
