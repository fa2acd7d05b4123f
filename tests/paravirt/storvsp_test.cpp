// storvsp against the guest side of Linux's hv_storvsc (drivers/scsi/
// storvsc_drv.c): the initialization handshake, SRBs with GPA-direct data
// both ways, errors with sense, the scan of absent targets, a full ring,
// and completions that arrive after the channel closed.
#include "paravirt/vmbus/storvsp.h"
#include "tests/paravirt/vmbus_guest_ring.h"

#include <map>

using namespace vmbus;

namespace {

constexpr u64 DATA_PFN = 0x300; // where the guest's I/O buffers are
constexpr u64 INIT_TRANSACTION = ~0ull - 2; // Linux's VMBUS_RQST_INIT

// 64 sectors in host memory; INQUIRY, READ(10), WRITE(10); completions at
// once or held until release().
struct FakeDisk : ScsiTarget {
    std::vector<u8> sectors = std::vector<u8>(64 * 512);
    bool hold = false;
    std::vector<std::pair<Result, Done>> held;
    std::vector<u8> last_luns;

    void execute(const Command& c, Done done) override
    {
        last_luns.push_back(c.lun);
        Result r;
        const u8 op = c.cdb[0];
        if (c.lun != 0 && op == 0x12) {
            r.transferred = static_cast<u32>(std::min<size_t>(c.data.size(), 36));
            std::fill_n(c.data.begin(), r.transferred, 0);
            c.data[0] = 0x7F; // no device here
        } else if (c.lun == 0 && (op == 0x28 || op == 0x2A)) {
            const u32 lba = (u32{c.cdb[2]} << 24) | (c.cdb[3] << 16) | (c.cdb[4] << 8) | c.cdb[5];
            const u32 bytes = ((c.cdb[7] << 8) | c.cdb[8]) * 512u;
            if (u64{lba} * 512 + bytes > sectors.size() || bytes > c.data.size()) {
                r.status = 2;
                r.sense = {0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0x00};
            } else if (op == 0x28) {
                std::copy_n(sectors.begin() + lba * 512, bytes, c.data.begin());
                r.transferred = bytes;
            } else {
                std::copy_n(c.data.begin(), bytes, sectors.begin() + lba * 512);
                r.transferred = bytes;
            }
        } else {
            r.status = 2;
            r.sense = {0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0x00};
        }
        if (hold)
            held.emplace_back(r, std::move(done));
        else
            done(r);
    }
    void release()
    {
        auto h = std::move(held);
        held.clear();
        for (auto& [r, done] : h)
            done(r);
    }
};

struct Harness : GuestRings {
    FakeDisk disk;
    unsigned interrupts = 0;
    std::map<u32, unsigned> interrupts_by_relid;
    std::vector<std::pair<u32, u16>> offered; // the server's offer_sub_channels calls
    u16 max_subs;
    Storvsp::Links links{[this](u32 relid) {
                             ++interrupts;
                             ++interrupts_by_relid[relid];
                         },
                         [this](u32 primary, u16 count) {
                             offered.emplace_back(primary, count);
                             return true;
                         }};
    Storvsp vsp{memory, disk, links, max_subs};

    explicit Harness(u16 max_sub_channels = 0) : max_subs(max_sub_channels)
    {
        VmbusServer::OpenRequest open;
        open.relid = 1;
        open.ring_pfns = pfns;
        open.downstream_offset = OUT_PAGES;
        REQUIRE(vsp.open(open));
    }
    static std::vector<u8> packet(u32 operation, size_t size = vstor::PACKET_SIZE)
    {
        std::vector<u8> p(size);
        std::memcpy(p.data(), &operation, 4);
        return p;
    }
    // Posts one request and returns the completion's body.
    std::vector<u8> request(const std::vector<u8>& body, u64 trans = INIT_TRANSACTION,
                            const std::vector<u8>& extra = {})
    {
        REQUIRE(guest_write(extra.empty() ? PACKET_DATA_INBAND : PACKET_DATA_USING_GPA_DIRECT, trans, body,
                            PACKET_FLAG_COMPLETION_REQUESTED, extra));
        vsp.signaled();
        auto c = guest_read();
        REQUIRE(c);
        CHECK(std::get<0>(*c) == PACKET_COMPLETION);
        CHECK(std::get<1>(*c) == trans);
        return std::get<2>(*c);
    }
    void initialize(u16 version = vstor::VERSION_WIN10)
    {
        CHECK(load_le32(request(packet(vstor::BEGIN_INITIALIZATION)), vstor::STATUS) == 0);
        std::vector<u8> v = packet(vstor::QUERY_PROTOCOL_VERSION);
        std::memcpy(v.data() + vstor::VERSION, &version, 2);
        CHECK(load_le32(request(v), vstor::STATUS) == 0);
        request(packet(vstor::QUERY_PROPERTIES));
        CHECK(load_le32(request(packet(vstor::END_INITIALIZATION)), vstor::STATUS) == 0);
    }
    // An SRB for READ(10)/WRITE(10) of `sectors` at `lba`, data at DATA_PFN.
    static std::vector<u8> srb(u8 op, u32 lba, u16 sectors, u8 lun = 0, u8 target = 0)
    {
        std::vector<u8> p = packet(vstor::EXECUTE_SRB);
        p[vstor::SRB_TARGET] = target;
        p[vstor::SRB_LUN] = lun;
        p[vstor::SRB_CDB_LENGTH] = 10;
        p[vstor::SRB_SENSE_LENGTH] = 20;
        p[vstor::SRB_DATA_IN] = op == 0x2A ? vstor::DATA_WRITE : vstor::DATA_READ;
        const u32 length = sectors * 512u;
        std::memcpy(p.data() + vstor::SRB_TRANSFER_LENGTH, &length, 4);
        const u8 cdb[10] = {op, 0, static_cast<u8>(lba >> 24), static_cast<u8>(lba >> 16), static_cast<u8>(lba >> 8),
                            static_cast<u8>(lba), 0, static_cast<u8>(sectors >> 8), static_cast<u8>(sectors), 0};
        std::copy(cdb, cdb + 10, p.begin() + vstor::SRB_CDB);
        return p;
    }
    // One GPA-direct range of `bytes` from `offset` into DATA_PFN...
    static std::vector<u8> range(u32 bytes, u32 offset = 0)
    {
        std::vector<u8> e(8);
        const u32 count = 1;
        std::memcpy(e.data() + 4, &count, 4);
        e.resize(16);
        std::memcpy(e.data() + 8, &bytes, 4);
        std::memcpy(e.data() + 12, &offset, 4);
        const u64 pages = (offset + bytes + 4095) / 4096;
        for (u64 i = 0; i < pages; ++i) {
            const u64 pfn = DATA_PFN + i * 3; // scattered pages
            e.resize(e.size() + 8);
            std::memcpy(e.data() + e.size() - 8, &pfn, 8);
        }
        return e;
    }
    GuestPhys data_address(u32 byte, u32 offset = 0)
    {
        const u32 at = offset + byte;
        return (DATA_PFN + (at / 4096) * 3) * 4096 + at % 4096;
    }
};

} // namespace

TEST_CASE("storvsp: the initialization handshake as Linux runs it, with the version it asks for")
{
    Harness h;
    CHECK(load_le32(h.request(Harness::packet(vstor::BEGIN_INITIALIZATION)), vstor::OPERATION) ==
          vstor::COMPLETE_IO);
    // Linux tries 6.2, then 6.0, then 5.1; older ones are refused.
    std::vector<u8> v = Harness::packet(vstor::QUERY_PROTOCOL_VERSION);
    const u16 old = 0x0402;
    std::memcpy(v.data() + vstor::VERSION, &old, 2);
    CHECK(load_le32(h.request(v), vstor::STATUS) == vstor::STATUS_REVISION_MISMATCH);
    const u16 win10 = vstor::VERSION_WIN10;
    std::memcpy(v.data() + vstor::VERSION, &win10, 2);
    CHECK(load_le32(h.request(v), vstor::STATUS) == 0);
    CHECK(h.vsp.protocol_version() == vstor::VERSION_WIN10);
    const std::vector<u8> props = h.request(Harness::packet(vstor::QUERY_PROPERTIES));
    REQUIRE(props.size() == vstor::PACKET_SIZE);
    CHECK(load_le32(props, vstor::PROPERTIES_MAX_TRANSFER) == Storvsp::MAX_TRANSFER);
    CHECK(load_le32(props, vstor::PROPERTIES_FLAGS) == 0); // no multi-channel
    CHECK(load_le32(h.request(Harness::packet(vstor::CREATE_SUB_CHANNELS)), vstor::STATUS) != 0);
    CHECK(load_le32(h.request(Harness::packet(vstor::END_INITIALIZATION)), vstor::STATUS) == 0);
    // Pre-Windows 8 packets are 48 bytes, and so are their completions.
    CHECK(h.request(Harness::packet(vstor::BEGIN_INITIALIZATION, vstor::PACKET_SIZE_PRE_WIN8)).size() ==
          vstor::PACKET_SIZE_PRE_WIN8);
    CHECK(h.interrupts > 0);
}

TEST_CASE("storvsp: SRBs write and read through scattered guest pages at any offset")
{
    Harness h;
    h.initialize();
    std::vector<u8> pattern(4 * 512);
    for (size_t i = 0; i < pattern.size(); ++i)
        pattern[i] = static_cast<u8>(i * 13 + 1);
    for (size_t i = 0; i < pattern.size(); ++i)
        REQUIRE(h.memory.write(h.data_address(static_cast<u32>(i), 0x300), &pattern[i], 1));
    const std::vector<u8> w = h.request(Harness::srb(0x2A, 8, 4), 1, Harness::range(2048, 0x300));
    CHECK(w[vstor::SRB_STATUS] == vstor::SRB_SUCCESS);
    CHECK(load_le32(w, vstor::SRB_TRANSFER_LENGTH) == 2048);
    CHECK(std::equal(pattern.begin(), pattern.end(), h.disk.sectors.begin() + 8 * 512));

    const std::vector<u8> r = h.request(Harness::srb(0x28, 8, 4), 2, Harness::range(2048, 0xF00));
    CHECK(r[vstor::SRB_STATUS] == vstor::SRB_SUCCESS);
    for (size_t i = 0; i < pattern.size(); ++i) {
        u8 b = 0;
        REQUIRE(h.memory.read(h.data_address(static_cast<u32>(i), 0xF00), &b, 1));
        REQUIRE(b == pattern[i]);
    }
}

TEST_CASE("storvsp: a failed command returns CHECK CONDITION with its sense in the SRB")
{
    Harness h;
    h.initialize();
    const std::vector<u8> r = h.request(Harness::srb(0x28, 63, 4), 3, Harness::range(2048));
    CHECK(r[vstor::SRB_STATUS] == (vstor::SRB_ERROR | vstor::SRB_AUTOSENSE_VALID));
    CHECK(r[vstor::SRB_SCSI_STATUS] == 2);
    CHECK(r[vstor::SRB_SENSE_LENGTH] == 14);
    CHECK(r[vstor::SRB_CDB + 2] == 0x05);
    CHECK(r[vstor::SRB_CDB + 12] == 0x21);
    CHECK(load_le32(r, vstor::SRB_TRANSFER_LENGTH) == 0);
}

TEST_CASE("storvsp: SRBs for other targets and paths reach the disk as a LUN that is not there")
{
    Harness h;
    h.initialize();
    std::vector<u8> inquiry = Harness::packet(vstor::EXECUTE_SRB);
    inquiry[vstor::SRB_TARGET] = 1;
    inquiry[vstor::SRB_CDB_LENGTH] = 6;
    inquiry[vstor::SRB_DATA_IN] = vstor::DATA_READ;
    const u32 len = 36;
    std::memcpy(inquiry.data() + vstor::SRB_TRANSFER_LENGTH, &len, 4);
    inquiry[vstor::SRB_CDB] = 0x12;
    inquiry[vstor::SRB_CDB + 4] = 36;
    const std::vector<u8> r = h.request(inquiry, 4, Harness::range(36));
    CHECK(r[vstor::SRB_STATUS] == vstor::SRB_SUCCESS);
    u8 first = 0;
    REQUIRE(h.memory.read(DATA_PFN * 4096, &first, 1));
    CHECK(first == 0x7F);
    CHECK(h.disk.last_luns.back() != 0);
}

TEST_CASE("storvsp: SRBs that do not add up are refused without touching the disk or memory")
{
    Harness h;
    h.initialize();
    struct Case {
        const char* what;
        std::vector<u8> srb;
        std::vector<u8> extra;
    };
    std::vector<Case> cases;
    cases.push_back({"data longer than its pages", Harness::srb(0x28, 0, 8), Harness::range(2048)});
    cases.push_back({"data but no pages", Harness::srb(0x28, 0, 1), {}});
    std::vector<u8> no_cdb = Harness::srb(0x28, 0, 1);
    no_cdb[vstor::SRB_CDB_LENGTH] = 0;
    cases.push_back({"no CDB", no_cdb, Harness::range(512)});
    std::vector<u8> long_cdb = Harness::srb(0x28, 0, 1);
    long_cdb[vstor::SRB_CDB_LENGTH] = 17;
    cases.push_back({"a CDB longer than 16", long_cdb, Harness::range(512)});
    std::vector<u8> huge = Harness::srb(0x28, 0, 1);
    const u32 too_much = Storvsp::MAX_TRANSFER + 512;
    std::memcpy(huge.data() + vstor::SRB_TRANSFER_LENGTH, &too_much, 4);
    cases.push_back({"more than the maximum transfer", huge, Harness::range(too_much)});
    std::vector<u8> bad_pfn = Harness::range(512);
    const u64 far = 1ull << 45;
    std::memcpy(bad_pfn.data() + 16, &far, 8);
    cases.push_back({"a page frame past any address", Harness::srb(0x28, 0, 1), bad_pfn});
    u64 trans = 10;
    for (const Case& c : cases) {
        INFO(c.what);
        const size_t calls = h.disk.last_luns.size();
        const std::vector<u8> r = h.request(c.srb, trans++, c.extra);
        CHECK(r[vstor::SRB_STATUS] == vstor::SRB_INVALID_REQUEST);
        CHECK(h.disk.last_luns.size() == calls);
    }
    // A page that is not RAM: the disk ran, the copy failed, the SRB says so.
    std::vector<u8> mmio = Harness::range(512);
    const u64 hole = 0xFEE00; // the local APIC page
    std::memcpy(mmio.data() + 16, &hole, 8);
    CHECK(h.request(Harness::srb(0x28, 0, 1), trans++, mmio)[vstor::SRB_STATUS] == vstor::SRB_ERROR);
}

TEST_CASE("storvsp: completions wait while the guest's ring is full, and none reach a closed channel")
{
    Harness h;
    h.initialize();
    h.disk.hold = true;
    // Many reads in flight (the guest's queue depth), completed at once:
    // 64-byte completions (88 bytes with descriptor and trailer) fill the
    // 8 KiB ring after 93; the rest wait for the guest to read.
    for (u64 t = 0; t < 120; ++t) {
        REQUIRE(h.guest_write(PACKET_DATA_USING_GPA_DIRECT, 100 + t, Harness::srb(0x28, 0, 1),
                              PACKET_FLAG_COMPLETION_REQUESTED, Harness::range(512)));
        h.vsp.signaled();
    }
    CHECK(h.vsp.in_flight() == 120);
    h.disk.release();
    std::vector<u64> seen;
    while (auto c = h.guest_read())
        seen.push_back(std::get<1>(*c));
    CHECK(seen.size() < 120);
    CHECK(h.get(false, 12) != 0); // pending_send_sz: the host is waiting for room
    h.vsp.signaled();             // the guest's signal after reading
    while (auto c = h.guest_read())
        seen.push_back(std::get<1>(*c));
    REQUIRE(seen.size() == 120);
    for (u64 t = 0; t < 120; ++t)
        CHECK(seen[t] == 100 + t);

    REQUIRE(h.guest_write(PACKET_DATA_USING_GPA_DIRECT, 999, Harness::srb(0x28, 0, 1),
                          PACKET_FLAG_COMPLETION_REQUESTED, Harness::range(512)));
    h.vsp.signaled();
    h.vsp.close();
    h.disk.release(); // completes into a closed channel: dropped
    CHECK(h.vsp.in_flight() == 0);
    CHECK_FALSE(h.guest_read());
}

TEST_CASE("storvsp: a saved channel is loaded with its rings, version and waiting completions")
{
    Harness h;
    h.initialize(vstor::VERSION_WIN8_1);
    StateVisitor saver = StateVisitor::saver();
    h.vsp.visit_state(saver);

    FakeDisk disk;
    unsigned interrupts = 0;
    Storvsp loaded(h.memory, disk, {[&](u32) { ++interrupts; }, {}});
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    loaded.visit_state(loader);
    REQUIRE(loader.ok());
    CHECK(loader.at_end());
    CHECK(loaded.protocol_version() == vstor::VERSION_WIN8_1);
    // The same rings in guest memory: a request written now is answered by
    // the loaded channel.
    REQUIRE(h.guest_write(PACKET_DATA_USING_GPA_DIRECT, 77, Harness::srb(0x28, 0, 1),
                          PACKET_FLAG_COMPLETION_REQUESTED, Harness::range(512)));
    loaded.signaled();
    auto c = h.guest_read();
    REQUIRE(c);
    CHECK(std::get<1>(*c) == 77);
    CHECK(std::get<2>(*c)[vstor::SRB_STATUS] == vstor::SRB_SUCCESS);

    // A closed channel saves and loads closed.
    StateVisitor bad_saver = StateVisitor::saver();
    h.vsp.close();
    h.vsp.visit_state(bad_saver); // closed: no rings
    Storvsp closed(h.memory, disk, {[](u32) {}, {}});
    StateVisitor closed_loader = StateVisitor::loader(bad_saver.bytes());
    closed.visit_state(closed_loader);
    CHECK(closed_loader.ok());
}

TEST_CASE("storvsp: multi-channel as Linux asks for it: sub-channels offered, SRBs answered on the ring they came on")
{
    Harness h(2);
    CHECK(load_le32(h.request(Harness::packet(vstor::BEGIN_INITIALIZATION)), vstor::STATUS) == 0);
    const std::vector<u8> props = h.request(Harness::packet(vstor::QUERY_PROPERTIES));
    CHECK(load_le16(props, vstor::PROPERTIES_MAX_CHANNELS) == 2);
    CHECK(load_le32(props, vstor::PROPERTIES_FLAGS) == vstor::PROPERTIES_MULTI_CHANNEL);
    CHECK(load_le32(h.request(Harness::packet(vstor::END_INITIALIZATION)), vstor::STATUS) == 0);
    // handle_multichannel_storage: min(CPUs - 1, the maximum).
    std::vector<u8> create = Harness::packet(vstor::CREATE_SUB_CHANNELS);
    store_le16(create, vstor::SUB_CHANNEL_COUNT, 3);
    CHECK(load_le32(h.request(create), vstor::STATUS) != 0);
    store_le16(create, vstor::SUB_CHANNEL_COUNT, 0);
    CHECK(load_le32(h.request(create), vstor::STATUS) != 0);
    CHECK(h.offered.empty());
    store_le16(create, vstor::SUB_CHANNEL_COUNT, 2);
    CHECK(load_le32(h.request(create), vstor::STATUS) == 0);
    REQUIRE(h.offered.size() == 1);
    CHECK(h.offered[0] == std::pair<u32, u16>{1, 2});
    CHECK(h.vsp.sub_channel(0) == nullptr);
    CHECK(h.vsp.sub_channel(3) == nullptr);

    // The server opens sub-channel 1 on rings of its own.
    GuestRings sub;
    sub.place(h.memory, 0x180);
    VmbusServer::Device* channel = h.vsp.sub_channel(1);
    REQUIRE(channel);
    CHECK(h.vsp.sub_channel(1) == channel); // the same device every time
    VmbusServer::OpenRequest open;
    open.relid = 7;
    open.sub_channel_index = 1;
    open.ring_pfns = sub.pfns;
    open.downstream_offset = GuestRings::OUT_PAGES;
    REQUIRE(channel->open(open));
    h.disk.sectors[512] = 0x5A;
    REQUIRE(sub.guest_write(PACKET_DATA_USING_GPA_DIRECT, 41, Harness::srb(0x28, 1, 1),
                            PACKET_FLAG_COMPLETION_REQUESTED, Harness::range(512)));
    channel->signaled();
    auto c = sub.guest_read();
    REQUIRE(c);
    CHECK(std::get<1>(*c) == 41);
    CHECK(std::get<2>(*c)[vstor::SRB_STATUS] == vstor::SRB_SUCCESS);
    u8 first = 0;
    REQUIRE(h.memory.read(h.data_address(0), &first, 1));
    CHECK(first == 0x5A);
    CHECK_FALSE(h.guest_read()); // nothing on the primary's ring
    CHECK(h.interrupts_by_relid[7] == 1);
    CHECK(h.vsp.requests_on(1) == 1);
    CHECK(h.vsp.requests_on(0) == 0);
    // The handshake belongs to the primary.
    REQUIRE(sub.guest_write(PACKET_DATA_INBAND, 42, Harness::packet(vstor::BEGIN_INITIALIZATION),
                            PACKET_FLAG_COMPLETION_REQUESTED));
    channel->signaled();
    c = sub.guest_read();
    REQUIRE(c);
    CHECK(load_le32(std::get<2>(*c), vstor::STATUS) != 0);

    // Saved and loaded, both channels answer on their rings again.
    StateVisitor saver = StateVisitor::saver();
    h.vsp.visit_state(saver);
    unsigned loaded_interrupts = 0;
    Storvsp loaded(h.memory, h.disk, {[&](u32) { ++loaded_interrupts; }, {}}, 2);
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    loaded.visit_state(loader);
    REQUIRE(loader.ok());
    CHECK(loader.at_end());
    REQUIRE(sub.guest_write(PACKET_DATA_USING_GPA_DIRECT, 43, Harness::srb(0x28, 1, 1),
                            PACKET_FLAG_COMPLETION_REQUESTED, Harness::range(512)));
    loaded.sub_channel(1)->signaled();
    c = sub.guest_read();
    REQUIRE(c);
    CHECK(std::get<1>(*c) == 43);
    CHECK(loaded_interrupts == 1);
    // A controller with fewer sub-channels refuses the state.
    Storvsp smaller(h.memory, h.disk, {[](u32) {}, {}}, 0);
    StateVisitor refused = StateVisitor::loader(saver.bytes());
    smaller.visit_state(refused);
    CHECK_FALSE(refused.ok());
}

TEST_CASE("storvsp: a changed bus is announced with ENUMERATE_BUS once the guest is initialized")
{
    Harness h;
    h.vsp.bus_changed(); // not initialized yet: the first scan finds the disks
    CHECK_FALSE(h.guest_read());
    h.initialize();
    const unsigned before = h.interrupts;
    h.vsp.bus_changed();
    auto p = h.guest_read();
    REQUIRE(p);
    CHECK(std::get<0>(*p) == PACKET_DATA_INBAND);
    CHECK(std::get<1>(*p) == 0); // unsolicited: transaction 0, as Linux expects
    REQUIRE(std::get<2>(*p).size() == vstor::PACKET_SIZE);
    CHECK(load_le32(std::get<2>(*p), vstor::OPERATION) == vstor::ENUMERATE_BUS);
    CHECK(h.interrupts == before + 1);
    // Closed, nothing is sent.
    h.vsp.close();
    h.vsp.bus_changed();
    CHECK_FALSE(h.guest_read());
}

TEST_CASE("storvsp: a command to a LUN the bus does not have ends in SRB_STATUS_INVALID_LUN")
{
    struct NoUnit : ScsiTarget {
        void execute(const Command&, Done done) override
        {
            Result r;
            r.status = 2;
            r.sense = {0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x25, 0x00};
            r.no_such_lun = true;
            done(r);
        }
    };
    GuestRings rings;
    NoUnit target;
    Storvsp vsp(rings.memory, target, {[](u32) {}, {}});
    VmbusServer::OpenRequest open;
    open.relid = 1;
    open.ring_pfns = rings.pfns;
    open.downstream_offset = GuestRings::OUT_PAGES;
    REQUIRE(vsp.open(open));
    std::vector<u8> tur = Harness::packet(vstor::EXECUTE_SRB);
    tur[vstor::SRB_LUN] = 4;
    tur[vstor::SRB_CDB_LENGTH] = 6;
    tur[vstor::SRB_SENSE_LENGTH] = 20;
    tur[vstor::SRB_DATA_IN] = vstor::DATA_NONE;
    REQUIRE(rings.guest_write(PACKET_DATA_INBAND, 9, tur, PACKET_FLAG_COMPLETION_REQUESTED));
    vsp.signaled();
    auto c = rings.guest_read();
    REQUIRE(c);
    // Exactly 0x20, no autosense bit: Linux's storvsc_handle_error then removes the device.
    CHECK(std::get<2>(*c)[vstor::SRB_STATUS] == vstor::SRB_INVALID_LUN);
    CHECK(std::get<2>(*c)[vstor::SRB_SCSI_STATUS] == 0);
}
