// The guest's side of a VMBus channel's rings, written as Linux's
// drivers/hv/ring_buffer.c does it (descriptor, body padded to 8, trailer
// = old write index << 32, then write_index), for tests of the host side.
// The ring GPADL is RING_PFN.. in this order: the guest-to-host ring
// (header + 2 data pages), then the host-to-guest ring (the same); place()
// puts a further channel's rings elsewhere in another harness's memory.
#pragma once

#include "paravirt/vmbus/vmbus_ring.h"

#include <doctest/doctest.h>

#include <cstring>
#include <numeric>
#include <tuple>

struct GuestRings {
    static constexpr u64 RING_PFN = 0x100;
    static constexpr u32 OUT_PAGES = 3; // guest to host
    static constexpr u32 IN_PAGES = 3;  // host to guest
    static constexpr u32 DATA = 2 * 4096;

    PhysicalMemory ram{16ull << 20};
    GuestMemory memory{ram};
    std::vector<u64> pfns;
    u64 base = RING_PFN;

    GuestRings() { place(memory, RING_PFN); }
    void place(GuestMemory on, u64 base_pfn)
    {
        memory = on;
        base = base_pfn;
        pfns.resize(OUT_PAGES + IN_PAGES);
        std::iota(pfns.begin(), pfns.end(), base);
    }
    GuestPhys header(bool guest_out) const { return (guest_out ? base : base + OUT_PAGES) * 4096; }
    u32 get(bool guest_out, u32 offset)
    {
        u32 v = 0;
        REQUIRE(memory.read(header(guest_out) + offset, &v, 4));
        return v;
    }
    void set(bool guest_out, u32 offset, u32 v) { REQUIRE(memory.write(header(guest_out) + offset, &v, 4)); }
    void ring_copy(bool guest_out, u32 at, u8* bytes, size_t n, bool write)
    {
        const GuestPhys data = header(guest_out) + 4096; // the data pages are contiguous here
        for (size_t i = 0; i < n; ++i) {
            const GuestPhys a = data + (at + i) % DATA;
            if (write)
                REQUIRE(memory.write(a, bytes + i, 1));
            else
                REQUIRE(memory.read(a, bytes + i, 1));
        }
    }
    // hv_ringbuffer_write: false when the packet does not fit.
    bool guest_write(u16 type, u64 trans, const std::vector<u8>& body, u16 flags = 0,
                     const std::vector<u8>& extra = {})
    {
        const u32 w = get(true, 0), r = get(true, 4);
        const u32 offset = static_cast<u32>(16 + extra.size());
        const u32 length = static_cast<u32>((offset + body.size() + 7) & ~size_t{7});
        const u32 free = DATA - (w + DATA - r) % DATA;
        if (length + 8 >= free)
            return false;
        std::vector<u8> p(length + 8);
        const u16 off8 = static_cast<u16>(offset / 8), len8 = static_cast<u16>(length / 8);
        std::memcpy(p.data(), &type, 2);
        std::memcpy(p.data() + 2, &off8, 2);
        std::memcpy(p.data() + 4, &len8, 2);
        std::memcpy(p.data() + 6, &flags, 2);
        std::memcpy(p.data() + 8, &trans, 8);
        std::copy(extra.begin(), extra.end(), p.begin() + 16);
        std::copy(body.begin(), body.end(), p.begin() + offset);
        const u64 trailer = u64{w} << 32;
        std::memcpy(p.data() + length, &trailer, 8);
        ring_copy(true, w, p.data(), p.size(), true);
        set(true, 0, (w + length + 8) % DATA);
        return true;
    }
    // One packet from the guest's inbound ring: {type, transaction id, body,
    // trailer}; `extra` gets the bytes between the descriptor and the body.
    std::optional<std::tuple<u16, u64, std::vector<u8>, u64>> guest_read(std::vector<u8>* extra = nullptr)
    {
        const u32 w = get(false, 0), r = get(false, 4);
        if (w == r)
            return std::nullopt;
        u8 d[16];
        ring_copy(false, r, d, 16, false);
        u16 type, off8, len8;
        u64 trans;
        std::memcpy(&type, d, 2);
        std::memcpy(&off8, d + 2, 2);
        std::memcpy(&len8, d + 4, 2);
        std::memcpy(&trans, d + 8, 8);
        if (extra) {
            extra->resize(off8 * 8u - 16);
            ring_copy(false, r + 16, extra->data(), extra->size(), false);
        }
        std::vector<u8> body(len8 * 8u - off8 * 8u);
        ring_copy(false, r + off8 * 8u, body.data(), body.size(), false);
        u64 trailer;
        ring_copy(false, r + len8 * 8u, reinterpret_cast<u8*>(&trailer), 8, false);
        set(false, 4, (r + len8 * 8u + 8) % DATA);
        return std::make_tuple(type, trans, body, trailer);
    }
};
