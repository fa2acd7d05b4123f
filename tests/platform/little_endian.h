// Little-endian fields in byte buffers (firmware tables, boot headers), for
// the platform tests.
#pragma once

#include "mmu/base/types.h"

#include <span>

inline u64 read_le(std::span<const u8> bytes, size_t offset, unsigned size)
{
    u64 value = 0;
    for (unsigned i = 0; i < size; ++i)
        value |= u64(bytes[offset + i]) << (8 * i);
    return value;
}

inline void write_le(std::span<u8> bytes, size_t offset, u64 value, unsigned size)
{
    for (unsigned i = 0; i < size; ++i)
        bytes[offset + i] = static_cast<u8>(value >> (8 * i));
}
