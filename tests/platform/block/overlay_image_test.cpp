// snapshot=on disks (platform/block/overlay_image.h): the guest reads what
// it wrote, the image file never changes.
#include "platform/block/overlay_image.h"

#include "tests/platform/block/temp_dir.h"
#include "tests/platform/block/test_image.h"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <vector>

namespace {

std::unique_ptr<BlockImage> overlay_on(const std::string& path, u64 size, u8 fill)
{
    {
        std::shared_ptr<BlockImage> writable = make_raw_image(path, size, false);
        std::vector<u8> bytes(size, fill);
        REQUIRE_FALSE(writable->write(0, bytes).is_error());
        REQUIRE_FALSE(writable->flush().is_error());
    }
    OpenOptions open;
    open.format = "raw";
    open.read_only = true;
    BlockResult<OpenedImage> opened = open_image(path, open);
    REQUIRE_FALSE(opened.is_error());
    return make_memory_overlay(std::move(opened.value().image));
}

std::vector<u8> file_bytes(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

} // namespace

TEST_CASE("A snapshot=on disk reads back its writes, partial clusters included, and leaves the file alone")
{
    TempDir dir;
    const std::string path = dir.file("base.img");
    constexpr u64 SIZE = 64 * 1024 + 512; // not a whole number of clusters
    std::unique_ptr<BlockImage> disk = overlay_on(path, SIZE, 0xAA);
    const std::vector<u8> before = file_bytes(path);
    CHECK_FALSE(disk->info().read_only);

    std::vector<u8> sector(512, 0x11);
    REQUIRE_FALSE(disk->write(4096 + 512, sector).is_error()); // inside a cluster
    std::vector<u8> span(8192 + 1024, 0x22);
    REQUIRE_FALSE(disk->write(16384 - 512, span).is_error()); // across three clusters
    REQUIRE_FALSE(disk->write(SIZE - 512, sector).is_error()); // the short last cluster
    REQUIRE_FALSE(disk->flush().is_error());

    std::vector<u8> all(SIZE);
    REQUIRE_FALSE(disk->read(0, all).is_error());
    for (u64 i = 0; i < SIZE; ++i) {
        u8 expected = 0xAA;
        if (i >= 4096 + 512 && i < 4096 + 1024)
            expected = 0x11;
        if (i >= 16384 - 512 && i < 16384 - 512 + span.size())
            expected = 0x22;
        if (i >= SIZE - 512)
            expected = 0x11;
        if (all[i] != expected) {
            CAPTURE(i);
            CHECK(all[i] == expected);
            break;
        }
    }
    CHECK(file_bytes(path) == before);
    // Written clusters map as this disk's data.
    BlockResult<Extent> extent = disk->map(4096, SIZE - 4096);
    REQUIRE_FALSE(extent.is_error());
    CHECK(extent.value().kind == ExtentKind::Data);
    CHECK_FALSE(extent.value().host_offset);
    CHECK(disk->check(true).is_error());
    CHECK(disk->write(SIZE, sector).error().kind == BlockErrorKind::OutOfRange);
}
