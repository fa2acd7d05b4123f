// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
// VHDX headers, region tables and log entries ([MS-VHDX] 2.2.2). Uses the
// SSE4.2 crc32 instruction when the host has it, a table otherwise.
#pragma once

#include "mmu/base/types.h"

#include <span>

// The running CRC of `data` appended to what `crc` covered so far: start
// with crc32c_append(0, first) and pass the result on. The usual pre- and
// post-inversion are inside, so crc32c_append(crc32c_append(0, a), b) equals
// crc32c(a followed by b).
u32 crc32c_append(u32 crc, std::span<const u8> data);

inline u32 crc32c(std::span<const u8> data)
{
    return crc32c_append(0, data);
}

// The generic table-driven implementation, whatever the host: for tests that
// compare it with the hardware path.
u32 crc32c_append_portable(u32 crc, std::span<const u8> data);
