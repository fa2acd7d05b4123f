// Guest physical address space: RAM, read-only ROM images and MMIO ranges
// dispatched to devices, plus the code-page tracking that keeps the CPU's
// decoded-block cache coherent with writes (stores, DMA, loaders) and the
// dirty-page log that snapshots and migration read.
#pragma once

#include "mmu/bus/io_device.h"
#include "mmu/pc_memory_map.h"

#include <array>
#include <functional>
#include <memory>
#include <span>
#include <vector>

class PhysicalMemory {
public:
    // ram_bytes of RAM laid out as pc_memory_map::ram_layout says: from 0 up
    // to the PCI hole, the rest from 4 GiB. The legacy hole [0xA0000,
    // 0x100000) is not RAM: it reads as all ones unless a ROM or MMIO range
    // is mapped there. The host backing is reserved, not committed: a page
    // costs host memory only once it is touched.
    explicit PhysicalMemory(u64 ram_bytes);

    // Total RAM (both ranges).
    u64 ram_size() const { return m_layout.total(); }
    const pc_memory_map::RamLayout& layout() const { return m_layout; }

    // One contiguous piece of RAM and its host backing: what
    // KVM_SET_USER_MEMORY_REGION takes (one slot per range). The range below
    // 4 GiB includes the legacy hole's backing bytes, which the guest never
    // sees through this class.
    struct RamRange {
        GuestPhys base;
        u64 size;
        u8* host;
    };
    std::span<const RamRange> ram_ranges() const { return {m_ranges.data(), m_ranges.size()}; }

    // RAM pages are numbered through the ranges in order (the range below
    // 4 GiB first): the index of the dirty log's bit for a page. NOT_RAM for
    // an address outside every range.
    static constexpr u64 NOT_RAM = ~0ull;
    u64 ram_page_index(GuestPhys addr) const
    {
        if (addr < m_layout.below_4g)
            return addr >> 12;
        if (addr >= pc_memory_map::RAM_ABOVE_4G_BASE &&
            addr - pc_memory_map::RAM_ABOVE_4G_BASE < m_layout.above_4g)
            return m_high_first_page + ((addr - pc_memory_map::RAM_ABOVE_4G_BASE) >> 12);
        return NOT_RAM;
    }
    u64 ram_page_count() const { return m_page_count; }
    // The host bytes of RAM page `index` (< ram_page_count()), for snapshot
    // save and restore; bypasses code tracking and the dirty log.
    u8* ram_page_by_index(u64 index) { return m_ram.get() + index * PAGE_SIZE; }

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

    // Shadow RAM in [SHADOW_BASE, SHADOW_END), the option-ROM and BIOS
    // window, as a chipset's PAM registers decode it (82441FX datasheet
    // 3.2.18): per SHADOW_GRANULE, reads go to RAM or to what is mapped
    // there otherwise (a ROM, or nothing), and writes go to RAM or are
    // dropped. The RAM behind it is the backing of the legacy hole. At
    // power-on neither reaches RAM. A change drops code decoded from the
    // range and bumps layout_generation().
    static constexpr GuestPhys SHADOW_BASE = 0xC0000, SHADOW_END = 0x100000;
    static constexpr u64 SHADOW_GRANULE = 0x4000;
    void set_shadow(GuestPhys base, u64 size, bool read_ram, bool write_ram);
    // Where the granule holding `addr` sends reads and writes now.
    struct ShadowAccess {
        bool read_ram, write_ram;
    };
    ShadowAccess shadow_access(GuestPhys addr) const
    {
        const u8 mode = m_shadow.at((addr - SHADOW_BASE) / SHADOW_GRANULE);
        return {(mode & SHADOW_READ) != 0, (mode & SHADOW_WRITE) != 0};
    }
    // True when an MMIO device has any byte of [addr, addr + len).
    bool has_mmio(GuestPhys addr, u64 len) const { return overlaps_mmio(addr, len); }
    // The ROM images, for a hardware backend that maps them read-only.
    struct RomImage {
        GuestPhys base;
        std::span<const u8> bytes;
    };
    std::vector<RomImage> roms() const
    {
        std::vector<RomImage> out;
        for (const RomRange& r : m_roms)
            out.push_back({r.base, r.bytes});
        return out;
    }
    // Called after every change of what an address reaches (shadow RAM,
    // MMIO ranges moved while the guest runs): a hardware backend's memory
    // slots follow it.
    void set_layout_listener(std::function<void()> listener) { m_layout_listener = std::move(listener); }

    // Single access of 1, 2, 4 or 8 bytes that does not cross a page. A vCPU
    // names itself (`vcpu`), so that an MMIO access reaches its own local
    // APIC; device DMA and loaders leave it NO_VCPU.
    u64 read(GuestPhys addr, unsigned size, unsigned vcpu = NO_VCPU);
    void write(GuestPhys addr, unsigned size, u64 value, unsigned vcpu = NO_VCPU);

    // Bulk copies for loaders and DMA; false (and nothing copied) unless the
    // whole range is RAM. Writes invalidate cached code they overlap.
    // Devices and loaders go through GuestMemory (mmu/guest_memory.h).
    bool read_bytes(GuestPhys addr, void* out, u64 len);
    bool write_bytes(GuestPhys addr, const void* data, u64 len);

    // Code-page tracking. The block cache marks a page when it decodes from
    // it; any later write to that page (through write(), write_bytes() or a
    // caller of note_write()) clears the mark and calls the listener first.
    void mark_code(GuestPhys addr);
    bool is_code(GuestPhys addr) const { return test_bit(m_code_pages, ram_page_index(addr)); }
    // Every write to RAM that does not go through write()/write_bytes()
    // (a CPU storing through a host pointer) calls this first: it keeps the
    // block cache coherent and marks the pages dirty.
    void note_write(GuestPhys addr, u64 len);

    // Dirty-page log (for snapshots and live migration). While it is on,
    // every write to a RAM page sets the page's bit: stores, DMA, loaders.
    // Stores through a CPU's soft TLB bypass note_write(), so a TLB makes a
    // write entry only for a page that may_cache_writes() allows, i.e. one
    // already dirty: the first store to a clean page takes the slow path.
    // Bits are numbered by ram_page_index().
    using DirtyBitmap = std::vector<u64>;
    void start_dirty_log();
    void stop_dirty_log();
    bool dirty_logging() const { return m_dirty_logging; }
    // Hands the pages written since the last call (or since start) to `out`,
    // one bit per RAM page, and starts a new round with every page clean.
    void collect_dirty(DirtyBitmap& out);
    // A hardware backend whose guest stores RAM without passing here (KVM,
    // through its own page tables) keeps a log of its own: started and
    // stopped with this one, its pages added to each collect_dirty.
    struct ExternalDirtyLog {
        std::function<void(bool on)> set_logging;
        // ORs the pages written since the last call into `bits` (numbered
        // by ram_page_index) and starts its own new round.
        std::function<void(DirtyBitmap& bits)> collect;
    };
    void set_external_dirty_log(ExternalDirtyLog log) { m_external_dirty_log = std::move(log); }
    static bool test_bit(const DirtyBitmap& bits, u64 index)
    {
        return index < bits.size() * 64 && ((bits[index >> 6] >> (index & 63)) & 1);
    }

    // True when a CPU may store to this RAM page through a host pointer
    // without telling note_write(): not code, and dirty if the log is on.
    bool may_cache_writes(GuestPhys page) const
    {
        const u64 index = ram_page_index(page);
        return !test_bit(m_code_pages, index) &&
               (!m_dirty_logging || test_bit(m_dirty_pages, index));
    }
    // Moves whenever a page stops allowing cached writes (it became code, or
    // the dirty log cleaned it). A CPU compares it before running a block
    // and drops the write entries may_cache_writes() no longer allows.
    u64 write_barrier() const { return m_write_barrier; }
    void set_code_write_listener(std::function<void(GuestPhys page)> listener)
    {
        m_code_write_listener = std::move(listener);
    }
    // read() and write() accesses that reached an MMIO device: the guest's
    // MMIO exits (--stats).
    u64 mmio_accesses() const { return m_mmio_accesses; }
    // The counter itself, for translated code that compares it before and after.
    const u64* mmio_access_counter() const { return &m_mmio_accesses; }

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
    // True when every byte of [addr, addr + len) is plain RAM: inside one RAM
    // range, outside the legacy hole, and not covered by a ROM or MMIO range.
    bool is_ram(GuestPhys addr, u64 len = 1) const;
    bool overlaps_mmio_or_rom(GuestPhys addr, u64 len) const;
    bool overlaps_mmio(GuestPhys addr, u64 len) const;
    // True when every byte of [addr, addr + len) is shadow RAM with all of
    // `mode`'s access bits (SHADOW_READ, SHADOW_WRITE).
    bool shadowed(GuestPhys addr, u64 len, u8 mode) const;
    static constexpr u8 SHADOW_READ = 1, SHADOW_WRITE = 2;
    // [1 MiB, m_plain_ram_end) and [4 GiB, m_plain_high_end) are RAM with no
    // ROM or MMIO range in them.
    void update_plain_ram_end();
    // Host address of a RAM byte (the caller checked is_ram).
    u8* host(GuestPhys addr) const
    {
        return addr < pc_memory_map::RAM_ABOVE_4G_BASE
                   ? m_ram.get() + addr
                   : m_ram.get() + m_high_offset + (addr - pc_memory_map::RAM_ABOVE_4G_BASE);
    }
    static void set_bit(DirtyBitmap& bits, u64 index) { bits[index >> 6] |= 1ull << (index & 63); }
    static void clear_bit(DirtyBitmap& bits, u64 index)
    {
        bits[index >> 6] &= ~(1ull << (index & 63));
    }
    u8 read_byte_slow(GuestPhys addr) const;
    void write_byte_slow(GuestPhys addr, u8 value);

    struct RamUnmapper {
        // No default member initializer: one would make the deleter not yet
        // default-constructible where m_ram needs it (CWG 1397).
        u64 bytes;
        void operator()(u8* p) const;
    };

    pc_memory_map::RamLayout m_layout;
    u64 m_high_offset = 0;     // where the range above 4 GiB starts in the backing
    u64 m_high_first_page = 0; // its first page's ram_page_index
    u64 m_page_count = 0;
    std::unique_ptr<u8[], RamUnmapper> m_ram;
    std::vector<RamRange> m_ranges;
    std::vector<MmioRange> m_mmio;
    std::vector<RomRange> m_roms;
    std::array<u8, (SHADOW_END - SHADOW_BASE) / SHADOW_GRANULE> m_shadow{};
    DirtyBitmap m_code_pages; // one bit per RAM page, as the dirty log
    DirtyBitmap m_dirty_pages;
    bool m_dirty_logging = false;
    u64 m_write_barrier = 0;
    u64 m_layout_generation = 0;
    u64 m_plain_ram_end = 0;
    u64 m_plain_high_end = 0;
    u64 m_mmio_accesses = 0;
    std::function<void(GuestPhys)> m_code_write_listener;
    std::function<void()> m_layout_listener;
    ExternalDirtyLog m_external_dirty_log;
    void layout_changed()
    {
        ++m_layout_generation;
        if (m_layout_listener)
            m_layout_listener();
    }
};
