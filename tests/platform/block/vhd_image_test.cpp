// VHD ("vpc") images, with qemu-img 7.2 as the oracle where it reads the
// format (it cannot make or read differencing disks): images it makes open
// here with its size and contents, images made and written here read back
// through it byte for byte.
#include "platform/block/image_format.h"
#include "platform/block/vhd_image.h"

#include "tests/platform/block/temp_dir.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <unistd.h>
#include <vector>

namespace {

constexpr const char* QEMU_IMG = "/usr/bin/qemu-img";

bool have_qemu_img()
{
    return ::access(QEMU_IMG, X_OK) == 0;
}

#define REQUIRE_QEMU_IMG()                                                                         \
    do {                                                                                           \
        if (!have_qemu_img()) {                                                                    \
            MESSAGE("qemu-img is not installed: skipped");                                         \
            return;                                                                                \
        }                                                                                          \
    } while (0)

int run(const std::string& command)
{
    return std::system((command + " >/dev/null 2>&1").c_str());
}

std::vector<u8> read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::vector<u8>& bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void poke(const std::string& path, u64 offset, const std::vector<u8>& bytes)
{
    std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(static_cast<std::streamoff>(offset));
    file.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<u8> pattern(size_t size, u32 seed)
{
    std::mt19937 random(seed);
    std::vector<u8> bytes(size);
    for (u8& byte : bytes)
        byte = static_cast<u8>(random());
    return bytes;
}

OpenOptions vpc(bool read_only = false)
{
    OpenOptions options;
    options.format = "vpc";
    options.read_only = read_only;
    return options;
}

std::unique_ptr<BlockImage> open_or_fail(const std::string& path, OpenOptions options = vpc())
{
    auto opened = open_image(path, options);
    REQUIRE_MESSAGE(!opened.is_error(), opened.error().message);
    return std::move(opened.value().image);
}

void create_or_fail(const std::string& path, u64 size, std::map<std::string, std::string> options = {},
                    const std::string& parent = "")
{
    CreateOptions create{"vpc", size, std::move(options), parent};
    auto status = create_image(path, create);
    REQUIRE_MESSAGE(!status.is_error(), status.error().message);
}

std::vector<u8> read_all(BlockImage& image)
{
    std::vector<u8> out(image.info().virtual_size);
    auto status = image.read(0, out);
    REQUIRE_MESSAGE(!status.is_error(), status.error().message);
    return out;
}

// A raw disk with data in a few places (block starts, block ends, a
// partial block) and zeros elsewhere.
std::vector<u8> sample_disk(u64 size)
{
    std::vector<u8> disk(size, 0);
    auto put = [&](u64 offset, u64 length, u32 seed) {
        std::vector<u8> bytes = pattern(length, seed);
        std::copy(bytes.begin(), bytes.end(), disk.begin() + static_cast<std::ptrdiff_t>(offset));
    };
    put(0, 4096, 1);
    put((2 << 20) - 512, 1024, 2);
    put(5 << 20, 64 << 10, 3);
    put(size - 512, 512, 4);
    return disk;
}

u64 virtual_size_from_qemu(const std::string& path)
{
    std::string out = path + ".size";
    std::system((std::string(QEMU_IMG) + " info -U -f vpc --output=json '" + path +
                 "' | sed -n 's/.*\"virtual-size\": \\([0-9]*\\).*/\\1/p' > '" + out + "'")
                    .c_str());
    std::ifstream in(out);
    u64 size = 0;
    in >> size;
    return size;
}

} // namespace

TEST_CASE("A dynamic VHD converted by qemu-img opens with qemu-img's size and reads its data")
{
    REQUIRE_QEMU_IMG();
    TempDir dir;
    std::vector<u8> disk = sample_disk(12 << 20);
    write_file(dir.file("disk.raw"), disk);
    for (const char* force : {"off", "on"}) {
        CAPTURE(force);
        std::string vhd = dir.file(std::string("disk-") + force + ".vhd");
        REQUIRE(run(std::string(QEMU_IMG) + " convert -f raw -O vpc -o force_size=" + force + " " +
                    dir.file("disk.raw") + " " + vhd) == 0);
        auto image = open_or_fail(vhd);
        CHECK(image->info().subformat == "dynamic");
        CHECK(image->info().virtual_size == virtual_size_from_qemu(vhd));
        CHECK(image->info().block_size == 2u << 20);
        std::vector<u8> contents = read_all(*image);
        REQUIRE(contents.size() >= disk.size());
        CHECK(std::equal(disk.begin(), disk.end(), contents.begin()));
        CHECK(std::all_of(contents.begin() + static_cast<std::ptrdiff_t>(disk.size()), contents.end(),
                          [](u8 byte) { return byte == 0; }));
    }
}

TEST_CASE("A fixed VHD converted by qemu-img probes as VHD and reads its data")
{
    REQUIRE_QEMU_IMG();
    TempDir dir;
    std::vector<u8> disk = sample_disk(8 << 20);
    write_file(dir.file("disk.raw"), disk);
    REQUIRE(run(std::string(QEMU_IMG) + " convert -f raw -O vpc -o subformat=fixed,force_size=on " +
                dir.file("disk.raw") + " " + dir.file("fixed.vhd")) == 0);
    auto opened = open_image(dir.file("fixed.vhd"), {});
    REQUIRE_MESSAGE(!opened.is_error(), opened.error().message);
    BlockImage& image = *opened.value().image;
    CHECK(image.info().format == "vpc");
    CHECK(image.info().subformat == "fixed");
    CHECK(image.info().virtual_size == disk.size());
    CHECK(read_all(image) == disk);
}

TEST_CASE("qemu-img create -f vpc images open with the sizes qemu-img reports")
{
    REQUIRE_QEMU_IMG();
    TempDir dir;
    for (std::string options : {"subformat=dynamic", "subformat=fixed", "force_size=on",
                                "subformat=fixed,force_size=on"}) {
        for (u64 size : {u64{1} << 30, u64{10'000'000}, u64{200} << 30}) {
            if (options.find("fixed") != std::string::npos && size > (1u << 30))
                continue;
            CAPTURE(options);
            CAPTURE(size);
            std::string vhd = dir.file("q.vhd");
            std::filesystem::remove(vhd);
            REQUIRE(run(std::string(QEMU_IMG) + " create -f vpc -o " + options + " " + vhd + " " +
                        std::to_string(size)) == 0);
            auto image = open_or_fail(vhd);
            CHECK(image->info().virtual_size == virtual_size_from_qemu(vhd));
        }
    }
}

TEST_CASE("A VHD is created with qemu-img's CHS rounding unless force_size is on")
{
    TempDir dir;
    create_or_fail(dir.file("chs.vhd"), u64{1} << 30);
    CHECK(open_or_fail(dir.file("chs.vhd"))->info().virtual_size == 1'073'995'776);
    create_or_fail(dir.file("exact.vhd"), u64{1} << 30, {{"force_size", "on"}});
    CHECK(open_or_fail(dir.file("exact.vhd"))->info().virtual_size == u64{1} << 30);
    create_or_fail(dir.file("fixed.vhd"), 1 << 20, {{"subformat", "fixed"}, {"force_size", "on"}});
    auto fixed = open_or_fail(dir.file("fixed.vhd"));
    CHECK(fixed->info().subformat == "fixed");
    CHECK(std::filesystem::file_size(dir.file("fixed.vhd")) == (1u << 20) + 512);
    if (have_qemu_img()) {
        CHECK(virtual_size_from_qemu(dir.file("chs.vhd")) == 1'073'995'776);
        CHECK(virtual_size_from_qemu(dir.file("exact.vhd")) == u64{1} << 30);
    }
}

TEST_CASE("A VHD created and written here converts with qemu-img to the same bytes")
{
    REQUIRE_QEMU_IMG();
    TempDir dir;
    struct Case {
        std::map<std::string, std::string> options;
    };
    for (const Case& c : {Case{{{"force_size", "on"}}}, Case{{}},
                          Case{{{"force_size", "on"}, {"block_size", "64K"}}},
                          Case{{{"subformat", "fixed"}, {"force_size", "on"}}}}) {
        std::string vhd = dir.file("w.vhd");
        std::filesystem::remove(vhd);
        create_or_fail(vhd, 12 << 20, c.options);
        std::vector<u8> expected;
        {
            auto image = open_or_fail(vhd);
            expected.assign(image->info().virtual_size, 0);
            std::mt19937 random(7);
            for (int i = 0; i < 40; ++i) {
                u64 sectors = 1 + random() % 300;
                u64 offset = random() % (expected.size() / 512 - sectors) * 512;
                std::vector<u8> data = pattern(sectors * 512, static_cast<u32>(i));
                REQUIRE(!image->write(offset, data).is_error());
                std::copy(data.begin(), data.end(), expected.begin() + static_cast<std::ptrdiff_t>(offset));
                if (i % 10 == 9)
                    REQUIRE(!image->flush().is_error());
            }
            REQUIRE(!image->flush().is_error());
            CHECK(read_all(*image) == expected);
            auto report = image->check(false);
            REQUIRE(!report.is_error());
            CHECK(report.value().ok());
        }
        // qemu-img has no check for vpc (exit 63, "does not support checks"):
        // it must at least not find the image broken.
        int status = run(std::string(QEMU_IMG) + " check -f vpc " + vhd);
        CHECK((WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 63));
        REQUIRE(run(std::string(QEMU_IMG) + " convert -f vpc -O raw " + vhd + " " + dir.file("w.raw")) == 0);
        CHECK(read_file(dir.file("w.raw")) == expected);
        CHECK(open_or_fail(vhd)->info().virtual_size == virtual_size_from_qemu(vhd));
    }
}

TEST_CASE("A VHD keeps its writes across closing and opening again")
{
    TempDir dir;
    std::string vhd = dir.file("d.vhd");
    create_or_fail(vhd, 8 << 20, {{"force_size", "on"}, {"block_size", "1M"}});
    std::vector<u8> data = pattern(3 << 20, 9);
    {
        auto image = open_or_fail(vhd);
        REQUIRE(!image->write(1 << 20, data).is_error());
        // No flush: closing writes the metadata.
    }
    auto image = open_or_fail(vhd);
    std::vector<u8> out(data.size());
    REQUIRE(!image->read(1 << 20, out).is_error());
    CHECK(out == data);
    auto report = image->check(false).release_value();
    CHECK(report.ok());
    CHECK(report.allocated_blocks == 3);
    CHECK(report.total_blocks == 8);
}

TEST_CASE("A dynamic VHD maps written sectors as data and the rest as zeros, merged")
{
    TempDir dir;
    std::string vhd = dir.file("m.vhd");
    create_or_fail(vhd, 8 << 20, {{"force_size", "on"}, {"block_size", "1M"}});
    auto image = open_or_fail(vhd);
    REQUIRE(!image->write(4096, pattern(8192, 1)).is_error());
    REQUIRE(!image->write(4096 + 8192, pattern(512, 2)).is_error());
    auto zero = image->map(0, 8 << 20).release_value();
    CHECK(zero.kind == ExtentKind::Zero);
    CHECK(zero.length == 4096);
    auto data = image->map(4096, 8 << 20).release_value();
    CHECK(data.kind == ExtentKind::Data);
    CHECK(data.length == 8192 + 512);
    REQUIRE(data.host_offset.has_value());
    auto rest = image->map(4096 + 8704, 8 << 20).release_value();
    CHECK(rest.kind == ExtentKind::Zero);
    CHECK(rest.length == (8u << 20) - 4096 - 8704);
    // The host offset is where the data is.
    std::vector<u8> raw(512);
    REQUIRE(!image->flush().is_error());
    std::vector<u8> file = read_file(vhd);
    CHECK(std::vector<u8>(file.begin() + static_cast<std::ptrdiff_t>(*data.host_offset + 8192),
                          file.begin() + static_cast<std::ptrdiff_t>(*data.host_offset + 8704)) ==
          pattern(512, 2));
}

TEST_CASE("A differencing VHD reads its own sectors and the rest from its parent")
{
    TempDir dir;
    std::string parent = dir.file("parent.vhd"), child = dir.file("child.vhd");
    create_or_fail(parent, 4 << 20, {{"force_size", "on"}, {"block_size", "1M"}});
    std::vector<u8> base = pattern(4 << 20, 1);
    {
        auto image = open_or_fail(parent);
        REQUIRE(!image->write(0, base).is_error());
        REQUIRE(!image->flush().is_error());
    }
    create_or_fail(child, 0, {{"block_size", "1M"}}, parent);
    std::vector<u8> expected = base;
    {
        auto image = open_or_fail(child);
        CHECK(image->info().subformat == "differencing");
        CHECK(image->info().virtual_size == 4u << 20);
        CHECK(image->info().parent == parent);
        std::vector<u8> patch = pattern(1536, 2);
        REQUIRE(!image->write((1 << 20) + 512, patch).is_error());
        std::copy(patch.begin(), patch.end(), expected.begin() + (1 << 20) + 512);
        CHECK(read_all(*image) == expected);
        auto map = image->map(1 << 20, 4 << 20).release_value();
        CHECK(map.kind == ExtentKind::Unallocated);
        CHECK(map.length == 512);
        CHECK(image->map((1 << 20) + 512, 4 << 20).release_value().kind == ExtentKind::Data);
        REQUIRE(!image->flush().is_error());
    }
    CHECK(read_all(*open_or_fail(child)) == expected);
    // The parent is untouched and opened read-only: it can be read beside the child.
    CHECK(read_all(*open_or_fail(parent, vpc(true))) == base);

    OpenOptions alone = vpc(true);
    alone.without_parent = true;
    auto layer = open_or_fail(child, alone);
    CHECK(layer->info().parent == parent); // named, not opened
    std::vector<u8> out(2048);
    REQUIRE(!layer->read(1 << 20, out).is_error());
    CHECK(std::all_of(out.begin(), out.begin() + 512, [](u8 byte) { return byte == 0; }));
    CHECK(std::equal(out.begin() + 512, out.end(), expected.begin() + (1 << 20) + 512));
}

TEST_CASE("A differencing VHD finds its parent through the relative locator after a move")
{
    TempDir dir;
    std::filesystem::create_directory(dir.file("a"));
    create_or_fail(dir.file("a/base.vhd"), 1 << 20, {{"force_size", "on"}});
    {
        auto image = open_or_fail(dir.file("a/base.vhd"));
        REQUIRE(!image->write(0, pattern(512, 5)).is_error());
    }
    create_or_fail(dir.file("a/child.vhd"), 0, {}, dir.file("a/base.vhd"));
    std::filesystem::rename(dir.file("a"), dir.file("b"));
    auto image = open_or_fail(dir.file("b/child.vhd"));
    CHECK(image->info().parent == dir.file("b/base.vhd"));
    std::vector<u8> out(512);
    REQUIRE(!image->read(0, out).is_error());
    CHECK(out == pattern(512, 5));
}

TEST_CASE("A differencing VHD whose parent was replaced is refused")
{
    TempDir dir;
    create_or_fail(dir.file("p.vhd"), 1 << 20, {{"force_size", "on"}});
    create_or_fail(dir.file("c.vhd"), 0, {}, dir.file("p.vhd"));
    std::filesystem::remove(dir.file("p.vhd"));
    create_or_fail(dir.file("p.vhd"), 1 << 20, {{"force_size", "on"}});
    auto opened = open_image(dir.file("c.vhd"), vpc());
    REQUIRE(opened.is_error());
    CHECK(opened.error().kind == BlockErrorKind::Corrupt);
    CHECK(opened.error().message.find("unique id") != std::string::npos);
    std::filesystem::remove(dir.file("p.vhd"));
    opened = open_image(dir.file("c.vhd"), vpc());
    REQUIRE(opened.is_error());
    CHECK(opened.error().kind == BlockErrorKind::NotFound);
}

TEST_CASE("VHD create refuses unknown options and impossible combinations")
{
    TempDir dir;
    auto status = [&](std::map<std::string, std::string> options, const std::string& parent = "") {
        return create_image(dir.file("x.vhd"), {"vpc", 1 << 20, std::move(options), parent});
    };
    CHECK(status({{"cluster_size", "64K"}}).error().kind == BlockErrorKind::InvalidArgument);
    CHECK(status({{"subformat", "sparse"}}).error().kind == BlockErrorKind::InvalidArgument);
    CHECK(status({{"block_size", "3000"}}).error().kind == BlockErrorKind::InvalidArgument);
    create_or_fail(dir.file("p.vhd"), 1 << 20);
    CHECK(status({{"subformat", "fixed"}}, dir.file("p.vhd")).error().kind ==
          BlockErrorKind::InvalidArgument);
    CHECK(create_image(dir.file("y.vhd"), {"vpc", 2 << 20, {}, dir.file("p.vhd")}).error().kind ==
          BlockErrorKind::InvalidArgument);
    CHECK(create_image(dir.file("z.vhd"), {"vpc", u64{3} << 40, {{"force_size", "on"}}, ""})
              .error()
              .kind == BlockErrorKind::InvalidArgument);
}

TEST_CASE("A VHD with a bad footer, header or BAT entry is refused with an error")
{
    TempDir dir;
    std::string good = dir.file("good.vhd");
    create_or_fail(good, 4 << 20, {{"force_size", "on"}, {"block_size", "1M"}});
    {
        auto image = open_or_fail(good);
        REQUIRE(!image->write(0, pattern(4096, 3)).is_error());
    }
    const std::vector<u8> original = read_file(good);
    using Poke = std::pair<u64, std::vector<u8>>;
    auto refused = [&](std::vector<Poke> pokes) {
        std::string bad = dir.file("bad.vhd");
        write_file(bad, original);
        for (const auto& [offset, bytes] : pokes)
            poke(bad, offset, bytes);
        auto opened = open_image(bad, vpc());
        REQUIRE(opened.is_error());
        CHECK(opened.error().kind == BlockErrorKind::Corrupt);
        CHECK(opened.error().message.find(bad) == 0);
    };
    u64 end = original.size() - 512;
    refused({{100, {1}}, {end + 100, {1}}});  // both footers' checksums
    refused({{512 + 100, {0x55}}});          // the dynamic header's checksum
    refused({{512, {'x'}}});                 // the dynamic header's cookie
    refused({{1536, {0x7F, 0xFF, 0xFF, 0xF0}}}); // a BAT entry past the end
    refused({{1536, {0, 0, 0, 1}}});         // a BAT entry into the dynamic header
    refused({{1536 + 4, {0, 0, 0, 4}}});     // two BAT entries for one block
    std::vector<u8> tiny(100, 0);
    write_file(dir.file("bad.vhd"), tiny);
    CHECK(open_image(dir.file("bad.vhd"), vpc()).error().kind == BlockErrorKind::Corrupt);
}

TEST_CASE("A VHD whose end footer is damaged opens from the copy and check repairs it")
{
    TempDir dir;
    std::string vhd = dir.file("d.vhd");
    create_or_fail(vhd, 4 << 20, {{"force_size", "on"}});
    {
        auto image = open_or_fail(vhd);
        REQUIRE(!image->write(512, pattern(512, 8)).is_error());
    }
    u64 size = std::filesystem::file_size(vhd);
    poke(vhd, size - 512, std::vector<u8>(512, 0xEE));
    auto image = open_or_fail(vhd);
    std::vector<u8> out(512);
    REQUIRE(!image->read(512, out).is_error());
    CHECK(out == pattern(512, 8));
    auto report = image->check(false).release_value();
    CHECK(!report.ok());
    auto repaired = image->check(true).release_value();
    CHECK(!repaired.repaired.empty());
    CHECK(image->check(false).release_value().ok());
    image.reset();
    if (have_qemu_img()) {
        REQUIRE(run(std::string(QEMU_IMG) + " convert -f vpc -O raw " + vhd + " " + dir.file("d.raw")) == 0);
        std::vector<u8> raw = read_file(dir.file("d.raw"));
        CHECK(std::equal(out.begin(), out.end(), raw.begin() + 512));
    }
}

TEST_CASE("Every intermediate state of a VHD block allocation opens with the flushed data intact")
{
    TempDir dir;
    for (bool differencing : {false, true}) {
        CAPTURE(differencing);
        std::string vhd = dir.file("crash.vhd");
        std::filesystem::remove(vhd);
        std::vector<u8> base(4 << 20, 0);
        if (differencing) {
            std::string parent = dir.file("crash-parent.vhd");
            std::filesystem::remove(parent);
            create_or_fail(parent, 4 << 20, {{"force_size", "on"}, {"block_size", "1M"}});
            base = pattern(4 << 20, 11);
            auto image = open_or_fail(parent);
            REQUIRE(!image->write(0, base).is_error());
            REQUIRE(!image->flush().is_error());
            image.reset();
            create_or_fail(vhd, 0, {{"block_size", "1M"}}, parent);
        } else {
            create_or_fail(vhd, 4 << 20, {{"force_size", "on"}, {"block_size", "1M"}});
        }
        std::vector<u8> flushed = base, pending;
        std::vector<u8> first = pattern(4096, 1);
        std::copy(first.begin(), first.end(), flushed.begin() + 8192);
        std::vector<std::pair<std::string, std::string>> states;
        {
            auto file = HostFile::open(vhd, FileAccess::ReadWrite).release_value();
            int count = 0;
            auto image = open_vhd_image(std::move(file), vpc(), [&](const char* step) {
                std::string copy = dir.file("state" + std::to_string(count++));
                std::filesystem::copy_file(vhd, copy, std::filesystem::copy_options::overwrite_existing);
                states.emplace_back(step, copy);
            }).release_value();
            REQUIRE(!image->write(8192, first).is_error());
            REQUIRE(!image->flush().is_error());
            // Two more writes, one into a new block and one into the first
            // block's unwritten sectors, then a flush.
            pending = flushed;
            std::vector<u8> second = pattern(2048, 2), third = pattern(1024, 3);
            REQUIRE(!image->write(2 << 20, second).is_error());
            REQUIRE(!image->write(512, third).is_error());
            std::copy(second.begin(), second.end(), pending.begin() + (2 << 20));
            std::copy(third.begin(), third.end(), pending.begin() + 512);
            REQUIRE(!image->flush().is_error());
        }
        REQUIRE(states.size() >= 8);
        bool past_first_flush = false;
        for (const auto& state : states) {
            // Named, not a structured binding: clang 14 cannot capture one.
            const auto& step = state.first;
            const auto& copy = state.second;
            CAPTURE(step);
            auto image = open_or_fail(copy, vpc(true));
            std::vector<u8> contents = read_all(*image);
            auto report = image->check(false);
            REQUIRE(!report.is_error());
            CHECK(report.value().ok());
            // Before the first flush completes the first write may be absent.
            const std::vector<u8>& must = past_first_flush ? flushed : base;
            for (u64 sector = 0; sector < contents.size() / 512; ++sector) {
                auto at = static_cast<std::ptrdiff_t>(sector * 512);
                bool as_must = std::equal(contents.begin() + at, contents.begin() + at + 512, must.begin() + at);
                bool as_new = std::equal(contents.begin() + at, contents.begin() + at + 512, pending.begin() + at) ||
                              std::equal(contents.begin() + at, contents.begin() + at + 512, flushed.begin() + at);
                if (!as_must && !as_new) {
                    FAIL_CHECK("sector " << sector << " reads neither old nor new data");
                    break;
                }
            }
            if (std::string(step) == "metadata written" && !past_first_flush)
                past_first_flush = true;
        }
        CHECK(read_all(*open_or_fail(vhd)) == pending);
    }
}

TEST_CASE("A VHD opened read-only refuses writes")
{
    TempDir dir;
    create_or_fail(dir.file("r.vhd"), 1 << 20, {{"force_size", "on"}});
    auto image = open_or_fail(dir.file("r.vhd"), vpc(true));
    CHECK(image->write(0, std::vector<u8>(512, 1)).error().kind == BlockErrorKind::ReadOnly);
    CHECK(!image->discard(0, 512).is_error());
}

// The sector bitmap holds one bit per sector of the block, padded to a whole
// sector: a block of fewer than 4096 bytes still has a one-sector bitmap
// (found by the fuzzer: a 512-byte block gave an empty bitmap).
TEST_CASE("A VHD with blocks smaller than 4 KiB keeps a one-sector bitmap per block")
{
    for (const char* block_size : {"512", "1K", "2K", "4K"}) {
        CAPTURE(block_size);
        TempDir dir;
        std::string vhd = dir.file("small.vhd");
        create_or_fail(vhd, 64 << 10, {{"force_size", "on"}, {"block_size", block_size}});
        u64 before = std::filesystem::file_size(vhd);
        std::vector<u8> data = pattern(3 * 512, 5);
        {
            auto image = open_or_fail(vhd);
            REQUIRE(!image->write(8192, data).is_error());
            REQUIRE(!image->flush().is_error());
        }
        u64 block = std::stoul(block_size) * (std::string(block_size).ends_with('K') ? 1024 : 1);
        u64 blocks = (3 * 512 + block - 1) / block;
        CHECK(std::filesystem::file_size(vhd) == before + blocks * (block + 512));
        auto image = open_or_fail(vhd);
        std::vector<u8> out(data.size());
        REQUIRE(!image->read(8192, out).is_error());
        CHECK(out == data);
        auto report = image->check(false).release_value();
        CHECK(report.ok());
        CHECK(report.allocated_blocks == blocks);
    }
}
