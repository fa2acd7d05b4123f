// A PIIX IDE function with one raw disk as primary master, on 16 MiB of
// guest RAM, with the disk's completions delivered when the test says so
// (the machine thread's part), and the channel's interrupt line watched.
#pragma once

#include "mmu/base/state_visitor.h"
#include "platform/block/image_format.h"
#include "platform/storage/ata_disk.h"
#include "platform/storage/piix_ide.h"
#include "tests/platform/block/temp_dir.h"

#include <doctest/doctest.h>
#include <functional>
#include <mutex>
#include <vector>

struct IdeRig {
    static constexpr u64 DISK_BYTES = 4 << 20;
    static constexpr u16 BMIBA = PiixIde::FIRMWARE_BMIBA;

    TempDir dir;
    PhysicalMemory memory{16 << 20};
    PiixIde ide{GuestMemory(memory)};
    std::mutex mutex;
    std::vector<std::function<void()>> posted;
    bool irq = false;
    unsigned irq_edges = 0;

    IdeRig()
    {
        REQUIRE(!create_image(dir.file("disk.img"), {"raw", DISK_BYTES, {}, ""}).is_error());
        // A recognisable pattern: byte i of sector s is (s * 7 + i) & 0xFF.
        auto opened = open_image(dir.file("disk.img"), {"raw"});
        REQUIRE(!opened.is_error());
        std::vector<u8> sector(512);
        for (u64 s = 0; s < 64; ++s) {
            for (unsigned i = 0; i < 512; ++i)
                sector[i] = static_cast<u8>(s * 7 + i);
            REQUIRE(!opened.value().image->write(s * 512, sector).is_error());
        }
        auto disk = std::make_unique<BlockDevice>(std::move(opened.value().image),
                                                  BlockDevice::Execution::Inline,
                                                  [this](std::function<void()> deliver) {
                                                      std::lock_guard lock(mutex);
                                                      posted.push_back(std::move(deliver));
                                                  });
        ide.channel(0).attach(0, std::make_unique<AtaDisk>(std::move(disk), "TEST0"));
        ide.channel(0).set_irq_line([this](bool level) {
            if (level && !irq)
                ++irq_edges;
            irq = level;
        });
        ide.program_as_firmware_does();
    }

    IdeChannel& ch() { return ide.channel(0); }
    AtaDisk& disk() { return static_cast<AtaDisk&>(*ch().device(0)); }
    size_t deliver()
    {
        std::vector<std::function<void()>> batch;
        {
            std::lock_guard lock(mutex);
            batch.swap(posted);
        }
        for (auto& d : batch)
            d();
        return batch.size();
    }
    u8 status() { return static_cast<u8>(ch().read_command(7, 1)); }
    u8 alt_status() { return ch().read_alt_status(); }
    u8 error() { return static_cast<u8>(ch().read_command(1, 1)); }
    void reg(unsigned offset, u8 value) { ch().write_command(offset, 1, value); }
    void command(u8 value) { reg(7, value); }
    // LBA28 task file for `count` sectors at `lba` on the master.
    void lba28(u64 lba, u8 count)
    {
        reg(2, count);
        reg(3, static_cast<u8>(lba));
        reg(4, static_cast<u8>(lba >> 8));
        reg(5, static_cast<u8>(lba >> 16));
        reg(6, static_cast<u8>(0x40 | ((lba >> 24) & 0x0F)));
    }
    void lba48(u64 lba, u16 count)
    {
        reg(2, static_cast<u8>(count >> 8));
        reg(2, static_cast<u8>(count));
        reg(3, static_cast<u8>(lba >> 24));
        reg(3, static_cast<u8>(lba));
        reg(4, static_cast<u8>(lba >> 32));
        reg(4, static_cast<u8>(lba >> 8));
        reg(5, static_cast<u8>(lba >> 40));
        reg(5, static_cast<u8>(lba >> 16));
        reg(6, 0x40);
    }
    std::vector<u8> read_pio(unsigned bytes)
    {
        std::vector<u8> out;
        for (unsigned i = 0; i < bytes; i += 2) {
            const u16 w = static_cast<u16>(ch().read_command(0, 2));
            out.push_back(static_cast<u8>(w));
            out.push_back(static_cast<u8>(w >> 8));
        }
        return out;
    }
    void write_pio(const std::vector<u8>& data)
    {
        for (size_t i = 0; i < data.size(); i += 2)
            ch().write_command(0, 2, data[i] | (data[i + 1] << 8));
    }
    IoDevice& bm() { return *ide.bar(PiixIde::BMIBA_BAR).handler; }
    // A PRD table at `table`: (address, byte count, end of table) entries.
    struct Prd {
        u32 address;
        u32 count;
        bool last;
    };
    void prd_table(GuestPhys table, const std::vector<Prd>& entries)
    {
        for (size_t i = 0; i < entries.size(); ++i) {
            const u8 e[8] = {static_cast<u8>(entries[i].address), static_cast<u8>(entries[i].address >> 8),
                             static_cast<u8>(entries[i].address >> 16), static_cast<u8>(entries[i].address >> 24),
                             static_cast<u8>(entries[i].count), static_cast<u8>(entries[i].count >> 8), 0,
                             static_cast<u8>(entries[i].last ? 0x80 : 0)};
            REQUIRE(GuestMemory(memory).write(table + 8 * i, e, 8));
        }
    }
    void start_dma(GuestPhys table, bool to_memory)
    {
        bm().io_write(4, 4, table);
        bm().io_write(2, 1, BusMasterDma::BMIS_ERROR | BusMasterDma::BMIS_INTERRUPT);
        bm().io_write(0, 1, (to_memory ? BusMasterDma::BMIC_WRITE_TO_MEMORY : 0) | BusMasterDma::BMIC_START);
    }
    u8 bmis() { return static_cast<u8>(bm().io_read(2, 1)); }
    std::vector<u8> disk_bytes(u64 offset, u64 length)
    {
        std::vector<u8> out(length);
        REQUIRE(!disk().disk().image().read(offset, out).is_error());
        return out;
    }
    static u8 pattern(u64 sector, unsigned i) { return static_cast<u8>(sector * 7 + i); }
};
