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
constexpr GuestPhys LEGACY_HOLE_BASE = 0xA0000;
constexpr GuestPhys LEGACY_HOLE_END = 0x100000;

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

PhysicalMemory::PhysicalMemory(u64 ram_bytes) : m_ram_size(ram_bytes)
{
    if (ram_bytes == 0)
        return;
    // An anonymous mapping rather than new[]: it is zero-filled lazily (a 4 GiB
    // guest costs nothing until touched) and page-aligned, as KVM requires of
    // guest memory slots.
    u64 bytes = (ram_bytes + PAGE_SIZE - 1) & PAGE_MASK;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        throw std::bad_alloc(); // a host error at machine creation, like any failed allocation
    m_ram = std::unique_ptr<u8[], RamUnmapper>(static_cast<u8*>(p), RamUnmapper{bytes});
    m_code_pages.assign(bytes / PAGE_SIZE, 0);
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
    // Most accesses fall in the RAM above 1 MiB that no range covers.
    if (addr >= LEGACY_HOLE_END && addr < m_plain_ram_end && len <= m_plain_ram_end - addr)
        return true;
    if (!contains_range(0, m_ram_size, addr, len))
        return false;
    if (overlaps(addr, len, LEGACY_HOLE_BASE, LEGACY_HOLE_END - LEGACY_HOLE_BASE))
        return false;
    return !overlaps_mmio_or_rom(addr, len);
}

bool PhysicalMemory::overlaps_mmio_or_rom(GuestPhys addr, u64 len) const
{
    for (const MmioRange& r : m_mmio)
        if (overlaps(addr, len, r.base, r.size))
            return true;
    for (const RomRange& r : m_roms)
        if (overlaps(addr, len, r.base, r.bytes.size()))
            return true;
    return false;
}

u8* PhysicalMemory::ram_page(GuestPhys addr)
{
    GuestPhys page = addr & PAGE_MASK;
    return is_ram(page, PAGE_SIZE) ? m_ram.get() + page : nullptr;
}

const u8* PhysicalMemory::readable_page(GuestPhys addr)
{
    if (u8* p = ram_page(addr))
        return p;
    GuestPhys page = addr & PAGE_MASK;
    for (const MmioRange& r : m_mmio)
        if (overlaps(page, PAGE_SIZE, r.base, r.size))
            return nullptr;
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
    ++m_layout_generation;
    return true;
}

void PhysicalMemory::unmap_mmio(GuestPhys base, IoDevice* device)
{
    std::erase_if(m_mmio, [&](const MmioRange& r) { return r.base == base && r.device == device; });
    update_plain_ram_end();
    ++m_layout_generation;
}

void PhysicalMemory::update_plain_ram_end()
{
    u64 end = m_ram_size;
    for (const MmioRange& r : m_mmio)
        if (r.base + (r.size - 1) >= LEGACY_HOLE_END) // the last byte: no wrap at 2^64
            end = std::min(end, std::max(r.base, LEGACY_HOLE_END));
    for (const RomRange& r : m_roms)
        if (r.base + (r.bytes.size() - 1) >= LEGACY_HOLE_END)
            end = std::min(end, std::max<u64>(r.base, LEGACY_HOLE_END));
    m_plain_ram_end = end;
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
    if (const RomRange* r = find_rom(addr))
        return r->bytes[addr - r->base];
    if (is_ram(addr))
        return m_ram[addr];
    return 0xff;
}

void PhysicalMemory::write_byte_slow(GuestPhys addr, u8 value)
{
    if (is_ram(addr)) {
        m_ram[addr] = value;
        note_write(addr, 1);
    }
}

u64 PhysicalMemory::read(GuestPhys addr, unsigned size, unsigned vcpu)
{
    if (size == 0 || size > 8)
        return ~0ull;
    if (is_ram(addr, size)) {
        u64 value = 0;
        std::memcpy(&value, m_ram.get() + addr, size);
        return value;
    }
    if (const MmioRange* r = find_mmio(addr))
        return r->device->io_read_by(vcpu, addr - r->base, size) & size_mask(size);
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
        std::memcpy(m_ram.get() + addr, &value, size);
        note_write(addr, size);
        return;
    }
    if (const MmioRange* r = find_mmio(addr)) {
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
    std::memcpy(out, m_ram.get() + addr, len);
    return true;
}

bool PhysicalMemory::write_bytes(GuestPhys addr, const void* data, u64 len)
{
    if (len == 0)
        return true;
    if (!is_ram(addr, len))
        return false;
    std::memcpy(m_ram.get() + addr, data, len);
    note_write(addr, len);
    return true;
}

void PhysicalMemory::mark_code(GuestPhys addr)
{
    // Only RAM can change under the block cache; code run from ROM (the reset
    // vector) or beyond RAM needs no tracking, and must not grow the bitmap.
    u64 page = addr >> 12;
    if (page < m_code_pages.size() && !m_code_pages[page]) {
        m_code_pages[page] = 1;
        ++m_code_marks;
    }
}

void PhysicalMemory::note_write(GuestPhys addr, u64 len)
{
    if (len == 0 || m_code_pages.empty())
        return;
    u64 first = addr >> 12;
    u64 last = len - 1 > ~0ull - addr ? ~0ull >> 12 : (addr + len - 1) >> 12;
    if (last >= m_code_pages.size())
        last = m_code_pages.size() - 1;
    for (u64 page = first; page <= last; ++page) {
        if (!m_code_pages[page])
            continue;
        // The listener runs while the page still reads as code, so that it can
        // tell which of its blocks the write hits; then the mark goes.
        if (m_code_write_listener)
            m_code_write_listener(page << 12);
        m_code_pages[page] = 0;
    }
}
