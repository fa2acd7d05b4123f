// Fixed-width integer names and the guest address types used by every layer.
// mmu/ is the bottom of the dependency arrow, so the shared vocabulary lives here.
#pragma once

#include <cstdint>
#include <optional>

using u8 = std::uint8_t;
using u16 = std::uint16_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;
using i8 = std::int8_t;
using i16 = std::int16_t;
using i32 = std::int32_t;
using i64 = std::int64_t;

// Guest addresses. Plain aliases (not wrapper classes): page-walk and
// segmentation arithmetic on them is constant, and a wrapper made every
// expression noisier without catching a bug. The names still document intent.
using GuestPhys = u64;
using GuestVirt = u64;

// The bits of a `size`-byte value (1 to 8): also what a read from no device
// returns (an open bus reads as all ones).
constexpr u64 size_mask(unsigned size) { return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1; }

constexpr u64 PAGE_SIZE = 4096;
constexpr u64 PAGE_MASK = ~(PAGE_SIZE - 1);

// What the guest sees when an access or instruction cannot complete:
// an architectural exception vector, with its error code where the vector has one.
// For #PF, `address` is what CR2 receives.
struct Fault {
    u8 vector = 0;
    bool has_error_code = false;
    u32 error_code = 0;
    u64 address = 0;
};

// Exception vectors (SDM Vol 3A 6.3.1).
enum Vector : u8 {
    VEC_DE = 0, VEC_DB = 1, VEC_NMI = 2, VEC_BP = 3, VEC_OF = 4, VEC_BR = 5, VEC_UD = 6,
    VEC_NM = 7, VEC_DF = 8, VEC_TS = 10, VEC_NP = 11, VEC_SS = 12, VEC_GP = 13, VEC_PF = 14,
    VEC_MF = 16, VEC_AC = 17, VEC_MC = 18, VEC_XM = 19, VEC_VE = 20, VEC_CP = 21,
};

inline Fault fault_gp(u32 error_code = 0) { return Fault{VEC_GP, true, error_code, 0}; }
inline Fault fault_ud() { return Fault{VEC_UD, false, 0, 0}; }
