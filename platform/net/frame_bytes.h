// The Internet checksum (RFC 1071) for the network adapters, and the
// byte-order loads and stores of frames and descriptors (mmu/base/byte_order.h).
// Callers check bounds first.
#pragma once

#include "mmu/base/byte_order.h"
#include "mmu/base/types.h"

#include <span>

namespace net {

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
