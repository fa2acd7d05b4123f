// Fuzz target: the SCSI disk model (platform/storage/scsi_disk.h) as a
// hostile guest drives it through a transport: CDBs of any length and
// bytes for any LUN, data buffers of any size and direction (filled from
// the input for data-out), disk completions delivered in batches, drains,
// and a save/load of the disk's state. The disk sits on a raw image in a
// memfd, writable or read-only as the first input byte says. Every command
// must complete exactly once with no more data than its buffer holds, and
// nothing may touch memory outside the buffers (each is its own allocation
// of exactly its size, so AddressSanitizer sees any overrun).
//
// Built two ways, like the others: with libFuzzer (scripts/fuzz.sh) and
// with the seeded driver fuzz_driver.cpp.
#include "mmu/base/state_visitor.h"
#include "platform/block/image_format.h"
#include "platform/storage/scsi_disk.h"
#include "tests/fuzz/fuzz_input.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what)
{
    std::fprintf(stderr, "scsi_disk_fuzz: %s\n", what);
    std::abort();
}

constexpr u64 DISK_BYTES = 256 << 10;
constexpr size_t MAX_STEPS = 2048;
constexpr size_t MAX_BUFFER = 1 << 16;

// The operation codes the disk knows, so that a step reaches them often.
constexpr u8 KNOWN[] = {0x00, 0x03, 0x08, 0x0A, 0x12, 0x15, 0x1A, 0x1B, 0x1E, 0x25,
                        0x28, 0x2A, 0x2F, 0x35, 0x41, 0x42, 0x55, 0x5A, 0x88, 0x8A,
                        0x8F, 0x91, 0x93, 0x9E, 0xA0, 0xA8, 0xAA, 0xAF};

struct Pending {
    std::vector<u8> buffer;
    unsigned calls = 0;
    ScsiTarget::Result result;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    FuzzInput in{data, size};
    const bool read_only = in.byte() & 1;

    const int fd = memfd_create("scsi-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        fail("memfd_create");
    std::vector<u8> image(DISK_BYTES);
    for (size_t i = 0; i < image.size(); ++i)
        image[i] = static_cast<u8>(i * 7 + i / 512);
    if (write(fd, image.data(), image.size()) != static_cast<ssize_t>(image.size()))
        fail("writing the image");
    OpenOptions options;
    options.format = "raw";
    options.read_only = read_only;
    auto opened = open_image("/proc/self/fd/" + std::to_string(fd), options);
    if (opened.is_error())
        fail("opening the image");

    std::vector<std::function<void()>> posted;
    auto deliver = [&] {
        std::vector<std::function<void()>> batch;
        batch.swap(posted);
        for (auto& d : batch)
            d();
    };
    ScsiDiskIdentity identity;
    identity.serial = "FUZZ";
    identity.max_transfer_bytes = 64 << 10;
    auto disk = std::make_unique<ScsiDisk>(
        std::make_unique<BlockDevice>(
            std::move(opened.value().image), BlockDevice::Execution::Inline,
            [&](std::function<void()> d) { posted.push_back(std::move(d)); }),
        identity);

    std::list<Pending> commands;
    for (size_t step = 0; step < MAX_STEPS && !in.done(); ++step) {
        switch (in.byte() % 5) {
        case 0:
        case 1: { // a command
            const u8 shape = in.byte();
            const u8 lun = shape & 0x80 ? in.byte() : 0;
            const auto direction = static_cast<ScsiTarget::Direction>((shape >> 4) % 3);
            std::vector<u8> cdb(in.byte() % 17);
            for (u8& b : cdb)
                b = in.byte();
            if (!cdb.empty() && (shape & 0x01))
                cdb[0] = KNOWN[cdb[0] % sizeof KNOWN];
            Pending& p = commands.emplace_back();
            p.buffer.resize(in.word() % MAX_BUFFER);
            if (direction == ScsiTarget::Direction::ToDevice)
                for (u8& b : p.buffer)
                    b = in.byte();
            disk->execute({lun, cdb, direction, p.buffer}, [&p](const ScsiTarget::Result& r) {
                ++p.calls;
                p.result = r;
            });
            break;
        }
        case 2:
            deliver();
            break;
        case 3:
            disk->drain();
            break;
        case 4: { // save and load, with nothing in flight
            disk->drain();
            StateVisitor saver = StateVisitor::saver();
            disk->visit_state(saver);
            StateVisitor loader = StateVisitor::loader(saver.bytes());
            disk->visit_state(loader);
            if (!loader.ok())
                fail("the disk's own state does not load");
            break;
        }
        }
        // Completed commands go; their buffers are the transport's again.
        for (auto it = commands.begin(); it != commands.end();) {
            if (it->calls > 1)
                fail("a command completed twice");
            if (it->calls == 1 && it->result.transferred > it->buffer.size())
                fail("a command moved more than its buffer");
            it = it->calls ? commands.erase(it) : std::next(it);
        }
    }
    disk->drain();
    deliver();
    for (const Pending& p : commands)
        if (p.calls != 1 || p.result.transferred > p.buffer.size())
            fail("a command did not complete once within its buffer");
    if (disk->in_flight() != 0)
        fail("commands left in flight");
    disk.reset();
    close(fd);
    return 0;
}
