#include "mmu/bus/port_bus.h"

#include <cassert>
#include <vector>

void PortBus::map(u16 base, u32 count, IoDevice* device)
{
    for (const Range& r : m_ranges)
        assert(base + count <= r.base || r.base + r.count <= base);
    m_ranges.push_back({base, count, device});
}

bool PortBus::try_map(u16 base, u32 count, IoDevice* device)
{
    if (count == 0 || u32(base) + count > 0x10000)
        return false;
    for (const Range& r : m_ranges)
        if (!(base + count <= r.base || r.base + r.count <= base))
            return false;
    m_ranges.push_back({base, count, device});
    return true;
}

void PortBus::unmap(u16 base, IoDevice* device)
{
    std::erase_if(m_ranges, [&](const Range& r) { return r.base == base && r.device == device; });
}

const PortBus::Range* PortBus::find(u16 port) const
{
    for (const Range& r : m_ranges)
        if (port >= r.base && port < r.base + r.count)
            return &r;
    return nullptr;
}

u64 PortBus::read(u16 port, unsigned size)
{
    ++m_accesses;
    if (const Range* r = find(port))
        return r->device->io_read(port - r->base, size);
    return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

void PortBus::write(u16 port, unsigned size, u64 value)
{
    ++m_accesses;
    if (const Range* r = find(port))
        r->device->io_write(port - r->base, size, value);
}
