// The guest's side of a VMBus channel for the fuzz targets of VMBus devices
// (vmbus_channel_fuzz.cpp, netvsp_fuzz.cpp): Linux's ring writer, the open
// request for a ring GPADL, and the save/load/save check.
#pragma once

#include "mmu/base/state_visitor.h"
#include "paravirt/vmbus/vmbus_server.h"

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <vector>

[[noreturn]] inline void fail(const char* what)
{
    std::fprintf(stderr, "fuzz target: %s\n", what);
    std::abort();
}

// The guest's writer (Linux's hv_ringbuffer_write) on the first ring of the
// GPADL at `pfn`, its `data_pages` data pages contiguous.
inline void guest_write(GuestMemory m, u64 pfn, u32 data_pages, u16 type, u16 flags,
                        const std::vector<u8>& extra, const std::vector<u8>& body, u64 transaction_id = 0)
{
    const u64 header = pfn * PAGE_SIZE, data = header + PAGE_SIZE;
    const u32 size = data_pages * PAGE_SIZE;
    u32 w = 0, r = 0;
    if (!m.read(header, &w, 4) || !m.read(header + 4, &r, 4) || w >= size || r >= size || (w | r) % 8)
        return; // the guest broke its own ring: nothing to write
    const size_t offset = 16 + (extra.size() & ~size_t{7});
    const size_t length = (offset + body.size() + 7) & ~size_t{7};
    if (length + 8 >= size - (w + size - r) % size)
        return;
    std::vector<u8> p(length + 8);
    store_le16(p, 0, type);
    store_le16(p, 2, static_cast<u16>(offset / 8));
    store_le16(p, 4, static_cast<u16>(length / 8));
    store_le16(p, 6, flags);
    store_le64(p, 8, transaction_id);
    std::copy_n(extra.begin(), offset - 16, p.begin() + 16);
    std::copy(body.begin(), body.end(), p.begin() + static_cast<std::ptrdiff_t>(offset));
    store_le64(p, length, u64{w} << 32);
    for (size_t i = 0; i < p.size(); ++i)
        (void)m.write(data + (w + i) % size, &p[i], 1);
    const u32 next = static_cast<u32>((w + p.size()) % size);
    (void)m.write(header, &next, 4);
}

inline VmbusServer::OpenRequest ring(u64 pfn, u32 pages, u32 downstream)
{
    VmbusServer::OpenRequest r;
    for (u32 i = 0; i < pages; ++i)
        r.ring_pfns.push_back(pfn + i);
    r.downstream_offset = downstream;
    return r;
}

// Saves `device`, loads the bytes into a fresh one, saves that again and
// fails unless both saves are the same; returns the loaded device.
template <class Device>
std::unique_ptr<Device> round_trip(Device& device, const std::function<std::unique_ptr<Device>()>& fresh)
{
    StateVisitor saver = StateVisitor::saver();
    device.visit_state(saver);
    auto copy = fresh();
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    copy->visit_state(loader);
    if (!loader.ok() || !loader.at_end())
        fail("a saved state does not load");
    StateVisitor again = StateVisitor::saver();
    copy->visit_state(again);
    if (again.bytes() != saver.bytes())
        fail("save, load, save gives other bytes");
    return copy;
}

