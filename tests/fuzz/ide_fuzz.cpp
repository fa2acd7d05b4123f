// Fuzz target: the PIIX IDE function as a hostile guest drives it
// (platform/storage/): an ATA disk (primary master) and an ATAPI CD-ROM
// with a disc (primary slave) on raw images in memory, an empty ATAPI drive
// (secondary master), 1 MiB of guest RAM for PRD tables and data. The input
// is a program of steps: port writes and reads on the task file, control
// and bus-master registers, writes to guest RAM, whole PACKET commands and
// ATA task files (so the fuzzer reaches the SCSI and DMA paths quickly),
// disk completions delivered, host media changes, a channel reset and a
// save/load of the whole function. Nothing may crash, assert, hang or touch
// memory outside the guest RAM buffer (AddressSanitizer says); a
// save-load-save that does not give the same bytes aborts.
//
// Built two ways, like the others: with libFuzzer (scripts/fuzz.sh) and
// with the seeded driver fuzz_driver.cpp over the seeds in corpus/ide
// (written by ide_seed.py).
#include "mmu/base/state_visitor.h"
#include "platform/block/image_format.h"
#include "platform/storage/ata_disk.h"
#include "platform/storage/atapi_cdrom.h"
#include "platform/storage/piix_ide.h"
#include "tests/fuzz/fuzz_input.h"

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
    std::fprintf(stderr, "ide_fuzz: %s\n", what);
    std::abort();
}

constexpr u64 RAM_BYTES = 1 << 20;
constexpr u64 DISK_BYTES = 256 << 10;
constexpr u64 DISC_BYTES = 64 * 2048;
constexpr size_t MAX_STEPS = 4096;

// A raw image in a memfd, filled with a pattern; its fd stays open until
// the image is closed (the path names the fd).
struct MemImage {
    int fd = -1;
    std::string path;
    explicit MemImage(u64 bytes, u8 seed)
    {
        fd = memfd_create("ide-fuzz", MFD_CLOEXEC);
        if (fd < 0)
            fail("memfd_create");
        std::vector<u8> data(bytes);
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = static_cast<u8>(i * 7 + i / 512 + seed);
        if (write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size()))
            fail("writing the image");
        path = "/proc/self/fd/" + std::to_string(fd);
    }
    ~MemImage() { close(fd); }
};

struct Rig {
    PhysicalMemory memory{RAM_BYTES};
    PiixIde ide{GuestMemory(memory)};
    std::vector<std::function<void()>> posted;
    MemImage disk_file{DISK_BYTES, 1};
    MemImage disc_file{DISC_BYTES, 2};
    MemImage other_disc_file{DISC_BYTES / 2, 3};

    std::unique_ptr<BlockDevice> open(const MemImage& file, bool read_only)
    {
        OpenOptions options;
        options.format = "raw";
        options.read_only = read_only;
        auto opened = open_image(file.path, options);
        if (opened.is_error())
            fail("opening a memory image");
        // Completions wait for a "deliver" step, as they wait for the
        // machine thread.
        return std::make_unique<BlockDevice>(
            std::move(opened.value().image), BlockDevice::Execution::Inline,
            [this](std::function<void()> deliver) { posted.push_back(std::move(deliver)); });
    }

    Rig()
    {
        ide.channel(0).attach(0, std::make_unique<AtaDisk>(open(disk_file, false), "FUZZ0"));
        ide.channel(0).attach(1, std::make_unique<AtapiCdrom>(open(disc_file, true), "FUZZ1"));
        ide.channel(1).attach(0, std::make_unique<AtapiCdrom>(nullptr, "FUZZ2"));
        ide.program_as_firmware_does();
    }
    ~Rig() { ide.drain(); }

    void deliver()
    {
        // A callback may submit more; bounded so a chain cannot spin.
        for (int round = 0; round < 64 && !posted.empty(); ++round) {
            std::vector<std::function<void()>> batch;
            batch.swap(posted);
            for (auto& d : batch)
                d();
        }
    }
    IoDevice& bus_master() { return *ide.bar(PiixIde::BMIBA_BAR).handler; }
};

unsigned access_size(u8 b)
{
    static constexpr unsigned sizes[] = {1, 2, 4, 2};
    return sizes[b & 3];
}

void save_load_save(Rig& rig)
{
    rig.ide.drain();
    rig.posted.clear(); // drained: their deliveries find nothing
    StateVisitor saver = StateVisitor::saver();
    rig.ide.visit_state(saver);
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    rig.ide.visit_state(loader);
    if (!loader.ok()) {
        std::fprintf(stderr, "ide_fuzz: %s\n", loader.error().c_str());
        fail("the IDE function's own state does not load");
    }
    StateVisitor again = StateVisitor::saver();
    rig.ide.visit_state(again);
    if (again.bytes() != saver.bytes())
        fail("save, load, save gave different bytes");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    Rig rig;
    FuzzInput in{data, size};
    for (size_t step = 0; step < MAX_STEPS && !in.done(); ++step) {
        const u8 op = in.byte();
        IdeChannel& channel = rig.ide.channel(op >> 7);
        switch (op & 0x0F) {
        case 0: { // a command block register write
            const u8 b = in.byte();
            channel.write_command(b & 7, access_size(b >> 3), in.dword());
            break;
        }
        case 1: { // a command block register read (the data port too)
            const u8 b = in.byte();
            (void)channel.read_command(b & 7, access_size(b >> 3));
            break;
        }
        case 2:
            channel.write_device_control(in.byte());
            break;
        case 3:
            (void)channel.read_alt_status();
            break;
        case 4: { // a bus-master register write (both channels' 16 ports)
            const u8 b = in.byte();
            rig.bus_master().io_write(b & 15, access_size(b >> 4), in.dword());
            break;
        }
        case 5: {
            const u8 b = in.byte();
            (void)rig.bus_master().io_read(b & 15, access_size(b >> 4));
            break;
        }
        case 6: { // guest RAM: a PRD entry or data, 8 bytes anywhere in the first MiB
            const u32 address = (u32(in.byte()) | u32(in.byte()) << 8 | u32(in.byte()) << 16) &
                                (RAM_BYTES - 1);
            u8 bytes[8];
            for (u8& b : bytes)
                b = in.byte();
            (void)GuestMemory(rig.memory).write(address, bytes, sizeof bytes);
            break;
        }
        case 7:
            rig.deliver();
            break;
        case 8: { // a whole PACKET command: device, features, byte count limit, CDB
            channel.write_command(6, 1, in.byte());
            channel.write_command(1, 1, in.byte());
            const u16 limit = in.word();
            channel.write_command(4, 1, limit & 0xFF);
            channel.write_command(5, 1, limit >> 8);
            channel.write_command(7, 1, AtapiCdrom::PACKET);
            for (int i = 0; i < 6; ++i)
                channel.write_command(0, 2, in.word());
            break;
        }
        case 9: { // a whole ATA task file and command
            for (unsigned reg = 1; reg <= 6; ++reg)
                channel.write_command(reg, 1, in.byte());
            channel.write_command(7, 1, in.byte());
            break;
        }
        case 10: { // drain the data port: up to 64 KiB of reads or writes
            const u8 b = in.byte();
            const unsigned words = 1u + (in.word() & 0x7FFF);
            for (unsigned i = 0; i < words; ++i) {
                if (b & 1)
                    channel.write_command(0, 2, i);
                else
                    (void)channel.read_command(0, 2);
            }
            break;
        }
        case 11: { // the host changes the disc of the primary slave or the empty drive
            const u8 b = in.byte();
            auto& drive = static_cast<AtapiCdrom&>(
                b & 2 ? *rig.ide.channel(1).device(0) : *rig.ide.channel(0).device(1));
            if (b & 1)
                drive.remove_disc();
            else
                drive.insert_disc(rig.open(b & 4 ? rig.other_disc_file : rig.disc_file, true));
            break;
        }
        case 12:
            channel.reset();
            break;
        case 13:
            save_load_save(rig);
            break;
        case 14: // PCI command register: bus mastering on or off
            rig.ide.config_write(0x04, 2, in.byte() & 1 ? 0x0005 : 0x0001);
            break;
        default:
            break;
        }
    }
    rig.deliver();
    return 0;
}
