#include "platform/block/image_format.h"

#include "tests/platform/block/temp_dir.h"

#include <doctest/doctest.h>
#include <cstring>
#include <fstream>
#include <vector>

namespace {

std::unique_ptr<BlockImage> open_or_fail(const std::string& path, OpenOptions options = {})
{
    auto opened = open_image(path, options);
    REQUIRE_MESSAGE(!opened.is_error(), opened.error().message);
    return std::move(opened.value().image);
}

} // namespace

TEST_CASE("A raw image is created with its size and reads back what was written")
{
    TempDir dir;
    CreateOptions create{"raw", 1 << 20, {}, ""};
    REQUIRE(!create_image(dir.file("disk.img"), create).is_error());
    auto image = open_or_fail(dir.file("disk.img"), {"raw"});
    CHECK(image->info().virtual_size == 1 << 20);
    CHECK(image->info().format == "raw");

    std::vector<u8> sector(512, 0x42);
    REQUIRE(!image->write(4096, sector).is_error());
    REQUIRE(!image->flush().is_error());
    std::vector<u8> out(1024);
    REQUIRE(!image->read(3584, out).is_error());
    CHECK(out[511] == 0);
    CHECK(out[512] == 0x42);
}

TEST_CASE("A raw image refuses requests that are unaligned or end past the disk")
{
    TempDir dir;
    REQUIRE(!create_image(dir.file("disk.img"), {"raw", 8192, {}, ""}).is_error());
    auto image = open_or_fail(dir.file("disk.img"), {"raw"});
    std::vector<u8> buffer(512);
    CHECK(image->read(100, buffer).error().kind == BlockErrorKind::OutOfRange);
    CHECK(image->read(8192, buffer).error().kind == BlockErrorKind::OutOfRange);
    CHECK(image->write(UINT64_MAX - 511, buffer).error().kind == BlockErrorKind::OutOfRange);
    CHECK(!image->read(8192 - 512, buffer).is_error());
}

TEST_CASE("A raw image maps holes as zeros and written ranges as data")
{
    TempDir dir;
    REQUIRE(!create_image(dir.file("disk.img"), {"raw", 16 << 20, {}, ""}).is_error());
    auto image = open_or_fail(dir.file("disk.img"), {"raw"});
    std::vector<u8> block(1 << 20, 1);
    REQUIRE(!image->write(8 << 20, block).is_error());

    auto first = image->map(0, 16 << 20).release_value();
    CHECK(first.kind == ExtentKind::Zero);
    CHECK(first.length == 8 << 20);
    auto data = image->map(8 << 20, 16 << 20).release_value();
    CHECK(data.kind == ExtentKind::Data);
    CHECK(data.host_offset == (8u << 20));
    CHECK(data.length >= (1u << 20));
}

TEST_CASE("A file in no known format probes as raw and is reported so")
{
    TempDir dir;
    { std::ofstream(dir.file("blob")) << std::string(4096, 'x'); }
    auto opened = open_image(dir.file("blob"), {});
    REQUIRE(!opened.is_error());
    CHECK(opened.value().probed_raw);
    CHECK(opened.value().image->info().format == "raw");
    CHECK(raw_probe_warning("blob").find("probing guessed raw") != std::string::npos);
}

TEST_CASE("An unknown format name is refused before the file is touched")
{
    TempDir dir;
    auto opened = open_image(dir.file("absent"), {"qcow3"});
    REQUIRE(opened.is_error());
    CHECK(opened.error().kind == BlockErrorKind::InvalidArgument);
    CHECK(find_image_format("vhd") == find_image_format("vpc"));
}

TEST_CASE("A probed raw image refuses writes that would make it probe as VHD next time")
{
    TempDir dir;
    std::string vhd = dir.file("fixed.vhd");
    REQUIRE(!create_image(vhd, {"vpc", 1 << 20, {{"subformat", "fixed"}, {"force_size", "on"}}, ""})
                 .is_error());
    // The fixed VHD's footer, which the guest of a raw disk could write.
    std::vector<u8> footer(512);
    {
        auto opened = open_image(vhd, {"raw", true});
        REQUIRE(!opened.is_error());
        u64 size = opened.value().image->info().virtual_size;
        REQUIRE(!opened.value().image->read(size - 512, footer).is_error());
    }
    { std::ofstream(dir.file("blob")) << std::string(1 << 20, 'x'); }
    auto opened = open_image(dir.file("blob"), {});
    REQUIRE(!opened.is_error());
    REQUIRE(opened.value().probed_raw);
    BlockImage& image = *opened.value().image;
    CHECK(image.write((1 << 20) - 512, footer).error().kind == BlockErrorKind::ReadOnly);
    std::vector<u8> dynamic_copy(512, 0);
    std::memcpy(dynamic_copy.data(), "conectix", 8);
    CHECK(image.write(0, dynamic_copy).error().kind == BlockErrorKind::ReadOnly);
    CHECK(!image.write(512, dynamic_copy).is_error());
    CHECK(!image.write(0, std::vector<u8>(512, 1)).is_error());

    // Given explicitly, raw writes anything anywhere.
    opened.value().image.reset(); // its lock
    opened = open_image(dir.file("blob"), {"raw"});
    REQUIRE(!opened.is_error());
    CHECK(!opened.value().image->write((1 << 20) - 512, footer).is_error());
}
