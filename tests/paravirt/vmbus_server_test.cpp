// The VMBus host's channel management against the guest side's rules
// (Linux 6.1 drivers/hv: connection.c, channel.c, channel_mgmt.c): messages
// are posted as the guest posts them and read back from the SynIC message
// slot the guest would read, with EOM in between.
#include "paravirt/vmbus/vmbus_server.h"
#include "tests/paravirt/hv_harness.h"

#include <memory>
#include <vector>

using namespace vmbus;

namespace {

constexpr GuestPhys SIMP = 0x400000;
constexpr GuestPhys SIEFP = 0x401000;
constexpr unsigned VPS = 2;

struct FakeDevice : VmbusServer::Device {
    std::vector<VmbusServer::OpenRequest> opens;
    unsigned closes = 0, signals = 0;
    bool accept = true;
    bool open(const VmbusServer::OpenRequest& r) override
    {
        opens.push_back(r);
        return accept;
    }
    void close() override { ++closes; }
    void signaled() override { ++signals; }
    // Sub-channels 1 .. max_subs, each its own FakeDevice.
    unsigned max_subs = 0;
    std::vector<std::unique_ptr<FakeDevice>> subs;
    VmbusServer::Device* sub_channel(u16 index) override
    {
        if (index == 0 || index > max_subs)
            return nullptr;
        while (subs.size() < index)
            subs.push_back(std::make_unique<FakeDevice>());
        return subs[index - 1].get();
    }
};

struct VmbusHarness : HvHarness {
    VmbusServer server{hv};

    VmbusHarness() : HvHarness(config_with_vps(VPS))
    {
        hv.set_host_slot_listener([this](unsigned vp, unsigned sint) { server.slot_freed(vp, sint); });
        for (unsigned vp = 0; vp < VPS; ++vp) {
            REQUIRE(wrmsr(HV_X64_MSR_SIMP, (SIMP + vp * 0x2000) | 1, vp));
            REQUIRE(wrmsr(HV_X64_MSR_SIEFP, (SIEFP + vp * 0x2000) | 1, vp));
            REQUIRE(wrmsr(HV_X64_MSR_SCONTROL, 1, vp));
            REQUIRE(wrmsr(HV_X64_MSR_SINT0 + MESSAGE_SINT, 0xF3, vp));
        }
    }

    HvStatus post(std::vector<u8> m, u32 connection = MESSAGE_CONNECTION_ID, unsigned vp = 0)
    {
        return hv.connections().post_message(vp, connection, SYNIC_MESSAGE_TYPE, m);
    }
    // The message in VP `vp`'s SINT 2 slot, consumed as the guest does
    // (type cleared, then EOM); empty when the slot is empty.
    std::vector<u8> take(unsigned vp = 0)
    {
        const GuestPhys slot = SIMP + vp * 0x2000 + MESSAGE_SINT * HV_MESSAGE_SIZE;
        if (peek<u32>(slot) == 0)
            return {};
        CHECK(peek<u32>(slot) == SYNIC_MESSAGE_TYPE);
        std::vector<u8> m(peek<u8>(slot + 4));
        REQUIRE(memory.read_bytes(slot + 16, m.data(), m.size()));
        poke<u32>(slot, 0);
        REQUIRE(wrmsr(HV_X64_MSR_EOM, 0, vp));
        return m;
    }
    bool event_flag(unsigned vp, unsigned flag)
    {
        return peek<u8>(SIEFP + vp * 0x2000 + MESSAGE_SINT * HV_EVENT_FLAGS_BYTES + flag / 8) &
               (1u << (flag % 8));
    }
    void contact(u32 v = VERSION_MAX, unsigned target = 0)
    {
        std::vector<u8> m(initiate_contact::SIZE);
        store_le32(m, 0, INITIATE_CONTACT);
        store_le32(m, initiate_contact::VERSION, v);
        store_le32(m, initiate_contact::TARGET_VCPU, target);
        m[initiate_contact::MSG_SINT] = MESSAGE_SINT;
        REQUIRE(post(m, v >= VERSION_WIN10_V5 ? MESSAGE_CONNECTION_ID_WIN10_V5 : MESSAGE_CONNECTION_ID) ==
                HvStatus::Success);
    }
    static std::vector<u8> header(u32 type, unsigned size)
    {
        std::vector<u8> m(size);
        store_le32(m, 0, type);
        return m;
    }
    // A GPADL as Linux creates one: a header with up to 26 PFNs, then bodies
    // of up to 28; one range at offset 0.
    void create_gpadl(u32 relid, u32 handle, unsigned pages, u64 first_pfn = 0x100)
    {
        const unsigned in_header = std::min(pages, 26u);
        std::vector<u8> h = header(GPADL_HEADER, gpadl_header::SIZE + 8 + 8 * in_header);
        store_le32(h, gpadl_header::CHILD_RELID, relid);
        store_le32(h, gpadl_header::GPADL, handle);
        store_le16(h, gpadl_header::RANGE_BUFLEN, static_cast<u16>(8 + 8 * pages));
        store_le16(h, gpadl_header::RANGE_COUNT, 1);
        store_le32(h, gpadl_header::RANGES, pages * 4096);
        for (unsigned i = 0; i < in_header; ++i)
            store_le64(h, gpadl_header::RANGES + 8 + 8 * i, first_pfn + i);
        REQUIRE(post(h) == HvStatus::Success);
        for (unsigned sent = in_header; sent < pages;) {
            const unsigned n = std::min(pages - sent, 28u);
            std::vector<u8> b = header(GPADL_BODY, gpadl_body::SIZE + 8 * n);
            store_le32(b, gpadl_body::GPADL, handle);
            for (unsigned i = 0; i < n; ++i)
                store_le64(b, gpadl_body::PFNS + 8 * i, first_pfn + sent + i);
            REQUIRE(post(b) == HvStatus::Success);
            sent += n;
        }
    }
    static void store_le64(std::vector<u8>& m, unsigned at, u64 v) { std::memcpy(m.data() + at, &v, 8); }
    // CLOSE_CHANNEL, RELID_RELEASED: a message naming only a relid.
    void post_relid(u32 type, u32 relid)
    {
        std::vector<u8> m = header(type, relid_message::SIZE);
        store_le32(m, relid_message::CHILD_RELID, relid);
        REQUIRE(post(m) == HvStatus::Success);
    }
    std::vector<u8> open(u32 relid, u32 gpadl, u32 target_vp, u32 downstream)
    {
        std::vector<u8> m = header(OPEN_CHANNEL, open_channel::SIZE);
        store_le32(m, open_channel::CHILD_RELID, relid);
        store_le32(m, open_channel::OPEN_ID, relid);
        store_le32(m, open_channel::RING_GPADL, gpadl);
        store_le32(m, open_channel::TARGET_VP, target_vp);
        store_le32(m, open_channel::DOWNSTREAM_OFFSET, downstream);
        REQUIRE(post(m) == HvStatus::Success);
        return take();
    }
};

VmbusServer::Offer scsi_offer(u8 instance)
{
    VmbusServer::Offer o;
    o.type = parse_guid("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f");
    o.instance[0] = instance;
    return o;
}

} // namespace

TEST_CASE("VMBus: GUIDs are stored in the Windows byte order")
{
    const Guid g = parse_guid("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f");
    CHECK(g == Guid{0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2, 0xff,
                    0xb1, 0xdc, 0x7f});
    CHECK(parse_guid("not a guid") == Guid{});
    CHECK(parse_guid("ba6163d9-04a1-4d29-b605-72e2ffb1dcxx") == Guid{});
}

TEST_CASE("VMBus: every version Linux tries is accepted, on the connection it uses, on the VP it names")
{
    for (u32 v : SUPPORTED_VERSIONS) {
        VmbusHarness h;
        h.contact(v, 1);
        CHECK(h.take(0).empty());
        const std::vector<u8> r = h.take(1);
        REQUIRE(r.size() == version_response::SIZE);
        CHECK(load_le32(r, 0) == VERSION_RESPONSE);
        CHECK(r[version_response::SUPPORTED] == 1);
        CHECK(load_le32(r, version_response::MSG_CONN_ID) == MESSAGE_CONNECTION_ID);
        CHECK(h.server.version() == v);
    }
}

TEST_CASE("VMBus: an unknown version, a VP or connection that is wrong, is answered 'not supported'")
{
    VmbusHarness h;
    h.contact(version(6, 0));
    CHECK(h.take()[version_response::SUPPORTED] == 0);
    h.contact(version(1, 1));
    CHECK(h.take()[version_response::SUPPORTED] == 0);
    h.contact(VERSION_MAX, 7); // no VP 7: the answer goes to VP 0
    CHECK(h.take(0)[version_response::SUPPORTED] == 0);
    std::vector<u8> m = VmbusHarness::header(INITIATE_CONTACT, initiate_contact::SIZE);
    store_le32(m, initiate_contact::VERSION, VERSION_MAX);
    REQUIRE(h.post(m, MESSAGE_CONNECTION_ID) == HvStatus::Success); // 5.x belongs on connection 4
    CHECK(h.take()[version_response::SUPPORTED] == 0);
    CHECK(h.server.version() == 0);
    // Without contact, the rest is refused and unanswered.
    REQUIRE(h.post(VmbusHarness::header(REQUEST_OFFERS, HEADER_SIZE)) == HvStatus::Success);
    CHECK(h.take().empty());
    // Counted as refused: the VP, the connection, the early request (an
    // unknown version is an ordinary step of the negotiation).
    CHECK(h.server.counters().refused == 3);
}

TEST_CASE("VMBus: REQUESTOFFERS lists every channel with its relid and connection, then ALLOFFERS_DELIVERED")
{
    VmbusHarness h;
    FakeDevice a, b;
    CHECK(h.server.add_channel(scsi_offer(1), a) == 1);
    CHECK(h.server.add_channel(scsi_offer(2), b) == 2);
    h.contact();
    h.take();
    REQUIRE(h.post(VmbusHarness::header(REQUEST_OFFERS, HEADER_SIZE)) == HvStatus::Success);
    for (u32 relid : {1u, 2u}) {
        const std::vector<u8> o = h.take();
        REQUIRE(o.size() == offer::SIZE);
        CHECK(load_le32(o, 0) == OFFER_CHANNEL);
        CHECK(o[offer::IF_TYPE] == 0xd9);
        CHECK(o[offer::IF_INSTANCE] == relid);
        CHECK(load_le32(o, offer::CHILD_RELID) == relid);
        CHECK(o[offer::MONITOR_ALLOCATED] == 0);
        CHECK(load_le16(o, offer::DEDICATED_INTERRUPT) == 1);
        CHECK(load_le32(o, offer::CONNECTION_ID) == CHANNEL_CONNECTION_ID_BASE + relid);
    }
    CHECK(load_le32(h.take(), 0) == ALL_OFFERS_DELIVERED);
    CHECK(h.take().empty());
}

TEST_CASE("VMBus: more offers than the SINT queue holds wait for the guest's EOMs")
{
    VmbusHarness h;
    std::vector<FakeDevice> devices(60);
    for (unsigned i = 0; i < devices.size(); ++i)
        h.server.add_channel(scsi_offer(static_cast<u8>(i)), devices[i]);
    h.contact();
    h.take();
    REQUIRE(h.post(VmbusHarness::header(REQUEST_OFFERS, HEADER_SIZE)) == HvStatus::Success);
    for (u32 relid = 1; relid <= devices.size(); ++relid)
        CHECK(load_le32(h.take(), offer::CHILD_RELID) == relid);
    CHECK(load_le32(h.take(), 0) == ALL_OFFERS_DELIVERED);
}

TEST_CASE("VMBus: a GPADL in a header and many bodies, then an open channel signalled both ways")
{
    VmbusHarness h;
    FakeDevice d;
    const u32 relid = h.server.add_channel(scsi_offer(1), d);
    h.contact();
    h.take();
    h.create_gpadl(relid, 0xE1E10, 100);
    const std::vector<u8> created = h.take();
    REQUIRE(created.size() == gpadl_created::SIZE);
    CHECK(load_le32(created, gpadl_created::GPADL) == 0xE1E10);
    CHECK(load_le32(created, gpadl_created::STATUS) == STATUS_SUCCESS);

    const std::vector<u8> result = h.open(relid, 0xE1E10, 1, 40);
    CHECK(load_le32(result, 0) == OPEN_CHANNEL_RESULT);
    CHECK(load_le32(result, open_result::STATUS) == STATUS_SUCCESS);
    REQUIRE(d.opens.size() == 1);
    CHECK(d.opens[0].ring_pfns.size() == 100);
    CHECK(d.opens[0].ring_pfns[99] == 0x100 + 99);
    CHECK(d.opens[0].downstream_offset == 40);
    CHECK(h.server.channel_open(relid));

    // Guest to host: HvSignalEvent on the offer's connection.
    CHECK(h.hv.connections().signal_event(0, CHANNEL_CONNECTION_ID_BASE + relid, 0) == HvStatus::Success);
    CHECK(d.signals == 1);
    // Host to guest: the relid's bit in the target VP's event flags.
    CHECK(h.server.signal_guest(relid));
    CHECK(h.event_flag(1, relid));
    CHECK_FALSE(h.event_flag(0, relid));

    // The ring's GPADL stays while the channel is open.
    std::vector<u8> teardown = VmbusHarness::header(GPADL_TEARDOWN, gpadl_teardown::SIZE);
    store_le32(teardown, gpadl_teardown::CHILD_RELID, relid);
    store_le32(teardown, gpadl_teardown::GPADL, 0xE1E10);
    REQUIRE(h.post(teardown) == HvStatus::Success);
    CHECK(h.take().empty());
    std::vector<u8> close = VmbusHarness::header(CLOSE_CHANNEL, relid_message::SIZE);
    store_le32(close, relid_message::CHILD_RELID, relid);
    REQUIRE(h.post(close) == HvStatus::Success);
    CHECK(d.closes == 1);
    CHECK_FALSE(h.server.signal_guest(relid));
    REQUIRE(h.post(teardown) == HvStatus::Success);
    const std::vector<u8> torndown = h.take();
    CHECK(load_le32(torndown, 0) == GPADL_TORNDOWN);
    CHECK(load_le32(torndown, gpadl_torndown::GPADL) == 0xE1E10);
}

TEST_CASE("VMBus: impossible GPADLs and opens are refused with a failure status")
{
    VmbusHarness h;
    FakeDevice d;
    const u32 relid = h.server.add_channel(scsi_offer(1), d);
    h.contact();
    h.take();
    // Unknown relid.
    h.create_gpadl(9, 1, 4);
    CHECK(load_le32(h.take(), gpadl_created::STATUS) != STATUS_SUCCESS);
    // A range longer than its page list.
    std::vector<u8> g = VmbusHarness::header(GPADL_HEADER, gpadl_header::SIZE + 8 + 8);
    store_le32(g, gpadl_header::CHILD_RELID, relid);
    store_le32(g, gpadl_header::GPADL, 2);
    store_le16(g, gpadl_header::RANGE_BUFLEN, 16);
    store_le16(g, gpadl_header::RANGE_COUNT, 1);
    store_le32(g, gpadl_header::RANGES, 3 * 4096);
    REQUIRE(h.post(g) == HvStatus::Success);
    CHECK(load_le32(h.take(), gpadl_created::STATUS) != STATUS_SUCCESS);
    // Opens: no such GPADL; the ring split outside the ring; no such VP;
    // then the device itself refusing.
    h.create_gpadl(relid, 3, 8);
    CHECK(load_le32(h.take(), gpadl_created::STATUS) == STATUS_SUCCESS);
    CHECK(load_le32(h.open(relid, 77, 0, 4), open_result::STATUS) != STATUS_SUCCESS);
    CHECK(load_le32(h.open(relid, 3, 0, 8), open_result::STATUS) != STATUS_SUCCESS);
    CHECK(load_le32(h.open(relid, 3, 0, 0), open_result::STATUS) != STATUS_SUCCESS);
    CHECK(load_le32(h.open(relid, 3, 5, 4), open_result::STATUS) != STATUS_SUCCESS);
    CHECK(load_le32(h.open(99, 3, 0, 4), open_result::STATUS) != STATUS_SUCCESS);
    d.accept = false;
    CHECK(load_le32(h.open(relid, 3, 0, 4), open_result::STATUS) != STATUS_SUCCESS);
    CHECK_FALSE(h.server.channel_open(relid));
    // Messages too short for their type, or of no known type: dropped.
    REQUIRE(h.post(VmbusHarness::header(OPEN_CHANNEL, 20)) == HvStatus::Success);
    REQUIRE(h.post(VmbusHarness::header(200, 40)) == HvStatus::Success);
    REQUIRE(h.post(std::vector<u8>(4)) == HvStatus::Success);
    CHECK(h.take().empty());
}

TEST_CASE("VMBus: UNLOAD closes every channel, answers, and a new contact starts over")
{
    VmbusHarness h;
    FakeDevice d;
    const u32 relid = h.server.add_channel(scsi_offer(1), d);
    h.contact();
    h.take();
    h.create_gpadl(relid, 5, 4);
    h.take();
    CHECK(load_le32(h.open(relid, 5, 0, 2), open_result::STATUS) == STATUS_SUCCESS);
    REQUIRE(h.post(VmbusHarness::header(UNLOAD, HEADER_SIZE)) == HvStatus::Success);
    CHECK(load_le32(h.take(), 0) == UNLOAD_RESPONSE);
    CHECK(d.closes == 1);
    CHECK(h.server.version() == 0);
    h.contact(version(4, 0));
    CHECK(h.take()[version_response::SUPPORTED] == 1);
    // The GPADL went with the old connection.
    CHECK(load_le32(h.open(relid, 5, 0, 2), open_result::STATUS) != STATUS_SUCCESS);
}

TEST_CASE("VMBus: the protocol state survives a save and load")
{
    VmbusHarness a;
    FakeDevice da;
    const u32 relid = a.server.add_channel(scsi_offer(1), da);
    a.contact(version(5, 2), 1);
    a.take(1);
    a.create_gpadl(relid, 8, 30);
    StateVisitor saver = StateVisitor::saver();
    a.server.visit_state(saver);

    VmbusHarness b;
    FakeDevice db;
    b.server.add_channel(scsi_offer(1), db);
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    b.server.visit_state(loader);
    REQUIRE(loader.ok());
    CHECK(loader.at_end());
    CHECK(b.server.version() == version(5, 2));
    // The GPADL_CREATED message was still queued in a's SynIC (VP 1); the
    // GPADL itself moved: an open on b finds it (answered on VP 1).
    std::vector<u8> m = VmbusHarness::header(OPEN_CHANNEL, open_channel::SIZE);
    store_le32(m, open_channel::CHILD_RELID, relid);
    store_le32(m, open_channel::RING_GPADL, 8);
    store_le32(m, open_channel::DOWNSTREAM_OFFSET, 10);
    REQUIRE(b.post(m) == HvStatus::Success);
    CHECK(load_le32(b.take(1), open_result::STATUS) == STATUS_SUCCESS);

    // A machine with another number of channels refuses the state.
    VmbusHarness c;
    StateVisitor bad = StateVisitor::loader(saver.bytes());
    c.server.visit_state(bad);
    CHECK_FALSE(bad.ok());
}

TEST_CASE("VMBus: a guest that never reads its answers is told to retry, and UNLOAD still gets through")
{
    VmbusHarness h;
    FakeDevice d;
    h.server.add_channel(scsi_offer(1), d);
    h.contact();
    // Every GPADL_TEARDOWN is answered; the guest reads none of the answers.
    std::vector<u8> teardown = VmbusHarness::header(GPADL_TEARDOWN, gpadl_teardown::SIZE);
    store_le32(teardown, gpadl_teardown::GPADL, 0x1234);
    unsigned accepted = 0;
    while (accepted < 20000 && h.post(teardown) == HvStatus::Success)
        ++accepted;
    // The host's outbox stops growing (HV_STATUS_INSUFFICIENT_BUFFERS, which
    // Linux's vmbus_post_msg retries) long before a snapshot could not hold it.
    CHECK(accepted < 1000);
    StateVisitor saver = StateVisitor::saver();
    h.server.visit_state(saver);
    VmbusHarness fresh;
    FakeDevice fresh_device;
    fresh.server.add_channel(scsi_offer(1), fresh_device);
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    fresh.server.visit_state(loader);
    CHECK(loader.ok());
    // Reading one answer makes room for one more request.
    CHECK(load_le32(h.take(), 0) == VERSION_RESPONSE);
    CHECK(h.post(teardown) == HvStatus::Success);
    CHECK(h.post(teardown) == HvStatus::InsufficientBuffers);
    // UNLOAD (a panicking or kexec'ing guest) empties the outbox and is
    // answered behind what the SynIC already holds.
    REQUIRE(h.post(VmbusHarness::header(UNLOAD, HEADER_SIZE)) == HvStatus::Success);
    unsigned reads = 0;
    std::vector<u8> m;
    do
        m = h.take();
    while (++reads < 40 && !m.empty() && load_le32(m, 0) != UNLOAD_RESPONSE);
    CHECK(load_le32(m, 0) == UNLOAD_RESPONSE);
    CHECK(reads <= Synic::QUEUE_DEPTH + 2);
}

TEST_CASE("VMBus: a guest cannot make the host keep more than 2048 GPADLs")
{
    VmbusHarness h;
    FakeDevice d;
    const u32 relid = h.server.add_channel(scsi_offer(1), d);
    h.contact();
    h.take();
    for (u32 handle = 1; handle <= 2048; ++handle) {
        h.create_gpadl(relid, handle, 1);
        REQUIRE(load_le32(h.take(), gpadl_created::STATUS) == STATUS_SUCCESS);
    }
    h.create_gpadl(relid, 5000, 1);
    CHECK(load_le32(h.take(), gpadl_created::STATUS) != STATUS_SUCCESS);
}

TEST_CASE("VMBus: a saved state with an open channel whose ring is missing does not load")
{
    VmbusHarness a;
    FakeDevice da;
    const u32 relid = a.server.add_channel(scsi_offer(1), da);
    a.contact();
    a.take();
    a.create_gpadl(relid, 8, 4);
    a.take();
    REQUIRE(load_le32(a.open(relid, 8, 0, 2), open_result::STATUS) == STATUS_SUCCESS);
    StateVisitor saver = StateVisitor::saver();
    a.server.visit_state(saver);
    // Damage the ring GPADL handle the channel names (its 4 bytes after the
    // channel's state, primary relid, sub-channel index and target VP): 8
    // becomes 9, which does not exist.
    std::vector<u8> bytes = saver.bytes();
    bool damaged = false;
    for (size_t i = 0; i + 4 <= bytes.size() && !damaged; ++i)
        if (bytes[i] == 8 && bytes[i + 1] == 0 && bytes[i + 2] == 0 && bytes[i + 3] == 0 && i >= 11 &&
            bytes[i - 11] == 1 /* Open */) {
            bytes[i] = 9;
            damaged = true;
        }
    REQUIRE(damaged);
    VmbusHarness b;
    FakeDevice db;
    b.server.add_channel(scsi_offer(1), db);
    StateVisitor loader = StateVisitor::loader(bytes);
    b.server.visit_state(loader);
    CHECK_FALSE(loader.ok());
}

namespace {

// A contacted harness with `primary`'s channel offered and opened on its
// ring GPADL 1 (pages 0x100..0x103), with the offers read.
u32 open_primary(VmbusHarness& h, FakeDevice& primary)
{
    const u32 relid = h.server.add_channel(scsi_offer(1), primary);
    h.contact();
    h.take();
    REQUIRE(h.post(VmbusHarness::header(REQUEST_OFFERS, HEADER_SIZE)) == HvStatus::Success);
    h.take();
    h.take(); // ALLOFFERS_DELIVERED
    h.create_gpadl(relid, 1, 4);
    h.take();
    REQUIRE(load_le32(h.open(relid, 1, 0, 2), open_result::STATUS) == STATUS_SUCCESS);
    return relid;
}

// Sub-channels 1 and 2 of the open `primary` offered (the offers read), and
// the second opened on GPADL 2 (pages 0x200..) with target VP `vp`.
std::vector<u32> open_second_sub_channel(VmbusHarness& h, u32 primary, u32 vp)
{
    REQUIRE(h.server.offer_sub_channels(primary, 2));
    h.take();
    h.take();
    const std::vector<u32> subs = h.server.sub_channels(primary);
    REQUIRE(subs.size() == 2);
    h.create_gpadl(subs[1], 2, 4, 0x200);
    h.take();
    REQUIRE(load_le32(h.open(subs[1], 2, vp, 2), open_result::STATUS) == STATUS_SUCCESS);
    return subs;
}

} // namespace

TEST_CASE("VMBus: sub-channels are offered with the primary's GUIDs, numbered, each with its own relid")
{
    VmbusHarness h;
    FakeDevice primary;
    primary.max_subs = 3;
    const u32 relid = open_primary(h, primary);
    REQUIRE(h.server.offer_sub_channels(relid, 2));
    const std::vector<u32> subs = h.server.sub_channels(relid);
    REQUIRE(subs.size() == 2);
    for (u16 index = 1; index <= 2; ++index) {
        const std::vector<u8> o = h.take();
        REQUIRE(o.size() == offer::SIZE);
        CHECK(load_le32(o, 0) == OFFER_CHANNEL);
        CHECK(o[offer::IF_TYPE] == 0xd9);
        CHECK(o[offer::IF_INSTANCE] == 1); // the primary's instance: Linux matches them by it
        CHECK(load_le16(o, offer::SUB_CHANNEL_INDEX) == index);
        CHECK(load_le32(o, offer::CHILD_RELID) == subs[index - 1]);
        CHECK(subs[index - 1] != relid);
    }
    // Asked again for 3: only the missing one is offered.
    REQUIRE(h.server.offer_sub_channels(relid, 3));
    CHECK(load_le16(h.take(), offer::SUB_CHANNEL_INDEX) == 3);
    CHECK(h.take().empty());
    // More than the device serves: nothing offered.
    CHECK_FALSE(h.server.offer_sub_channels(relid, 4));
    CHECK(h.take().empty());
    // A sub-channel opens on its own ring and VP, and its signals reach its own device.
    h.create_gpadl(subs[0], 2, 4, 0x200);
    h.take();
    REQUIRE(load_le32(h.open(subs[0], 2, 1, 2), open_result::STATUS) == STATUS_SUCCESS);
    REQUIRE(primary.subs[0]->opens.size() == 1);
    CHECK(primary.subs[0]->opens[0].relid == subs[0]);
    REQUIRE(h.hv.connections().signal_event(1, CHANNEL_CONNECTION_ID_BASE + subs[0], 0) == HvStatus::Success);
    CHECK(primary.subs[0]->signals == 1);
    CHECK(primary.signals == 0);
    CHECK(h.server.signal_guest(subs[0]));
    CHECK(h.event_flag(1, subs[0]));
    CHECK_FALSE(h.event_flag(0, subs[0]));
}

TEST_CASE("VMBus: no sub-channels for a closed primary or a device without them")
{
    VmbusHarness h;
    FakeDevice primary; // max_subs 0
    const u32 relid = open_primary(h, primary);
    CHECK_FALSE(h.server.offer_sub_channels(relid, 1));
    FakeDevice other;
    other.max_subs = 2;
    const u32 closed = h.server.add_channel(scsi_offer(2), other);
    h.take(); // its offer
    CHECK_FALSE(h.server.offer_sub_channels(closed, 1));
    CHECK_FALSE(h.server.offer_sub_channels(999, 1));
    CHECK(h.take().empty());
}

TEST_CASE("VMBus: closing the primary closes and rescinds its sub-channels; a relid is reused only once released")
{
    VmbusHarness h;
    FakeDevice primary;
    primary.max_subs = 2;
    const u32 relid = open_primary(h, primary);
    const std::vector<u32> subs = open_second_sub_channel(h, relid, 0);
    h.post_relid(CLOSE_CHANNEL, relid);
    CHECK(primary.closes == 1);
    CHECK(primary.subs[1]->closes == 1);
    CHECK(primary.subs[0]->closes == 0); // never opened
    for (u32 sub : subs) {
        const std::vector<u8> r = h.take();
        REQUIRE(r.size() == relid_message::SIZE);
        CHECK(load_le32(r, 0) == RESCIND_CHANNEL_OFFER);
        CHECK(load_le32(r, relid_message::CHILD_RELID) == sub);
    }
    CHECK(h.server.sub_channels(relid).empty());
    // Signals to a rescinded relid are refused; Linux's late CLOSE is quietly taken.
    CHECK(h.hv.connections().signal_event(0, CHANNEL_CONNECTION_ID_BASE + subs[1], 0) != HvStatus::Success);
    const u64 refused = h.server.counters().refused;
    h.post_relid(CLOSE_CHANNEL, subs[1]);
    CHECK(h.server.counters().refused == refused);

    // Reopened, the primary asks again: the released relid is taken again,
    // the one not yet released is not.
    h.create_gpadl(relid, 3, 4, 0x300);
    h.take();
    REQUIRE(load_le32(h.open(relid, 3, 0, 2), open_result::STATUS) == STATUS_SUCCESS);
    h.post_relid(RELID_RELEASED, subs[0]);
    REQUIRE(h.server.offer_sub_channels(relid, 2));
    h.take();
    h.take();
    const std::vector<u32> again = h.server.sub_channels(relid);
    REQUIRE(again.size() == 2);
    CHECK(again[0] == subs[0]);
    CHECK(again[1] != subs[1]);
    // The reused relid starts closed and opens on a ring of its own.
    CHECK_FALSE(h.server.channel_open(again[0]));
    h.create_gpadl(again[0], 4, 4, 0x400);
    CHECK(load_le32(h.take(), gpadl_created::STATUS) == STATUS_SUCCESS);
    CHECK(load_le32(h.open(again[0], 4, 0, 2), open_result::STATUS) == STATUS_SUCCESS);
    // The relid still not released keeps its GPADL (handle 2) until then:
    // a new one under that handle is refused (and, the handle being in use,
    // not answered).
    const u64 before = h.server.counters().refused;
    h.create_gpadl(again[1], 2, 4, 0x500);
    CHECK(h.take().empty());
    CHECK(h.server.counters().refused == before + 1);
}

TEST_CASE("VMBus: UNLOAD forgets sub-channels without rescinding them")
{
    VmbusHarness h;
    FakeDevice primary;
    primary.max_subs = 1;
    const u32 relid = open_primary(h, primary);
    REQUIRE(h.server.offer_sub_channels(relid, 1));
    h.take();
    REQUIRE(h.post(VmbusHarness::header(UNLOAD, HEADER_SIZE)) == HvStatus::Success);
    CHECK(load_le32(h.take(), 0) == UNLOAD_RESPONSE);
    CHECK(h.take().empty());
    CHECK(h.server.sub_channels(relid).empty());
    CHECK(primary.closes == 1);
    // A new connection offers the primary alone.
    h.contact();
    h.take();
    REQUIRE(h.post(VmbusHarness::header(REQUEST_OFFERS, HEADER_SIZE)) == HvStatus::Success);
    CHECK(load_le32(h.take(), offer::CHILD_RELID) == relid);
    CHECK(load_le32(h.take(), 0) == ALL_OFFERS_DELIVERED);
}

TEST_CASE("VMBus: an open sub-channel is saved and loaded, served by the primary device's sub-channel")
{
    VmbusHarness a;
    FakeDevice pa;
    pa.max_subs = 2;
    const u32 relid = open_primary(a, pa);
    const std::vector<u32> subs = open_second_sub_channel(a, relid, 1);
    StateVisitor saver = StateVisitor::saver();
    a.server.visit_state(saver);

    VmbusHarness b;
    FakeDevice pb;
    pb.max_subs = 2;
    REQUIRE(b.server.add_channel(scsi_offer(1), pb) == relid);
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    b.server.visit_state(loader);
    REQUIRE(loader.ok());
    CHECK(b.server.sub_channels(relid) == subs);
    CHECK(b.server.channel_open(subs[1]));
    CHECK_FALSE(b.server.channel_open(subs[0]));
    REQUIRE(b.hv.connections().signal_event(1, CHANNEL_CONNECTION_ID_BASE + subs[1], 0) == HvStatus::Success);
    REQUIRE(pb.subs.size() == 2);
    CHECK(pb.subs[1]->signals == 1);

    // A machine whose device serves fewer sub-channels refuses the state.
    VmbusHarness c;
    FakeDevice pc;
    pc.max_subs = 1;
    c.server.add_channel(scsi_offer(1), pc);
    StateVisitor refused = StateVisitor::loader(saver.bytes());
    c.server.visit_state(refused);
    CHECK_FALSE(refused.ok());
}

TEST_CASE("VMBus: a state saved while rescinded sub-channels wait for their release loads, and they are released after")
{
    // Found by vmbus-fuzz: the load took a rescinded sub-channel of a
    // closed primary for a live one and refused the state.
    VmbusHarness a;
    FakeDevice pa;
    pa.max_subs = 2;
    const u32 relid = open_primary(a, pa);
    const std::vector<u32> subs = open_second_sub_channel(a, relid, 0);
    a.post_relid(CLOSE_CHANNEL, relid);
    StateVisitor saver = StateVisitor::saver();
    a.server.visit_state(saver);

    VmbusHarness b;
    FakeDevice pb;
    pb.max_subs = 2;
    REQUIRE(b.server.add_channel(scsi_offer(1), pb) == relid);
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    b.server.visit_state(loader);
    REQUIRE(loader.ok());
    CHECK(b.server.sub_channels(relid).empty());
    const u64 refused = b.server.counters().refused;
    for (u32 sub : subs)
        b.post_relid(RELID_RELEASED, sub);
    CHECK(b.server.counters().refused == refused); // both were waiting for it
}

TEST_CASE("VMBus: a device removed at run time is closed and rescinded, sub-channels first, and its relid waits for the release")
{
    VmbusHarness h;
    FakeDevice other, primary;
    primary.max_subs = 2;
    const u32 first = h.server.add_channel(scsi_offer(2), other);
    const u32 relid = open_primary(h, primary);
    h.take(); // the first device's offer came before the primary's
    const std::vector<u32> subs = open_second_sub_channel(h, relid, 1);
    h.create_gpadl(relid, 7, 2, 0x700); // a device buffer beside the ring
    h.take();

    CHECK_FALSE(h.server.remove_channel(subs[0])); // a sub-channel is not a device
    CHECK_FALSE(h.server.remove_channel(99));
    REQUIRE(h.server.remove_channel(relid));
    CHECK(primary.closes == 1);
    CHECK(primary.subs[1]->closes == 1);
    CHECK_FALSE(h.server.channel_open(relid));
    std::vector<u32> rescinded;
    for (std::vector<u8> r = h.take(); !r.empty(); r = h.take()) {
        REQUIRE(load_le32(r, 0) == RESCIND_CHANNEL_OFFER);
        rescinded.push_back(load_le32(r, relid_message::CHILD_RELID));
    }
    CHECK(rescinded == std::vector<u32>{subs[0], subs[1], relid});
    CHECK_FALSE(h.server.remove_channel(relid)); // once
    // The device hears nothing more: signals refused, the guest's late
    // CLOSE taken quietly, its buffer no longer the device's.
    const unsigned signals = primary.signals;
    CHECK(h.hv.connections().signal_event(0, CHANNEL_CONNECTION_ID_BASE + relid, 0) != HvStatus::Success);
    CHECK(primary.signals == signals);
    const u64 refused = h.server.counters().refused;
    h.post_relid(CLOSE_CHANNEL, relid);
    h.post_relid(CLOSE_CHANNEL, subs[1]);
    CHECK(h.server.counters().refused == refused);
    CHECK(h.take().empty());
    // Nothing can be opened or made on the rescinded relid.
    h.create_gpadl(relid, 8, 2, 0x800);
    CHECK(load_le32(h.take(), gpadl_created::STATUS) != STATUS_SUCCESS);
    const u64 settled = h.server.counters().refused;

    // A device added before the release gets another relid; after it, the
    // released one, offered at once, without the old buffers.
    FakeDevice next;
    const u32 before_release = h.server.add_channel(scsi_offer(3), next);
    CHECK(before_release != relid);
    CHECK(before_release != subs[0]);
    CHECK(before_release != subs[1]);
    CHECK(load_le32(h.take(), offer::CHILD_RELID) == before_release);
    for (u32 r : {subs[0], subs[1], relid})
        h.post_relid(RELID_RELEASED, r);
    CHECK(h.server.counters().refused == settled); // each was waiting for its release
    FakeDevice last;
    const u32 reused = h.server.add_channel(scsi_offer(4), last);
    CHECK(reused == std::min({relid, subs[0], subs[1]}));
    CHECK(load_le32(h.take(), offer::CHILD_RELID) == reused);
    CHECK(h.server.gpadl_pages(relid, 7) == nullptr);
    CHECK(h.server.remove_channel(first));
    CHECK(load_le32(h.take(), relid_message::CHILD_RELID) == first);
}

TEST_CASE("VMBus: a device removed before the guest asked for offers is forgotten without a word")
{
    VmbusHarness h;
    FakeDevice a, b;
    const u32 relid = h.server.add_channel(scsi_offer(1), a);
    REQUIRE(h.server.remove_channel(relid));
    CHECK(h.take().empty());
    CHECK(h.server.add_channel(scsi_offer(2), b) == relid);
    h.contact();
    h.take();
    REQUIRE(h.post(VmbusHarness::header(REQUEST_OFFERS, HEADER_SIZE)) == HvStatus::Success);
    const std::vector<u8> offer_message = h.take();
    CHECK(load_le32(offer_message, offer::CHILD_RELID) == relid);
    CHECK(offer_message[offer::IF_INSTANCE] == 2);
    CHECK(load_le32(h.take(), 0) == ALL_OFFERS_DELIVERED);
}

TEST_CASE("VMBus: a state saved while a removed device waits for its release loads on a machine without that device")
{
    VmbusHarness a;
    FakeDevice kept, removed;
    removed.max_subs = 2;
    const u32 kept_relid = a.server.add_channel(scsi_offer(1), kept);
    const u32 relid = a.server.add_channel(scsi_offer(2), removed);
    a.contact();
    a.take();
    REQUIRE(a.post(VmbusHarness::header(REQUEST_OFFERS, HEADER_SIZE)) == HvStatus::Success);
    while (!a.take().empty()) {}
    a.create_gpadl(relid, 1, 4);
    a.take();
    REQUIRE(load_le32(a.open(relid, 1, 0, 2), open_result::STATUS) == STATUS_SUCCESS);
    REQUIRE(a.server.remove_channel(relid));
    StateVisitor saver = StateVisitor::saver();
    a.server.visit_state(saver);

    VmbusHarness b;
    FakeDevice kept_b;
    REQUIRE(b.server.add_channel(scsi_offer(1), kept_b) == kept_relid);
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    b.server.visit_state(loader);
    REQUIRE(loader.ok());
    const u64 refused = b.server.counters().refused;
    b.post_relid(RELID_RELEASED, relid);
    CHECK(b.server.counters().refused == refused);
    // A machine that still has a device at the relid refuses the state.
    VmbusHarness c;
    FakeDevice c1, c2;
    c.server.add_channel(scsi_offer(1), c1);
    c.server.add_channel(scsi_offer(2), c2);
    StateVisitor refused_loader = StateVisitor::loader(saver.bytes());
    c.server.visit_state(refused_loader);
    CHECK_FALSE(refused_loader.ok());
}
