#include "platform/block/crc32c.h"

#include <array>
#include <cstring>

namespace {

constexpr u32 POLYNOMIAL = 0x82F63B78; // reflected 0x1EDC6F41 (RFC 3720 B.4)

// Slicing by 8: table[k][b] is the CRC of byte b followed by k zero bytes.
constexpr std::array<std::array<u32, 256>, 8> make_tables()
{
    std::array<std::array<u32, 256>, 8> tables{};
    for (u32 b = 0; b < 256; ++b) {
        u32 crc = b;
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc >> 1) ^ ((crc & 1) ? POLYNOMIAL : 0);
        tables[0][b] = crc;
    }
    for (u32 b = 0; b < 256; ++b)
        for (size_t k = 1; k < 8; ++k)
            tables[k][b] = (tables[k - 1][b] >> 8) ^ tables[0][tables[k - 1][b] & 0xFF];
    return tables;
}

constexpr auto TABLES = make_tables();

u32 update_portable(u32 crc, const u8* data, size_t size)
{
    while (size >= 8) {
        u64 word;
        std::memcpy(&word, data, 8);
        // Little-endian hosts only (the project builds for x86-64).
        word ^= crc;
        crc = TABLES[7][word & 0xFF] ^ TABLES[6][(word >> 8) & 0xFF] ^
              TABLES[5][(word >> 16) & 0xFF] ^ TABLES[4][(word >> 24) & 0xFF] ^
              TABLES[3][(word >> 32) & 0xFF] ^ TABLES[2][(word >> 40) & 0xFF] ^
              TABLES[1][(word >> 48) & 0xFF] ^ TABLES[0][word >> 56];
        data += 8;
        size -= 8;
    }
    while (size-- > 0)
        crc = (crc >> 8) ^ TABLES[0][(crc ^ *data++) & 0xFF];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) u32 update_sse42(u32 crc, const u8* data, size_t size)
{
    u64 crc64 = crc;
    while (size >= 8) {
        u64 word;
        std::memcpy(&word, data, 8);
        crc64 = __builtin_ia32_crc32di(crc64, word);
        data += 8;
        size -= 8;
    }
    crc = static_cast<u32>(crc64);
    while (size-- > 0)
        crc = __builtin_ia32_crc32qi(crc, *data++);
    return crc;
}

bool host_has_sse42()
{
    static const bool has = __builtin_cpu_supports("sse4.2");
    return has;
}
#endif

} // namespace

u32 crc32c_append_portable(u32 crc, std::span<const u8> data)
{
    return ~update_portable(~crc, data.data(), data.size());
}

u32 crc32c_append(u32 crc, std::span<const u8> data)
{
#if defined(__x86_64__)
    if (host_has_sse42())
        return ~update_sse42(~crc, data.data(), data.size());
#endif
    return crc32c_append_portable(crc, data);
}
