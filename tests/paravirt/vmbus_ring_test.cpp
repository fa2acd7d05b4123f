// The host side of a channel's rings against a guest side written here as
// Linux's drivers/hv/ring_buffer.c does it: the guest writes packets into
// the first ring (descriptor, body padded to 8, trailer = old write index
// << 32, then write_index) and reads the second one.
#include "paravirt/vmbus/vmbus_ring.h"
#include "tests/paravirt/vmbus_guest_ring.h"

using namespace vmbus;

namespace {

constexpr u32 DATA = GuestRings::DATA;

struct Rings : GuestRings {
    std::optional<RingPair> host;
    Rings()
    {
        host = RingPair::create(memory, pfns, OUT_PAGES);
        REQUIRE(host);
    }
};

std::vector<u8> bytes(size_t n, u8 seed)
{
    std::vector<u8> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = static_cast<u8>(seed + i * 7);
    return v;
}

} // namespace

TEST_CASE("VMBus ring: packets the guest writes are read back whole, across the wrap, indices past the trailer")
{
    Rings t;
    bool signal = false;
    unsigned read = 0;
    // 150 packets of 1..300 bytes through an 8 KiB ring: it wraps many times.
    for (unsigned i = 0; i < 150; ++i) {
        const std::vector<u8> body = bytes(1 + (i * 37) % 300, static_cast<u8>(i));
        REQUIRE(t.guest_write(PACKET_DATA_INBAND, 1000 + i, body, PACKET_FLAG_COMPLETION_REQUESTED));
        std::optional<Packet> p = t.host->read(signal);
        REQUIRE(p);
        CHECK(p->type == PACKET_DATA_INBAND);
        CHECK(p->flags == PACKET_FLAG_COMPLETION_REQUESTED);
        CHECK(p->transaction_id == 1000 + i);
        CHECK(p->extra.empty());
        // The body comes padded to 8 bytes, as the guest wrote it.
        REQUIRE(p->body.size() == ((body.size() + 7) & ~size_t{7}));
        CHECK(std::equal(body.begin(), body.end(), p->body.begin()));
        CHECK(t.get(true, 4) == t.get(true, 0));
        ++read;
    }
    CHECK(read == 150);
    CHECK_FALSE(t.host->read(signal));
    CHECK_FALSE(t.host->broken());
}

TEST_CASE("VMBus ring: host packets reach the guest, and interrupt only on the empty-to-non-empty edge when unmasked")
{
    Rings t;
    bool signal = false;
    const std::vector<u8> extra(8, 0xEE);
    REQUIRE(t.host->write(PACKET_COMPLETION, 0, 7, extra, bytes(20, 1), signal));
    CHECK(signal);
    REQUIRE(t.host->write(PACKET_COMPLETION, 0, 8, {}, bytes(20, 2), signal));
    CHECK_FALSE(signal); // not empty before
    auto first = t.guest_read();
    REQUIRE(first);
    CHECK(std::get<0>(*first) == PACKET_COMPLETION);
    CHECK(std::get<1>(*first) == 7);
    CHECK(std::get<3>(*first) == 0); // trailer: the old write index (0) << 32
    CHECK(std::get<2>(*first).size() == 24);
    auto second = t.guest_read();
    REQUIRE(second);
    CHECK(std::get<1>(*second) == 8);
    CHECK(std::get<3>(*second) == u64{56} << 32); // 16 + 8 extra + 20 padded to 48, + the trailer
    // Empty again, but the guest masks: no interrupt.
    t.set(false, 8, 1);
    REQUIRE(t.host->write(PACKET_DATA_INBAND, 0, 9, {}, bytes(8, 3), signal));
    CHECK_FALSE(signal);
}

TEST_CASE("VMBus ring: a full host-to-guest ring refuses the packet and asks the guest for room")
{
    Rings t;
    bool signal = false;
    unsigned written = 0;
    while (t.host->write(PACKET_DATA_INBAND, 0, written, {}, bytes(1000, 0), signal))
        ++written;
    CHECK(written == 7); // 1024 bytes each (descriptor, body, trailer) in 8 KiB, one byte kept free
    CHECK(t.get(false, 12) == 1024);
    CHECK_FALSE(t.host->broken());
    REQUIRE(t.guest_read());
    CHECK(t.host->write(PACKET_DATA_INBAND, 0, 99, {}, bytes(1000, 0), signal));
    CHECK(t.get(false, 12) == 0);
}

TEST_CASE("VMBus ring: the guest waiting for room is signalled when a host read makes enough")
{
    Rings t;
    bool signal = false;
    for (unsigned i = 0; i < 7; ++i)
        REQUIRE(t.guest_write(PACKET_DATA_INBAND, i, bytes(1000, 0)));
    CHECK_FALSE(t.guest_write(PACKET_DATA_INBAND, 7, bytes(1000, 0)));
    t.set(true, 12, 2048); // the guest needs 2 KiB
    REQUIRE(t.host->read(signal));
    CHECK_FALSE(signal); // 1 KiB + 1 free: not yet
    REQUIRE(t.host->read(signal));
    CHECK(signal); // crossed 2 KiB
    REQUIRE(t.host->read(signal));
    CHECK_FALSE(signal); // already past it
}

TEST_CASE("VMBus ring: indices or descriptors the guest corrupts break the ring, never the host")
{
    struct Case {
        const char* what;
        u32 write_index, read_index;
        u16 offset8, length8;
    };
    for (const Case c : {Case{"write index past the data", DATA, 0, 2, 4}, Case{"unaligned write index", 36, 0, 2, 4},
                         Case{"read index past the data", 32, DATA + 8, 2, 4},
                         Case{"body offset inside the descriptor", 32, 0, 1, 3},
                         Case{"offset past the length", 32, 0, 5, 3},
                         Case{"length past what was written", 32, 0, 2, 60},
                         Case{"too short for a descriptor and trailer", 16, 0, 2, 2}}) {
        INFO(c.what);
        Rings t;
        u8 d[16] = {};
        std::memcpy(d + 2, &c.offset8, 2);
        std::memcpy(d + 4, &c.length8, 2);
        t.ring_copy(true, 0, d, 16, true);
        t.set(true, 0, c.write_index);
        t.set(true, 4, c.read_index);
        bool signal = false;
        CHECK_FALSE(t.host->read(signal));
        CHECK(t.host->broken());
        CHECK_FALSE(t.host->write(PACKET_DATA_INBAND, 0, 0, {}, bytes(8, 0), signal));
    }
}

TEST_CASE("VMBus ring: a ring whose pages are not RAM, or a split without data pages, is refused")
{
    PhysicalMemory ram{16ull << 20};
    GuestMemory memory{ram};
    std::vector<u64> pfns = {0x100, 0x101, 0x102, 0x103};
    CHECK_FALSE(RingPair::create(memory, pfns, 1));
    CHECK_FALSE(RingPair::create(memory, pfns, 3));
    CHECK_FALSE(RingPair::create(memory, pfns, 9));
    pfns[1] = 0xFFFFF; // far past the end of RAM
    std::optional<RingPair> rings = RingPair::create(memory, pfns, 2);
    REQUIRE(rings);
    bool signal = false;
    u32 w = 8;
    REQUIRE(memory.write(0x100 * 4096, &w, 4));
    CHECK_FALSE(rings->read(signal));
    CHECK(rings->broken());
}

TEST_CASE("VMBus ring: GPA-direct page ranges are parsed with every count and length checked")
{
    auto put32 = [](std::vector<u8>& v, u32 x) {
        for (int i = 0; i < 4; ++i)
            v.push_back(static_cast<u8>(x >> (8 * i)));
    };
    auto put64 = [&](std::vector<u8>& v, u64 x) {
        put32(v, static_cast<u32>(x));
        put32(v, static_cast<u32>(x >> 32));
    };
    std::vector<u8> e;
    put32(e, 0);
    put32(e, 2);
    put32(e, 8192); // 8 KiB from offset 0x200: three pages
    put32(e, 0x200);
    put64(e, 0x500);
    put64(e, 0x501);
    put64(e, 0x777);
    put32(e, 100);
    put32(e, 0);
    put64(e, 0x900);
    std::optional<std::vector<GpaRange>> r = parse_gpa_ranges(e);
    REQUIRE(r);
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].pfns == std::vector<u64>{0x500, 0x501, 0x777});
    CHECK((*r)[1].byte_count == 100);
    CHECK((*r)[1].pfns == std::vector<u64>{0x900});
    std::vector<u8> short_list(e.begin(), e.end() - 8);
    CHECK_FALSE(parse_gpa_ranges(short_list));
    std::vector<u8> too_many = e;
    too_many[4] = 200;
    CHECK_FALSE(parse_gpa_ranges(too_many));
    std::vector<u8> bad_offset = e;
    bad_offset[12] = 0x00;
    bad_offset[13] = 0x10; // byte_offset 4096
    CHECK_FALSE(parse_gpa_ranges(bad_offset));
    CHECK_FALSE(parse_gpa_ranges(std::vector<u8>(4)));
}
