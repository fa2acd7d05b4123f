#include "platform/block/host_file.h"

#include "tests/platform/block/temp_dir.h"

#include <doctest/doctest.h>
#include <vector>

TEST_CASE("A host file refuses a second writer and a reader while one process writes it")
{
    TempDir dir;
    auto writer = HostFile::create(dir.file("disk.img"));
    REQUIRE(!writer.is_error());

    auto second = HostFile::open(dir.file("disk.img"), FileAccess::ReadWrite);
    REQUIRE(second.is_error());
    CHECK(second.error().kind == BlockErrorKind::InUse);
    auto reader = HostFile::open(dir.file("disk.img"), FileAccess::ReadOnly);
    REQUIRE(reader.is_error());
    CHECK(reader.error().kind == BlockErrorKind::InUse);
}

TEST_CASE("Several readers share a host file, and a writer waits for them to close it")
{
    TempDir dir;
    { REQUIRE(!HostFile::create(dir.file("disk.img")).is_error()); }
    auto first = HostFile::open(dir.file("disk.img"), FileAccess::ReadOnly);
    auto second = HostFile::open(dir.file("disk.img"), FileAccess::ReadOnly);
    REQUIRE(!first.is_error());
    REQUIRE(!second.is_error());
    CHECK(HostFile::open(dir.file("disk.img"), FileAccess::ReadWrite).error().kind ==
          BlockErrorKind::InUse);
}

TEST_CASE("A missing host file is NotFound with its path in the message")
{
    TempDir dir;
    auto missing = HostFile::open(dir.file("absent.vhdx"), FileAccess::ReadOnly);
    REQUIRE(missing.is_error());
    CHECK(missing.error().kind == BlockErrorKind::NotFound);
    CHECK(missing.error().message.find("absent.vhdx") != std::string::npos);
}

TEST_CASE("Reading past the end of a host file is an error unless zeros are asked for")
{
    TempDir dir;
    auto file = HostFile::create(dir.file("disk.img")).release_value();
    std::vector<u8> data(100, 0xAB);
    REQUIRE(!file.write_at(0, data).is_error());

    std::vector<u8> out(200, 0xFF);
    auto strict = file.read_at(0, out);
    REQUIRE(strict.is_error());
    CHECK(strict.error().kind == BlockErrorKind::Corrupt);

    REQUIRE(!file.read_at_or_zero(0, out).is_error());
    CHECK(out[99] == 0xAB);
    CHECK(out[100] == 0);
    CHECK(out[199] == 0);
}

TEST_CASE("Zeroing a range of a host file makes it read as zeros and keeps its size")
{
    TempDir dir;
    auto file = HostFile::create(dir.file("disk.img")).release_value();
    std::vector<u8> data(3 * 4096, 0x5A);
    REQUIRE(!file.write_at(0, data).is_error());
    REQUIRE(!file.zero_range(4096, 4096).is_error());
    std::vector<u8> out(data.size());
    REQUIRE(!file.read_at(0, out).is_error());
    CHECK(out[4095] == 0x5A);
    CHECK(out[4096] == 0);
    CHECK(out[8191] == 0);
    CHECK(out[8192] == 0x5A);
    CHECK(file.size().value() == data.size());
}
