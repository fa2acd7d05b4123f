// VHDX images against qemu-img 7.2 as the oracle (skipped when
// /usr/bin/qemu-img is missing): what qemu-img writes, viridian reads; what
// viridian writes, qemu-img checks and converts to the same bytes.
#include "platform/block/image_format.h"
#include "platform/block/crc32c.h"
#include "platform/block/vhdx_format.h"

#include "tests/platform/block/temp_dir.h"

#include <doctest/doctest.h>
#include <algorithm>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <unistd.h>
#include <vector>

using vhdx::MiB;

namespace {

const char* const QEMU_IMG = "/usr/bin/qemu-img";

bool have_qemu_img()
{
    if (access(QEMU_IMG, X_OK) == 0)
        return true;
    MESSAGE("qemu-img is not installed: the comparison with it is skipped");
    return false;
}

int run(const std::string& command)
{
    return std::system((command + " >/dev/null 2>&1").c_str());
}

std::vector<u8> slurp(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spill(const std::string& path, const std::vector<u8>& data)
{
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

std::unique_ptr<BlockImage> open_or_fail(const std::string& path, OpenOptions options = {"vhdx"})
{
    auto opened = open_image(path, options);
    REQUIRE_MESSAGE(!opened.is_error(), opened.error().message);
    return std::move(opened.value().image);
}

void create_or_fail(const std::string& path, u64 size,
                    std::map<std::string, std::string> options = {}, std::string parent = "")
{
    auto created = create_image(path, {"vhdx", size, std::move(options), std::move(parent)});
    REQUIRE_MESSAGE(!created.is_error(), created.error().message);
}

std::vector<u8> pattern(size_t length, u32 seed)
{
    std::mt19937 rng(seed);
    std::vector<u8> data(length);
    for (u8& b : data)
        b = static_cast<u8>(rng());
    return data;
}

std::vector<u8> read_all(BlockImage& image)
{
    std::vector<u8> out(image.info().virtual_size);
    REQUIRE(!image.read(0, out).is_error());
    return out;
}

// Writes `data` at `offset` to both the image and the expected contents.
void write_both(BlockImage& image, std::vector<u8>& expected, u64 offset, const std::vector<u8>& data)
{
    auto written = image.write(offset, data);
    REQUIRE_MESSAGE(!written.is_error(), written.error().message);
    std::copy(data.begin(), data.end(), expected.begin() + static_cast<std::ptrdiff_t>(offset));
}

bool qemu_check_passes(const std::string& path)
{
    return run(std::string(QEMU_IMG) + " check -f vhdx '" + path + "'") == 0;
}

std::vector<u8> qemu_convert_to_raw(const TempDir& dir, const std::string& path)
{
    std::string raw = dir.file("converted.raw");
    REQUIRE(run(std::string(QEMU_IMG) + " convert -f vhdx -O raw '" + path + "' '" + raw + "'") == 0);
    return slurp(raw);
}

// Copies a sparse file's data and keeps its holes (SEEK_DATA, SEEK_HOLE):
// a copy of an image the way a crash leaves it, without reading the holes.
void copy_sparse(const std::string& from, const std::string& to)
{
    int in = open(from.c_str(), O_RDONLY);
    int out = open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(in >= 0);
    REQUIRE(out >= 0);
    const off_t size = lseek(in, 0, SEEK_END);
    std::vector<u8> buffer(1 * MiB);
    for (off_t data = lseek(in, 0, SEEK_DATA); data >= 0 && data < size;) {
        off_t hole = lseek(in, data, SEEK_HOLE);
        for (off_t at = data; at < hole;) {
            size_t chunk = static_cast<size_t>(std::min<off_t>(hole - at, static_cast<off_t>(buffer.size())));
            REQUIRE(pread(in, buffer.data(), chunk, at) == static_cast<ssize_t>(chunk));
            REQUIRE(pwrite(out, buffer.data(), chunk, at) == static_cast<ssize_t>(chunk));
            at += static_cast<off_t>(chunk);
        }
        data = lseek(in, hole, SEEK_DATA);
    }
    REQUIRE(ftruncate(out, size) == 0);
    close(in);
    close(out);
}

// Writes the two headers' checksums again after a test changed them.
void fix_header_checksums(const std::string& path)
{
    std::vector<u8> file = slurp(path);
    for (u64 offset : vhdx::HEADER_OFFSETS) {
        std::span<const u8> header(&file[offset], vhdx::HEADER_SIZE);
        vhdx::store32(&file[offset + 4], vhdx::checksum_with_hole(header, 4));
    }
    spill(path, file);
}

void fix_region_checksums(std::vector<u8>& file)
{
    for (u64 offset : vhdx::REGION_TABLE_OFFSETS) {
        std::span<const u8> table(&file[offset], vhdx::REGION_TABLE_SIZE);
        vhdx::store32(&file[offset + 4], vhdx::checksum_with_hole(table, 4));
    }
}

// The BAT's file offset, from the region table viridian's create writes.
u64 bat_offset_of(const std::vector<u8>& file)
{
    const u8* entry = &file[vhdx::REGION_TABLE_OFFSETS[0] + 16];
    return vhdx::load64(entry + 16);
}

} // namespace

TEST_CASE("A dynamic VHDX image reads back what was written, after reopening too")
{
    TempDir dir;
    std::string path = dir.file("disk.vhdx");
    create_or_fail(path, 64 * MiB, {{"block_size", "1M"}});
    std::vector<u8> expected(64 * MiB, 0);
    {
        auto image = open_or_fail(path);
        CHECK(image->info().format == "vhdx");
        CHECK(image->info().subformat == "dynamic");
        CHECK(image->info().virtual_size == 64 * MiB);
        CHECK(image->info().block_size == 1 * MiB);
        write_both(*image, expected, 512, pattern(4096, 1));
        write_both(*image, expected, 3 * MiB - 1024, pattern(3 * MiB, 2)); // spans four blocks
        write_both(*image, expected, 64 * MiB - 512, pattern(512, 3));
        REQUIRE(!image->flush().is_error());
        CHECK(read_all(*image) == expected);
    }
    auto image = open_or_fail(path);
    CHECK(read_all(*image) == expected);
    auto report = image->check(false).release_value();
    CHECK(report.ok());
    CHECK(report.allocated_blocks == 6);
    CHECK(report.total_blocks == 64);
}

TEST_CASE("A VHDX image viridian wrote passes qemu-img check and converts to the same bytes")
{
    const bool qemu = have_qemu_img();
    for (const char* subformat : {"dynamic", "fixed"}) {
        for (const char* logical : {"512", "4096"}) {
            std::string what = std::string(subformat) + " " + logical;
            CAPTURE(what);
            TempDir dir;
            std::string path = dir.file("disk.vhdx");
            create_or_fail(path, 40 * MiB,
                           {{"subformat", subformat}, {"logical_sector_size", logical},
                            {"block_size", "2M"}});
            std::vector<u8> expected(40 * MiB, 0);
            {
                auto image = open_or_fail(path);
                CHECK(image->info().logical_sector_size == std::stoul(logical));
                write_both(*image, expected, 0, pattern(8192, 4));
                write_both(*image, expected, 7 * MiB, pattern(5 * MiB, 5));
                write_both(*image, expected, 40 * MiB - 4096, pattern(4096, 6));
            }
            CHECK(read_all(*open_or_fail(path)) == expected);
            // qemu-img 7.2 opens only 512-byte logical sectors (ENOTSUP).
            if (!qemu || std::string(logical) == "4096")
                continue;
            CHECK(qemu_check_passes(path));
            CHECK(qemu_convert_to_raw(dir, path) == expected);
        }
    }
}

TEST_CASE("VHDX images made by qemu-img open with their geometry and read what qemu-img wrote")
{
    if (!have_qemu_img())
        return;
    struct Case {
        const char* options;
        u64 size;
        const char* subformat;
        u64 block_size;
    };
    const Case cases[] = {
        {"subformat=dynamic", 48 * MiB, "dynamic", 8 * MiB},
        {"subformat=dynamic,block_size=1M", 20 * MiB, "dynamic", 1 * MiB},
        {"subformat=dynamic,block_size=32M,block_state_zero=off", 70 * MiB, "dynamic", 32 * MiB},
        {"subformat=fixed,block_size=4M", 24 * MiB, "fixed", 0},
    };
    for (const Case& c : cases) {
        CAPTURE(c.options);
        TempDir dir;
        std::vector<u8> data(c.size, 0);
        auto chunk = pattern(3 * MiB, 7);
        std::copy(chunk.begin(), chunk.end(), data.begin() + static_cast<std::ptrdiff_t>(1 * MiB + 512));
        std::copy(chunk.begin(), chunk.begin() + 4096, data.end() - 4096);
        spill(dir.file("data.raw"), data);
        std::string path = dir.file("q.vhdx");
        REQUIRE(run(std::string(QEMU_IMG) + " convert -f raw -O vhdx -o " + c.options + " '" +
                    dir.file("data.raw") + "' '" + path + "'") == 0);
        auto image = open_or_fail(path, {"", true});
        CHECK(image->info().format == "vhdx");
        CHECK(image->info().subformat == c.subformat);
        CHECK(image->info().virtual_size == c.size);
        CHECK(image->info().block_size == c.block_size);
        CHECK(image->info().logical_sector_size == 512);
        CHECK(read_all(*image) == data);
    }
}

TEST_CASE("A VHDX image made by qemu-img create is written by viridian and still passes qemu-img check")
{
    if (!have_qemu_img())
        return;
    TempDir dir;
    std::string path = dir.file("q.vhdx");
    REQUIRE(run(std::string(QEMU_IMG) + " create -f vhdx '" + path + "' 1G") == 0);
    std::vector<u8> expected;
    {
        auto image = open_or_fail(path);
        CHECK(image->info().block_size == 8 * MiB); // qemu-img's choice for 1 GiB
        std::vector<u8> data = pattern(64 * 1024, 8);
        REQUIRE(!image->write(100 * MiB, data).is_error());
        expected = data;
    }
    CHECK(qemu_check_passes(path));
    auto image = open_or_fail(path);
    std::vector<u8> back(64 * 1024);
    REQUIRE(!image->read(100 * MiB, back).is_error());
    CHECK(back == expected);
}

TEST_CASE("A differencing VHDX disk reads its parent where it holds nothing")
{
    TempDir dir;
    std::string parent_path = dir.file("parent.vhdx");
    std::filesystem::create_directory(dir.file("children"));
    std::string child_path = dir.file("children/child.vhdx");
    create_or_fail(parent_path, 16 * MiB, {{"block_size", "1M"}});
    std::vector<u8> expected(16 * MiB, 0);
    {
        auto parent = open_or_fail(parent_path);
        write_both(*parent, expected, 0, pattern(4 * MiB, 9));
    }
    create_or_fail(child_path, 0, {{"block_size", "1M"}}, parent_path);
    std::vector<u8> child_only(16 * MiB, 0);
    {
        auto child = open_or_fail(child_path);
        CHECK(child->info().subformat == "differencing");
        CHECK(child->info().virtual_size == 16 * MiB);
        REQUIRE(child->info().parent.has_value());
        CHECK(read_all(*child) == expected);
        // A partial block (partially present), a whole block, and past the parent's data.
        auto a = pattern(1024, 10), b = pattern(1 * MiB, 11), c = pattern(4096, 12);
        write_both(*child, expected, 1 * MiB + 512, a);
        write_both(*child, expected, 2 * MiB, b);
        write_both(*child, expected, 10 * MiB + 4096, c);
        std::copy(a.begin(), a.end(), child_only.begin() + static_cast<std::ptrdiff_t>(1 * MiB + 512));
        std::copy(b.begin(), b.end(), child_only.begin() + static_cast<std::ptrdiff_t>(2 * MiB));
        std::copy(c.begin(), c.end(), child_only.begin() + static_cast<std::ptrdiff_t>(10 * MiB + 4096));
        CHECK(read_all(*child) == expected);
    }
    {
    auto child = open_or_fail(child_path);
    CHECK(read_all(*child) == expected);
    CHECK(child->check(false).value().ok());
    auto extent = child->map(1 * MiB, 1 * MiB).release_value();
    CHECK(extent.kind == ExtentKind::Unallocated);
    CHECK(extent.length == 512);
    extent = child->map(1 * MiB + 512, 1 * MiB).release_value();
    CHECK(extent.kind == ExtentKind::Data);
    CHECK(extent.length == 1024);
    }

    auto alone = open_or_fail(child_path, {"vhdx", true, CacheMode::Writeback, true});
    CHECK(read_all(*alone) == child_only);
    CHECK(alone->map(0, 1 * MiB).value().kind == ExtentKind::Unallocated);
}

TEST_CASE("A differencing VHDX disk is refused when its parent changed or is missing")
{
    TempDir dir;
    std::string parent_path = dir.file("parent.vhdx");
    std::string child_path = dir.file("child.vhdx");
    create_or_fail(parent_path, 8 * MiB);
    create_or_fail(child_path, 0, {}, parent_path);
    {
        auto parent = open_or_fail(parent_path);
        REQUIRE(!parent->write(0, pattern(512, 13)).is_error()); // a new DataWriteGuid
    }
    auto opened = open_image(child_path, {"vhdx"});
    REQUIRE(opened.is_error());
    CHECK(opened.error().kind == BlockErrorKind::Corrupt);
    CHECK(opened.error().message.find("DataWriteGuid") != std::string::npos);

    std::filesystem::remove(parent_path);
    opened = open_image(child_path, {"vhdx"});
    REQUIRE(opened.is_error());
    CHECK(opened.error().kind == BlockErrorKind::NotFound);
}

TEST_CASE("A VHDX log left unapplied by a crash is replayed on the next open")
{
    TempDir dir;
    std::string path = dir.file("disk.vhdx");
    create_or_fail(path, 32 * MiB, {{"block_size", "1M"}});
    const std::vector<u8> before = slurp(path);
    const u64 bat = bat_offset_of(before);
    std::vector<u8> expected(32 * MiB, 0);
    {
        auto image = open_or_fail(path);
        write_both(*image, expected, 5 * MiB, pattern(2 * MiB, 14));
        REQUIRE(!image->flush().is_error());
        // The crash: a copy of the file as it is now, with the BAT as it was
        // before the writes, as if the power failed after the log entries
        // reached the disk and before the BAT was written in place.
        std::vector<u8> crashed = slurp(path);
        std::copy(before.begin() + static_cast<std::ptrdiff_t>(bat),
                  before.begin() + static_cast<std::ptrdiff_t>(bat + 1 * MiB),
                  crashed.begin() + static_cast<std::ptrdiff_t>(bat));
        spill(dir.file("crashed.vhdx"), crashed);
        spill(dir.file("crashed-for-qemu.vhdx"), crashed);
    }
    {
        // Read-only: the log is read, not written.
        auto image = open_or_fail(dir.file("crashed.vhdx"), {"vhdx", true});
        CHECK(read_all(*image) == expected);
        CHECK(!image->check(false).value().ok());
    }
    {
        auto image = open_or_fail(dir.file("crashed.vhdx"));
        CHECK(read_all(*image) == expected);
        auto report = image->check(true).release_value();
        CHECK(report.ok());
        CHECK(report.repaired.size() == 1);
    }
    if (!have_qemu_img())
        return;
    CHECK(qemu_check_passes(dir.file("crashed.vhdx")));
    CHECK(qemu_convert_to_raw(dir, dir.file("crashed.vhdx")) == expected);
    // qemu-img replays viridian's log too.
    CHECK(run(std::string(QEMU_IMG) + " check -r all -f vhdx '" + dir.file("crashed-for-qemu.vhdx") +
              "'") == 0);
    CHECK(qemu_convert_to_raw(dir, dir.file("crashed-for-qemu.vhdx")) == expected);
}

// QEMU 7.2 looks for the log's active sequence from the log's first sector,
// chaining entries by sequence number alone (not by their tail field), and
// refuses the image (EINVAL) when the chain runs round the whole log back to
// where it began. A writer that keeps one log GUID while its entries lap the
// log leaves exactly that after a crash: every sector an entry, consecutive
// numbers all the way round.
TEST_CASE("A VHDX crashed after its log went round opens in qemu-img at every point of the lap")
{
    if (!have_qemu_img())
        return;
    TempDir dir;
    std::string path = dir.file("disk.vhdx");
    // A new block a write, one BAT page logged each: more entries than the
    // 1 MiB log holds at once.
    const u64 blocks = 140;
    create_or_fail(path, blocks * MiB, {{"block_size", "1M"}});
    auto image = open_or_fail(path);
    std::vector<u8> expected(blocks * MiB, 0);
    int refused = 0;
    for (u64 block = 0; block < blocks; ++block) {
        write_both(*image, expected, block * MiB, pattern(4096, static_cast<u32>(block)));
        // The crash: the file as it is now, never closed (its holes kept).
        std::string crashed = dir.file("crashed.vhdx");
        copy_sparse(path, crashed);
        if (run(std::string(QEMU_IMG) + " check -r all -f vhdx '" + crashed + "'") != 0) {
            ++refused;
            MESSAGE("qemu-img refuses the image crashed after write " << block);
        }
    }
    CHECK(refused == 0);
    std::vector<u8> whole(blocks * MiB);
    REQUIRE(!image->read(0, whole).is_error());
    CHECK(whole == expected);
}

TEST_CASE("A VHDX image with one damaged header opens from the other; with both damaged it is refused")
{
    TempDir dir;
    std::string path = dir.file("disk.vhdx");
    create_or_fail(path, 8 * MiB);
    std::vector<u8> file = slurp(path);
    file[vhdx::HEADER_OFFSETS[1] + 200] ^= 1;
    spill(path, file);
    {
        auto image = open_or_fail(path);
        auto report = image->check(false).release_value();
        CHECK(!report.ok());
        report = image->check(true).release_value();
        CHECK(report.ok());
    }
    file = slurp(path);
    file[vhdx::HEADER_OFFSETS[0] + 200] ^= 1;
    file[vhdx::HEADER_OFFSETS[1] + 200] ^= 1;
    spill(path, file);
    auto opened = open_image(path, {"vhdx"});
    REQUIRE(opened.is_error());
    CHECK(opened.error().kind == BlockErrorKind::Corrupt);
}

TEST_CASE("Corrupt VHDX region tables, metadata and BATs are refused with an error")
{
    TempDir dir;
    std::string path = dir.file("disk.vhdx");
    create_or_fail(path, 8 * MiB, {{"block_size", "1M"}});
    const std::vector<u8> good = slurp(path);
    const u64 bat = bat_offset_of(good);
    auto refused = [&](std::vector<u8> file, BlockErrorKind kind) {
        spill(path, file);
        auto opened = open_image(path, {"vhdx"});
        REQUIRE(opened.is_error());
        CHECK(opened.error().kind == kind);
    };
    SUBCASE("both region tables")
    {
        auto file = good;
        file[vhdx::REGION_TABLE_OFFSETS[0] + 20] ^= 1;
        file[vhdx::REGION_TABLE_OFFSETS[1] + 20] ^= 1;
        refused(file, BlockErrorKind::Corrupt);
    }
    SUBCASE("an unknown required region")
    {
        auto file = good;
        for (u64 table : vhdx::REGION_TABLE_OFFSETS) {
            vhdx::store32(&file[table + 8], 3);
            u8* entry = &file[table + 16 + 2 * 32];
            entry[0] = 0x42;                             // some GUID
            vhdx::store64(entry + 16, 32 * MiB);         // offset
            vhdx::store32(entry + 24, 1 * MiB);          // length
            vhdx::store32(entry + 28, 1);                // required
        }
        fix_region_checksums(file);
        file.resize(40 * MiB);
        refused(file, BlockErrorKind::Unsupported);
    }
    SUBCASE("a region outside the file")
    {
        auto file = good;
        for (u64 table : vhdx::REGION_TABLE_OFFSETS)
            vhdx::store64(&file[table + 16 + 16], 1ull << 50);
        fix_region_checksums(file);
        refused(file, BlockErrorKind::Corrupt);
    }
    SUBCASE("the metadata table")
    {
        auto file = good;
        const u64 metadata = vhdx::load64(&file[vhdx::REGION_TABLE_OFFSETS[0] + 48 + 16]);
        file[metadata] = 'X';
        refused(file, BlockErrorKind::Corrupt);
    }
    SUBCASE("a BAT entry past the end of the file")
    {
        auto file = good;
        vhdx::store64(&file[bat], vhdx::make_bat_entry(vhdx::BlockState::FullyPresent, 1ull << 40));
        refused(file, BlockErrorKind::Corrupt);
    }
    SUBCASE("a BAT entry over the metadata")
    {
        auto file = good;
        vhdx::store64(&file[bat + 8], vhdx::make_bat_entry(vhdx::BlockState::FullyPresent, 2 * MiB));
        refused(file, BlockErrorKind::Corrupt);
    }
    SUBCASE("a BAT entry of an undefined state")
    {
        auto file = good;
        vhdx::store64(&file[bat], 5);
        refused(file, BlockErrorKind::Corrupt);
    }
    SUBCASE("a log of garbage under a LogGuid")
    {
        auto file = good;
        for (u64 header : vhdx::HEADER_OFFSETS)
            file[header + 48] = 0x77; // LogGuid
        for (u64 i = 0; i < 1 * MiB; i += 7)
            file[1 * MiB + i] = static_cast<u8>(i * 13);
        spill(path, file);
        fix_header_checksums(path);
        auto image = open_or_fail(path);
        CHECK(image->info().virtual_size == 8 * MiB);
    }
}

TEST_CASE("VHDX create refuses unknown options and invalid sizes")
{
    TempDir dir;
    auto created = create_image(dir.file("a.vhdx"), {"vhdx", 8 * MiB, {{"cluster_size", "64k"}}, ""});
    REQUIRE(created.is_error());
    CHECK(created.error().kind == BlockErrorKind::InvalidArgument);
    created = create_image(dir.file("a.vhdx"), {"vhdx", 8 * MiB, {{"block_size", "3M"}}, ""});
    CHECK(created.error().kind == BlockErrorKind::InvalidArgument);
    created = create_image(dir.file("a.vhdx"), {"vhdx", 1000, {}, ""});
    CHECK(created.error().kind == BlockErrorKind::InvalidArgument);
    created = create_image(dir.file("a.vhdx"), {"vhdx", 8 * MiB, {{"subformat", "sparse"}}, ""});
    CHECK(created.error().kind == BlockErrorKind::InvalidArgument);
}

TEST_CASE("A VHDX image probes as vhdx and a read-only one refuses writes")
{
    TempDir dir;
    create_or_fail(dir.file("disk.img"), 8 * MiB);
    auto opened = open_image(dir.file("disk.img"), {"", true});
    REQUIRE(!opened.is_error());
    CHECK(!opened.value().probed_raw);
    CHECK(opened.value().image->info().format == "vhdx");
    std::vector<u8> sector(512);
    CHECK(opened.value().image->write(0, sector).error().kind == BlockErrorKind::ReadOnly);
}

TEST_CASE("Raw, VHD and VHDX images work the same with cache=none (O_DIRECT)")
{
    TempDir dir;
    for (const char* format : {"raw", "vpc", "vhdx"}) {
        CAPTURE(format);
        std::string path = dir.file(std::string("disk.") + format);
        CreateOptions create{format, 64 << 20, {}, ""};
        if (std::string(format) == "vpc")
            create.options["force_size"] = "on";
        REQUIRE(!create_image(path, create).is_error());
        std::vector<u8> data(3 * 512);
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = static_cast<u8>(i ^ 0x5A);
        {
            OpenOptions direct{format};
            direct.cache = CacheMode::None;
            auto opened = open_image(path, direct);
            REQUIRE_MESSAGE(!opened.is_error(), opened.error().message);
            BlockImage& image = *opened.value().image;
            REQUIRE(!image.write(7 * 512, data).is_error());
            REQUIRE(!image.write(40 << 20, data).is_error());
            REQUIRE(!image.flush().is_error());
        }
        auto reopened = open_image(path, {format, true});
        REQUIRE(!reopened.is_error());
        std::vector<u8> out(data.size());
        REQUIRE(!reopened.value().image->read(40 << 20, out).is_error());
        CHECK(out == data);
        REQUIRE(!reopened.value().image->read(7 * 512, out).is_error());
        CHECK(out == data);
        CHECK(reopened.value().image->check(false).value().ok());
    }
}
