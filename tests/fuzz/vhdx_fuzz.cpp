// Fuzz target: a VHDX file (platform/block/vhdx_image.h). Whatever the file
// holds, opening it (read-only, then read-write so the log replays),
// reading it, writing it, mapping and checking it must fail with an error or
// succeed, never crash, hang or allocate without bound.
//
// A VHDX file is at least 4 MiB and mostly zeros, so the input is the file
// in pieces: records of {u32 file offset, u16 length, bytes}, little-endian,
// written into an empty memfd. The seeds (corpus/vhdx) are small images
// written so by tests/fuzz/vhdx_seed.py.
//
// Built two ways, like the others: with libFuzzer (scripts/fuzz.sh) and with
// the seeded driver fuzz_driver.cpp, run in the tests.
#include "platform/block/image_format.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace {

// Reads and writes stay in the first part of the disk: enough to reach
// every kind of block in a seed, and bounded time per input.
constexpr u64 MAX_TOUCHED = 24ull << 20;

void exercise(BlockImage& image, bool writable)
{
    const ImageInfo& info = image.info();
    const u64 sector = info.logical_sector_size;
    const u64 end = std::min<u64>(info.virtual_size, MAX_TOUCHED);
    std::vector<u8> buffer(256 * 1024);
    for (u64 at = 0; at + sector <= end; at += buffer.size()) {
        u64 length = std::min<u64>(buffer.size(), (end - at) / sector * sector);
        (void)image.read(at, std::span(buffer).first(length));
    }
    for (u64 at = 0; at < end;) {
        auto extent = image.map(at, end - at);
        if (extent.is_error() || extent.value().length == 0)
            break;
        at += extent.value().length;
    }
    if (writable && end >= sector) {
        std::vector<u8> data(2 * sector, 0x5A);
        const u64 sectors = end / sector;
        for (u64 index : {u64{0}, sectors / 3, sectors - 1}) {
            u64 length = std::min<u64>(data.size(), (sectors - index) * sector);
            (void)image.write(index * sector, std::span(data).first(length));
        }
        (void)image.flush();
        std::vector<u8> back(sector);
        (void)image.read(0, back);
    }
    (void)image.check(writable);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    int fd = memfd_create("vhdx-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t at = 0;
    while (at + 6 <= size) {
        u32 offset = static_cast<u32>(data[at] | data[at + 1] << 8 | data[at + 2] << 16) |
                     static_cast<u32>(data[at + 3]) << 24;
        size_t length = static_cast<size_t>(data[at + 4] | data[at + 5] << 8);
        at += 6;
        length = std::min(length, size - at);
        // Offsets past 64 MiB fold back: a sparse file of gigabytes would
        // only make every input slower.
        offset %= 64u << 20;
        if (pwrite(fd, data + at, length, offset) < 0)
            break;
        at += length;
    }
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    for (bool read_only : {true, false}) {
        OpenOptions options;
        options.format = "vhdx";
        options.read_only = read_only;
        options.cache = CacheMode::Unsafe;
        // A parent locator names host paths: never follow them here.
        options.without_parent = true;
        auto opened = open_image(path, options);
        if (opened.is_error())
            continue;
        exercise(*opened.value().image, !read_only);
    }
    close(fd);
    return 0;
}
