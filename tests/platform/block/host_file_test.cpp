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

TEST_CASE("A host file opened with cache=none (O_DIRECT) reads and writes at any offset and length")
{
    TempDir dir;
    std::vector<u8> original(3 * 4096 + 100);
    for (size_t i = 0; i < original.size(); ++i)
        original[i] = static_cast<u8>(i * 13);
    {
        auto file = HostFile::create(dir.file("disk.img")).release_value();
        REQUIRE(!file.write_at(0, original).is_error());
    }
    auto opened = HostFile::open(dir.file("disk.img"), FileAccess::ReadWrite, CacheMode::None);
    REQUIRE_MESSAGE(!opened.is_error(), opened.error().message);
    HostFile file = opened.release_value();

    std::vector<u8> patch(700, 0xEE);
    REQUIRE(!file.write_at(4000, patch).is_error()); // across a block boundary
    std::copy(patch.begin(), patch.end(), original.begin() + 4000);
    std::vector<u8> out(original.size());
    REQUIRE(!file.read_at(0, out).is_error());
    CHECK(out == original);
    std::vector<u8> middle(333);
    REQUIRE(!file.read_at(4321, middle).is_error());
    CHECK(std::equal(middle.begin(), middle.end(), original.begin() + 4321));

    // The size is what buffered I/O would leave: not rounded up to a block.
    std::vector<u8> tail(50, 0x77);
    REQUIRE(!file.write_at(original.size() + 10, tail).is_error());
    CHECK(file.size().value() == original.size() + 60);
    std::vector<u8> past(100);
    CHECK(file.read_at(original.size() + 10, past).error().kind == BlockErrorKind::Corrupt);
    REQUIRE(!file.read_at_or_zero(original.size() + 10, past).is_error());
    CHECK(past[49] == 0x77);
    CHECK(past[50] == 0);
    REQUIRE(!file.flush().is_error());
}
