// Guest physical address space: RAM, read-only ROM images and MMIO ranges
// dispatched to devices, plus the code-page tracking that keeps the CPU's
// decoded-block cache coherent with writes (stores, DMA, loaders).
#pragma once

#include "mmu/bus/io_device.h"

#include <functional>
#include <memory>
#include <span>
#include <vector>

class PhysicalMemory {
public:
    // RAM occupies [0, ram_bytes). The legacy hole [0xA0000, 0x100000) is not
    // RAM: it reads as all ones unless a ROM or MMIO range is mapped there.
    explicit PhysicalMemory(u64 ram_bytes);

    u64 ram_size() const { return m_ram_size; }
    // Host address of guest physical 0; RAM is one page-aligned host mapping of
    // ram_size() bytes (what KVM_SET_USER_MEMORY_REGION wants). Includes the
    // legacy hole's backing bytes, which the guest never sees through this class.
    u8* ram_base() { return m_ram.get(); }

    // Host pointer to the start of the RAM page containing addr, or nullptr
    // when that page is not plain writable RAM (ROM, MMIO, hole, beyond RAM).
    u8* ram_page(GuestPhys addr);
    // Like ram_page but also answers for ROM pages (read-only access paths).
    const u8* readable_page(GuestPhys addr);

    void map_mmio(GuestPhys base, u64 size, IoDevice* device);
    // Changes to the map while the guest runs (a guest moving its local APIC
    // window). try_map_mmio refuses (false) a range that overlaps another
    // MMIO or ROM range; it may cover RAM, which it then hides. Both bump
    // layout_generation(): a CPU that sees it move drops its TLB, whose
    // entries may point into RAM that a range now covers, or the other way.
    bool try_map_mmio(GuestPhys base, u64 size, IoDevice* device);
    void unmap_mmio(GuestPhys base, IoDevice* device);
    u64 layout_generation() const { return m_layout_generation; }
    // Copies image into a read-only region; guest writes there are dropped.
    void map_rom(GuestPhys base, std::span<const u8> image);

    // Single access of 1, 2, 4 or 8 bytes that does not cross a page. A vCPU
    // names itself (`vcpu`), so that an MMIO access reaches its own local
    // APIC; device DMA and loaders leave it NO_VCPU.
    u64 read(GuestPhys addr, unsigned size, unsigned vcpu = NO_VCPU);
    void write(GuestPhys addr, unsigned size, u64 value, unsigned vcpu = NO_VCPU);

    // Bulk copies for loaders and DMA; false (and nothing copied) unless the
    // whole range is RAM. Writes invalidate cached code they overlap.
    bool read_bytes(GuestPhys addr, void* out, u64 len);
    bool write_bytes(GuestPhys addr, const void* data, u64 len);

    // Code-page tracking. The block cache marks a page when it decodes from
    // it; any later write to that page (through write(), write_bytes() or a
    // caller of note_write()) clears the mark and calls the listener first.
    void mark_code(GuestPhys addr);
    bool is_code(GuestPhys addr) const
    {
        u64 page = addr >> 12;
        return page < m_code_pages.size() && m_code_pages[page];
    }
    void note_write(GuestPhys addr, u64 len);
    // Counts pages that became code. A CPU whose TLB lets stores bypass
    // is_code() (write entries are never made for code pages) compares it
    // before running a block and drops write entries when it moved.
    u64 code_marks() const { return m_code_marks; }
    void set_code_write_listener(std::function<void(GuestPhys page)> listener)
    {
        m_code_write_listener = std::move(listener);
    }

private:
    struct MmioRange {
        GuestPhys base;
        u64 size;
        IoDevice* device;
    };
    struct RomRange {
        GuestPhys base;
        std::vector<u8> bytes;
    };
    const MmioRange* find_mmio(GuestPhys addr) const;
    const RomRange* find_rom(GuestPhys addr) const;
    // True when every byte of [addr, addr + len) is plain RAM: below ram_size,
    // outside the legacy hole, and not covered by a ROM or MMIO range.
    bool is_ram(GuestPhys addr, u64 len = 1) const;
    bool overlaps_mmio_or_rom(GuestPhys addr, u64 len) const;
    // [1 MiB, m_plain_ram_end) is RAM with no ROM or MMIO range in it.
    void update_plain_ram_end();
    u8 read_byte_slow(GuestPhys addr) const;
    void write_byte_slow(GuestPhys addr, u8 value);

    struct RamUnmapper {
        // No default member initializer: one would make the deleter not yet
        // default-constructible where m_ram needs it (CWG 1397).
        u64 bytes;
        void operator()(u8* p) const;
    };

    u64 m_ram_size;
    std::unique_ptr<u8[], RamUnmapper> m_ram;
    std::vector<MmioRange> m_mmio;
    std::vector<RomRange> m_roms;
    std::vector<u8> m_code_pages;
    u64 m_code_marks = 0;
    u64 m_layout_generation = 0;
    u64 m_plain_ram_end = 0;
    std::function<void(GuestPhys)> m_code_write_listener;
};
