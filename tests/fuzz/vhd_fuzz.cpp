// Fuzz target: a VHD image file (platform/block/vhd_image.cpp). The input is
// the whole file, in memory (memfd). Whatever it holds, opening it must fail
// with an error or succeed; an opened image is read (up to a bound), mapped,
// checked, written, flushed, repaired and opened again, and must never
// crash, hang or read back something other than what was just written. A
// violation aborts so the fuzzer reports it.
//
// The image is opened without its parent first (no other file is touched),
// then read-only with parent resolution: locators relative to the image name
// /proc/self/fd/N, which is how the chain-depth limit gets exercised.
//
// Built two ways, like the others: with libFuzzer (scripts/fuzz.sh) and with
// the seeded driver fuzz_driver.cpp over the seeds in corpus/vhd.
#include "platform/block/image_format.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what)
{
    std::fprintf(stderr, "vhd_fuzz: %s\n", what);
    std::abort();
}

// Reads at most this much of a disk, so a small input declaring 2 TiB stays fast.
constexpr uint64_t READ_BUDGET = 4 << 20;

void exercise(BlockImage& image, const uint8_t* data, size_t size)
{
    const ImageInfo& info = image.info();
    const uint64_t disk = info.virtual_size;
    std::vector<uint8_t> buffer(64 << 10);
    for (uint64_t offset = 0; offset < std::min(disk, READ_BUDGET); offset += buffer.size()) {
        uint64_t length = std::min<uint64_t>(buffer.size(), disk - offset);
        (void)image.read(offset, std::span(buffer.data(), length));
    }
    uint64_t offset = 0;
    for (int extents = 0; offset < disk && extents < 4096; ++extents) {
        auto extent = image.map(offset, disk - offset);
        if (extent.is_error())
            break;
        if (extent.value().length == 0 || extent.value().offset != offset)
            fail("map returned an empty or misplaced extent");
        offset += extent.value().length;
    }
    (void)image.check(false);
    if (info.read_only || disk < 512)
        return;
    // A few writes where the input's last bytes say, each read back.
    for (size_t i = 0; i + 3 < std::min<size_t>(size, 24); i += 4) {
        uint64_t sectors = disk / 512;
        uint64_t at = (uint64_t(data[size - 1 - i]) << 16 | uint64_t(data[size - 2 - i]) << 8 |
                       data[size - 3 - i]) % sectors * 512;
        uint64_t count = std::min<uint64_t>(1 + data[size - 4 - i] % 16, sectors - at / 512);
        std::vector<uint8_t> written(count * 512, static_cast<uint8_t>(i + 1));
        if (image.write(at, written).is_error())
            continue;
        std::vector<uint8_t> back(written.size());
        if (image.read(at, back).is_error() || back != written)
            fail("a sector does not read back what was written to it");
    }
    (void)image.flush();
    (void)image.check(true);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    int fd = memfd_create("vhd-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size > 0 && write(fd, data, size) != static_cast<ssize_t>(size)) {
        close(fd);
        return 0;
    }
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    OpenOptions alone, chain;
    alone.format = chain.format = "vpc";
    alone.without_parent = true;
    chain.read_only = true;
    for (const OpenOptions& options : {alone, chain}) {
        auto opened = open_image(path, options);
        if (!opened.is_error())
            exercise(*opened.value().image, data, size);
        else if (opened.error().message.empty())
            fail("an error without a message");
    }
    close(fd);
    return 0;
}
