// mmu/base/byte_order.h and byte_reader.h: fields in a fixed byte order at
// any offset, and a reader that never reads past its buffer.
#include "mmu/base/byte_order.h"
#include "mmu/base/byte_reader.h"

#include <doctest/doctest.h>

#include <array>

TEST_CASE("Byte-order loads and stores put the bytes where each order says, at odd offsets too")
{
    std::array<u8, 11> b{};
    store_le32(b, 1, 0x11223344);
    CHECK(b[1] == 0x44);
    CHECK(b[4] == 0x11);
    CHECK(load_le32(b, 1) == 0x11223344u);
    store_be32(b, 5, 0x11223344);
    CHECK(b[5] == 0x11);
    CHECK(b[8] == 0x44);
    CHECK(load_be32(b, 5) == 0x11223344u);
    CHECK(load_be24(b, 5) == 0x112233u);
    CHECK(load_be16(b, 5) == 0x1122u);
    store_be64(b, 3, 0x0102030405060708ull);
    CHECK(load_be64(b, 3) == 0x0102030405060708ull);
    CHECK(load_le64(b, 3) == 0x0807060504030201ull);
    CHECK(load_be(b, 3, 3) == 0x010203u);
    store_le(b, 0, 0xABCDEF, 3);
    CHECK(load_le(b, 0, 3) == 0xABCDEFu);
    CHECK(load_le16(b, 1) == 0xABCDu);
}

TEST_CASE("A byte reader fails at the first read past the end and stays failed")
{
    const std::array<u8, 6> b{0x2A, 0x96, 0x01, 0x02, 'h', 'i'};
    ByteReader r(b);
    CHECK(r.u8_() == 0x2A);
    CHECK(r.varint() == 150); // LEB128 0x96 0x01
    CHECK(r.string() == "hi"); // length 2, then the bytes
    CHECK(r.ok());
    CHECK(r.at_end());
    CHECK(r.fixed(1) == 0);
    CHECK_FALSE(r.ok());
    ByteReader again(b, 2);
    CHECK(again.u8_() == 0x01); // from the start position given
    CHECK(again.fixed(8) == 0); // 3 bytes left: refused, nothing read
    CHECK_FALSE(again.ok());
    CHECK(again.u8_() == 0);
}

TEST_CASE("A byte reader refuses over-long varints, counts above their limit and lengths beyond the buffer")
{
    const std::array<u8, 11> endless{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    ByteReader a(endless);
    CHECK(a.varint() == 0);
    CHECK_FALSE(a.ok());
    const std::array<u8, 1> five{5};
    ByteReader b(five);
    CHECK(b.count(4) == 0);
    CHECK_FALSE(b.ok());
    const std::array<u8, 3> short_string{5, 'a', 'b'};
    ByteReader c(short_string);
    CHECK(c.string().empty());
    CHECK_FALSE(c.ok());
    ByteReader d(five, 2);
    CHECK_FALSE(d.ok()); // a start beyond the end
}
