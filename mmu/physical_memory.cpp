#include "mmu/physical_memory.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <new>

#include <sys/mman.h>

namespace {

// The PC/AT legacy window (VGA frame buffer, option ROMs, BIOS): never RAM,
// whatever ram_bytes says, so that a board maps VGA and the BIOS over it.
constexpr GuestPhys LEGACY_HOLE_BASE = pc_memory_map::LOW_RAM_END;
constexpr GuestPhys LEGACY_HOLE_END = pc_memory_map::HIGH_RAM_START;
constexpr GuestPhys HIGH_BASE = pc_memory_map::RAM_ABOVE_4G_BASE;

u64 page_align_up(u64 bytes) { return (bytes + PAGE_SIZE - 1) & PAGE_MASK; }

// Guest memory is little-endian and the fast paths copy it straight into host
// integers; a big-endian host would need byte swaps there.
static_assert(std::endian::native == std::endian::little);

// The range checks below are written as differences so that ranges that end at
// (or a guest address near) the top of the 64-bit space cannot wrap around.
bool contains(u64 base, u64 size, u64 addr)
{
    return addr >= base && addr - base < size;
}

bool contains_range(u64 base, u64 size, u64 addr, u64 len)
{
    return addr >= base && addr - base <= size && len <= size - (addr - base);
}

bool overlaps(u64 a, u64 alen, u64 b, u64 blen)
{
    if (alen == 0 || blen == 0)
        return false;
    return a >= b ? a - b < blen : b - a < alen;
}

} // namespace

void PhysicalMemory::RamUnmapper::operator()(u8* p) const
{
    if (p)
        munmap(p, bytes);
}

PhysicalMemory::PhysicalMemory(u64 ram_bytes) : m_layout(pc_memory_map::ram_layout(ram_bytes))
{
    if (ram_bytes == 0)
        return;
    // One anonymous mapping for both ranges rather than new[]: it is
    // zero-filled lazily and reserves no swap (MAP_NORESERVE), so a 64 GiB
    // guest starts on a smaller host and costs only the pages it touches;
    // and it is page-aligned, as KVM requires of guest memory slots.
    m_high_offset = page_align_up(m_layout.below_4g);
    m_high_first_page = m_high_offset / PAGE_SIZE;
    const u64 bytes = m_high_offset + page_align_up(m_layout.above_4g);
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        throw std::bad_alloc(); // a host error at machine creation, like any failed allocation
    m_ram = std::unique_ptr<u8[], RamUnmapper>(static_cast<u8*>(p), RamUnmapper{bytes});
    m_ranges.push_back({0, m_layout.below_4g, m_ram.get()});
    if (m_layout.above_4g)
        m_ranges.push_back({HIGH_BASE, m_layout.above_4g, m_ram.get() + m_high_offset});
    m_page_count = bytes / PAGE_SIZE;
    m_code_pages.assign((m_page_count + 63) / 64, 0);
    m_dirty_pages.assign(m_code_pages.size(), 0);
    update_plain_ram_end();
}

const PhysicalMemory::MmioRange* PhysicalMemory::find_mmio(GuestPhys addr) const
{
    for (const MmioRange& r : m_mmio)
        if (contains(r.base, r.size, addr))
            return &r;
    return nullptr;
}

const PhysicalMemory::RomRange* PhysicalMemory::find_rom(GuestPhys addr) const
{
    for (const RomRange& r : m_roms)
        if (contains(r.base, r.bytes.size(), addr))
            return &r;
    return nullptr;
}

bool PhysicalMemory::is_ram(GuestPhys addr, u64 len) const
{
    // Most accesses fall in the RAM above 1 MiB or 4 GiB that no range covers.
    if (addr >= LEGACY_HOLE_END && addr < m_plain_ram_end && len <= m_plain_ram_end - addr)
        return true;
    if (addr >= HIGH_BASE && addr < m_plain_high_end && len <= m_plain_high_end - addr)
        return true;
    // A range must lie in one RAM range: the bytes of two are not adjacent
    // in the guest, whatever they are in the backing.
    if (!contains_range(0, m_layout.below_4g, addr, len) &&
        !contains_range(HIGH_BASE, m_layout.above_4g, addr, len))
        return false;
    // Shadow RAM open for both reads and writes is RAM, whatever ROM it hides.
    if (overlaps(addr, len, LEGACY_HOLE_BASE, LEGACY_HOLE_END - LEGACY_HOLE_BASE))
        return shadowed(addr, len, SHADOW_READ | SHADOW_WRITE) && !overlaps_mmio(addr, len);
    return !overlaps_mmio_or_rom(addr, len);
}

bool PhysicalMemory::shadowed(GuestPhys addr, u64 len, u8 mode) const
{
    if (len == 0 || !contains_range(SHADOW_BASE, SHADOW_END - SHADOW_BASE, addr, len) ||
        !contains_range(0, m_layout.below_4g, addr, len))
        return false;
    for (u64 g = (addr - SHADOW_BASE) / SHADOW_GRANULE; g <= (addr + len - 1 - SHADOW_BASE) / SHADOW_GRANULE;
         ++g)
        if ((m_shadow[g] & mode) != mode)
            return false;
    return true;
}

void PhysicalMemory::set_shadow(GuestPhys base, u64 size, bool read_ram, bool write_ram)
{
    assert(contains_range(SHADOW_BASE, SHADOW_END - SHADOW_BASE, base, size));
    assert(base % SHADOW_GRANULE == 0 && size % SHADOW_GRANULE == 0);
    const u8 mode = static_cast<u8>((read_ram ? SHADOW_READ : 0) | (write_ram ? SHADOW_WRITE : 0));
    bool changed = false;
    for (u64 g = (base - SHADOW_BASE) / SHADOW_GRANULE; g < (base + size - SHADOW_BASE) / SHADOW_GRANULE; ++g) {
        changed |= m_shadow[g] != mode;
        m_shadow[g] = mode;
    }
    if (!changed)
        return;
    // What a CPU decoded or cached a host pointer for may now read from
    // elsewhere.
    note_write(base, size);
    layout_changed();
}

bool PhysicalMemory::overlaps_mmio(GuestPhys addr, u64 len) const
{
    for (const MmioRange& r : m_mmio)
        if (overlaps(addr, len, r.base, r.size))
            return true;
    return false;
}

bool PhysicalMemory::overlaps_mmio_or_rom(GuestPhys addr, u64 len) const
{
    if (overlaps_mmio(addr, len))
        return true;
    for (const RomRange& r : m_roms)
        if (overlaps(addr, len, r.base, r.bytes.size()))
            return true;
    return false;
}

u8* PhysicalMemory::ram_page(GuestPhys addr)
{
    GuestPhys page = addr & PAGE_MASK;
    return is_ram(page, PAGE_SIZE) ? host(page) : nullptr;
}

const u8* PhysicalMemory::readable_page(GuestPhys addr)
{
    if (u8* p = ram_page(addr))
        return p;
    GuestPhys page = addr & PAGE_MASK;
    if (overlaps_mmio(page, PAGE_SIZE))
        return nullptr;
    // Read-only shadow RAM: reads from the RAM, writes take the slow path.
    if (shadowed(page, PAGE_SIZE, SHADOW_READ))
        return host(page);
    // Only a page that one ROM image covers completely: a pointer to a partly
    // covered page would let the caller read past the image.
    for (const RomRange& r : m_roms)
        if (contains_range(r.base, r.bytes.size(), page, PAGE_SIZE))
            return r.bytes.data() + (page - r.base);
    return nullptr;
}

void PhysicalMemory::map_mmio(GuestPhys base, u64 size, IoDevice* device)
{
    assert(size > 0 && base + size - 1 >= base && device);
    assert(!overlaps_mmio_or_rom(base, size));
    m_mmio.push_back({base, size, device});
    update_plain_ram_end();
}

bool PhysicalMemory::try_map_mmio(GuestPhys base, u64 size, IoDevice* device)
{
    if (size == 0 || base + size - 1 < base || overlaps_mmio_or_rom(base, size))
        return false;
    // Code decoded from RAM the range now hides must not run again.
    note_write(base, size);
    m_mmio.push_back({base, size, device});
    update_plain_ram_end();
    layout_changed();
    return true;
}

void PhysicalMemory::unmap_mmio(GuestPhys base, IoDevice* device)
{
    std::erase_if(m_mmio, [&](const MmioRange& r) { return r.base == base && r.device == device; });
    update_plain_ram_end();
    layout_changed();
}

void PhysicalMemory::update_plain_ram_end()
{
    // The end of the plain part of the RAM range that starts at `start`: the
    // first ROM or MMIO range that reaches into it cuts it short.
    const auto plain_end = [this](u64 start, u64 end) {
        for (const MmioRange& r : m_mmio)
            if (r.base + (r.size - 1) >= start) // the last byte: no wrap at 2^64
                end = std::min(end, std::max(r.base, start));
        for (const RomRange& r : m_roms)
            if (r.base + (r.bytes.size() - 1) >= start)
                end = std::min(end, std::max<u64>(r.base, start));
        return end;
    };
    m_plain_ram_end = plain_end(LEGACY_HOLE_END, std::max(m_layout.below_4g, LEGACY_HOLE_END));
    m_plain_high_end = plain_end(HIGH_BASE, m_layout.above_4g_end());
}

void PhysicalMemory::map_rom(GuestPhys base, std::span<const u8> image)
{
    if (image.empty())
        return;
    assert(base + image.size() - 1 >= base);
    assert(!overlaps_mmio_or_rom(base, image.size()));
    m_roms.push_back({base, std::vector<u8>(image.begin(), image.end())});
    update_plain_ram_end();
}

u8 PhysicalMemory::read_byte_slow(GuestPhys addr) const
{
    // A byte of a multi-byte access that started outside MMIO but runs into
    // it reads as unclaimed: a device only answers accesses aimed at it.
    if (find_mmio(addr))
        return 0xff;
    if (shadowed(addr, 1, SHADOW_READ))
        return *host(addr);
    if (const RomRange* r = find_rom(addr))
        return r->bytes[addr - r->base];
    if (is_ram(addr))
        return *host(addr);
    return 0xff;
}

void PhysicalMemory::write_byte_slow(GuestPhys addr, u8 value)
{
    if (is_ram(addr) || (shadowed(addr, 1, SHADOW_WRITE) && !find_mmio(addr))) {
        note_write(addr, 1);
        *host(addr) = value;
    }
}

u64 PhysicalMemory::read(GuestPhys addr, unsigned size, unsigned vcpu)
{
    if (size == 0 || size > 8)
        return ~0ull;
    if (is_ram(addr, size)) {
        u64 value = 0;
        std::memcpy(&value, host(addr), size);
        return value;
    }
    if (const MmioRange* r = find_mmio(addr)) {
        ++m_mmio_accesses;
        return r->device->io_read_by(vcpu, addr - r->base, size) & size_mask(size);
    }
    // ROM, the hole, beyond RAM, or an access straddling two of those. Bytes
    // past the top of the address space do not wrap around to 0.
    u64 value = 0;
    for (unsigned i = 0; i < size; ++i) {
        u8 byte = addr + i < addr ? 0xff : read_byte_slow(addr + i);
        value |= u64(byte) << (8 * i);
    }
    return value;
}

void PhysicalMemory::write(GuestPhys addr, unsigned size, u64 value, unsigned vcpu)
{
    if (size == 0 || size > 8)
        return;
    if (is_ram(addr, size)) {
        note_write(addr, size);
        std::memcpy(host(addr), &value, size);
        return;
    }
    if (const MmioRange* r = find_mmio(addr)) {
        ++m_mmio_accesses;
        r->device->io_write_by(vcpu, addr - r->base, size, value & size_mask(size));
        return;
    }
    // Bytes that land in RAM are stored; ROM, hole and unbacked bytes are dropped.
    for (unsigned i = 0; i < size && addr + i >= addr; ++i)
        write_byte_slow(addr + i, u8(value >> (8 * i)));
}

bool PhysicalMemory::read_bytes(GuestPhys addr, void* out, u64 len)
{
    if (len == 0)
        return true;
    if (!is_ram(addr, len))
        return false;
    std::memcpy(out, host(addr), len);
    return true;
}

bool PhysicalMemory::write_bytes(GuestPhys addr, const void* data, u64 len)
{
    if (len == 0)
        return true;
    if (!is_ram(addr, len))
        return false;
    note_write(addr, len);
    std::memcpy(host(addr), data, len);
    return true;
}

void PhysicalMemory::mark_code(GuestPhys addr)
{
    // Only RAM can change under the block cache; code run from ROM (the reset
    // vector) or beyond RAM needs no tracking.
    const u64 index = ram_page_index(addr);
    if (index != NOT_RAM && !test_bit(m_code_pages, index)) {
        set_bit(m_code_pages, index);
        ++m_write_barrier;
    }
}

void PhysicalMemory::note_write(GuestPhys addr, u64 len)
{
    if (len == 0 || m_ranges.empty())
        return;
    // The last byte, without wrapping past 2^64.
    const u64 last_byte = len - 1 > ~0ull - addr ? ~0ull : addr + len - 1;
    for (const RamRange& range : m_ranges) {
        // The part of [addr, last_byte] inside this range, page by page.
        const u64 range_last = range.base + range.size - 1;
        if (last_byte < range.base || addr > range_last)
            continue;
        const u64 first = std::max(addr, range.base) >> 12;
        const u64 last = std::min(last_byte, range_last) >> 12;
        const u64 index_base = ram_page_index(range.base) - (range.base >> 12);
        for (u64 page = first; page <= last; ++page) {
            const u64 index = index_base + page;
            if (m_dirty_logging)
                set_bit(m_dirty_pages, index);
            if (!test_bit(m_code_pages, index))
                continue;
            // The listener runs while the page still reads as code, so that it
            // can tell which of its blocks the write hits; then the mark goes.
            if (m_code_write_listener)
                m_code_write_listener(page << 12);
            clear_bit(m_code_pages, index);
        }
    }
}

void PhysicalMemory::start_dirty_log()
{
    std::fill(m_dirty_pages.begin(), m_dirty_pages.end(), 0);
    m_dirty_logging = true;
    // Every page is clean now: no CPU may keep storing past note_write().
    ++m_write_barrier;
    if (m_external_dirty_log.set_logging)
        m_external_dirty_log.set_logging(true);
}

void PhysicalMemory::stop_dirty_log()
{
    m_dirty_logging = false;
    if (m_external_dirty_log.set_logging)
        m_external_dirty_log.set_logging(false);
}

void PhysicalMemory::collect_dirty(DirtyBitmap& out)
{
    out = m_dirty_pages;
    std::fill(m_dirty_pages.begin(), m_dirty_pages.end(), 0);
    if (m_external_dirty_log.collect)
        m_external_dirty_log.collect(out);
    if (m_dirty_logging)
        ++m_write_barrier;
}
