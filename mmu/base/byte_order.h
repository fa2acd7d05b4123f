// Integers stored in byte buffers in a fixed byte order, at any alignment:
// guest structures (VMBus messages, descriptors, firmware tables) are
// little-endian, network frames, SCSI CDBs and VHD structures big-endian.
// One set for every device so the byte order is spelled once. The caller
// checks that the field lies inside the buffer (span indexing is not
// checked in a release build).
#pragma once

#include "mmu/base/types.h"

#include <bit>
#include <cstring>
#include <span>

// `size` bytes (1 to 8) at `at`, least significant first.
inline u64 load_le(std::span<const u8> bytes, size_t at, unsigned size)
{
    u64 value = 0;
    for (unsigned i = 0; i < size; ++i)
        value |= u64(bytes[at + i]) << (8 * i);
    return value;
}
inline void store_le(std::span<u8> bytes, size_t at, u64 value, unsigned size)
{
    for (unsigned i = 0; i < size; ++i)
        bytes[at + i] = static_cast<u8>(value >> (8 * i));
}

// `size` bytes (1 to 8) at `at`, most significant first.
inline u64 load_be(std::span<const u8> bytes, size_t at, unsigned size)
{
    u64 value = 0;
    for (unsigned i = 0; i < size; ++i)
        value = value << 8 | bytes[at + i];
    return value;
}
inline void store_be(std::span<u8> bytes, size_t at, u64 value, unsigned size)
{
    for (unsigned i = size; i-- > 0; value >>= 8)
        bytes[at + i] = static_cast<u8>(value);
}

// Fixed widths: one unaligned host load or store, swapped when the host's
// order differs.
namespace byte_order_detail {
template <class T> T swap(T v)
{
    if constexpr (sizeof(T) == 2)
        return __builtin_bswap16(v);
    else if constexpr (sizeof(T) == 4)
        return __builtin_bswap32(v);
    else
        return __builtin_bswap64(v);
}
template <class T, std::endian order> T load(std::span<const u8> b, size_t at)
{
    T v;
    std::memcpy(&v, b.data() + at, sizeof v);
    return order == std::endian::native ? v : swap(v);
}
template <class T, std::endian order> void store(std::span<u8> b, size_t at, T v)
{
    if (order != std::endian::native)
        v = swap(v);
    std::memcpy(b.data() + at, &v, sizeof v);
}
} // namespace byte_order_detail

inline u16 load_le16(std::span<const u8> b, size_t at) { return byte_order_detail::load<u16, std::endian::little>(b, at); }
inline u32 load_le32(std::span<const u8> b, size_t at) { return byte_order_detail::load<u32, std::endian::little>(b, at); }
inline u64 load_le64(std::span<const u8> b, size_t at) { return byte_order_detail::load<u64, std::endian::little>(b, at); }
inline void store_le16(std::span<u8> b, size_t at, u16 v) { byte_order_detail::store<u16, std::endian::little>(b, at, v); }
inline void store_le32(std::span<u8> b, size_t at, u32 v) { byte_order_detail::store<u32, std::endian::little>(b, at, v); }
inline void store_le64(std::span<u8> b, size_t at, u64 v) { byte_order_detail::store<u64, std::endian::little>(b, at, v); }

inline u16 load_be16(std::span<const u8> b, size_t at) { return byte_order_detail::load<u16, std::endian::big>(b, at); }
inline u32 load_be24(std::span<const u8> b, size_t at) { return static_cast<u32>(load_be(b, at, 3)); }
inline u32 load_be32(std::span<const u8> b, size_t at) { return byte_order_detail::load<u32, std::endian::big>(b, at); }
inline u64 load_be64(std::span<const u8> b, size_t at) { return byte_order_detail::load<u64, std::endian::big>(b, at); }
inline void store_be16(std::span<u8> b, size_t at, u16 v) { byte_order_detail::store<u16, std::endian::big>(b, at, v); }
inline void store_be32(std::span<u8> b, size_t at, u32 v) { byte_order_detail::store<u32, std::endian::big>(b, at, v); }
inline void store_be64(std::span<u8> b, size_t at, u64 v) { byte_order_detail::store<u64, std::endian::big>(b, at, v); }
