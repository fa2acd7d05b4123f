// Byte-order loads and stores on frames and descriptors, and the Internet
// checksum (RFC 1071), for the network adapters. Callers check bounds first.
#pragma once

#include "mmu/base/types.h"

#include <span>

namespace net {

inline u16 load_be16(std::span<const u8> b, size_t at)
{
    return static_cast<u16>(b[at] << 8 | b[at + 1]);
}
inline u32 load_be32(std::span<const u8> b, size_t at)
{
    return u32(load_be16(b, at)) << 16 | load_be16(b, at + 2);
}
inline void store_be16(std::span<u8> b, size_t at, u16 v)
{
    b[at] = static_cast<u8>(v >> 8);
    b[at + 1] = static_cast<u8>(v);
}
inline void store_be32(std::span<u8> b, size_t at, u32 v)
{
    store_be16(b, at, static_cast<u16>(v >> 16));
    store_be16(b, at + 2, static_cast<u16>(v));
}
inline u64 load_le(std::span<const u8> b, size_t at, unsigned size)
{
    u64 v = 0;
    for (unsigned i = 0; i < size; ++i)
        v |= u64(b[at + i]) << (8 * i);
    return v;
}
inline void store_le(std::span<u8> b, size_t at, u64 v, unsigned size)
{
    for (unsigned i = 0; i < size; ++i)
        b[at + i] = static_cast<u8>(v >> (8 * i));
}

// The one's-complement sum of big-endian 16-bit words (an odd last byte is
// the high half of a word), added to `sum` without folding.
inline u64 checksum_add(std::span<const u8> bytes, u64 sum = 0)
{
    size_t i = 0;
    for (; i + 1 < bytes.size(); i += 2)
        sum += load_be16(bytes, i);
    if (i < bytes.size())
        sum += u64(bytes[i]) << 8;
    return sum;
}
// Folds a sum to 16 bits and complements it: the checksum field's value.
inline u16 checksum_finish(u64 sum)
{
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return static_cast<u16>(~sum);
}

} // namespace net
