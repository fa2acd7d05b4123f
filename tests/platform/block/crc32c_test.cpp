#include "platform/block/crc32c.h"

#include <doctest/doctest.h>
#include <random>
#include <string_view>
#include <vector>

namespace {

std::span<const u8> bytes(std::string_view text)
{
    return {reinterpret_cast<const u8*>(text.data()), text.size()};
}

} // namespace

TEST_CASE("CRC-32C of the check string 123456789 is E3069283")
{
    CHECK(crc32c(bytes("123456789")) == 0xE3069283u);
    CHECK(crc32c_append_portable(0, bytes("123456789")) == 0xE3069283u);
    CHECK(crc32c({}) == 0);
}

TEST_CASE("CRC-32C matches the iSCSI test vectors of RFC 3720 B.4")
{
    std::vector<u8> zeros(32, 0), ones(32, 0xFF), up(32), down(32);
    for (size_t i = 0; i < 32; ++i) {
        up[i] = static_cast<u8>(i);
        down[i] = static_cast<u8>(31 - i);
    }
    CHECK(crc32c(zeros) == 0x8A9136AAu);
    CHECK(crc32c(ones) == 0x62A8AB43u);
    CHECK(crc32c(up) == 0x46DD794Eu);
    CHECK(crc32c(down) == 0x113FDB5Cu);
}

TEST_CASE("CRC-32C appended piece by piece equals the CRC of the whole, on both paths")
{
    std::mt19937 rng(7);
    std::vector<u8> data(10007);
    for (u8& b : data)
        b = static_cast<u8>(rng());
    const u32 whole = crc32c(data);
    CHECK(crc32c_append_portable(0, data) == whole);
    for (size_t split : {0ul, 1ul, 7ul, 8ul, 4096ul, 10006ul}) {
        std::span<const u8> all(data);
        CHECK(crc32c_append(crc32c_append(0, all.first(split)), all.subspan(split)) == whole);
        CHECK(crc32c_append_portable(crc32c_append_portable(0, all.first(split)),
                                     all.subspan(split)) == whole);
    }
}
