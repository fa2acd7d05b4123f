// netvsp against the guest side of Linux's hv_netvsc (drivers/net/hyperv/
// netvsc.c, rndis_filter.c): NVSP negotiation and the two buffers, the
// RNDIS control requests, frames both ways (send-buffer sections, batches,
// page ranges; transfer-page receives and their completions), the link,
// hostile values, and a saved channel with frames in flight.
#include "paravirt/vmbus/netvsp.h"
#include "platform/net/frame_bytes.h"
#include "tests/paravirt/vmbus_guest_ring.h"

#include <deque>
#include <map>
#include <set>

using namespace vmbus;

namespace {

constexpr Netvsp::Mac MAC = {0x00, 0x15, 0x5D, 0x01, 0x02, 0x03};
constexpr u64 RECEIVE_PFN = 0x200, SEND_PFN = 0x300, DATA_PFN = 0x400;
constexpr u32 RECEIVE_GPADL = 0xE1E10, SEND_GPADL = 0xE1E11, OTHER_GPADL = 0xE1E12;
constexpr u32 RECEIVE_PAGES = 4, SEND_PAGES = 3;
constexpr u16 RECEIVE_BUFFER_ID = 0xCAFE;

std::vector<u8> nvsp_message(u32 type, std::initializer_list<std::pair<unsigned, u32>> fields = {})
{
    std::vector<u8> m(nvsp::MESSAGE_SIZE);
    store_le32(m, 0, type);
    for (auto [at, value] : fields)
        store_le32(m, at, value);
    return m;
}

std::vector<u8> frame(const Netvsp::Mac& destination, size_t size, u8 seed)
{
    std::vector<u8> f(size);
    std::copy(destination.begin(), destination.end(), f.begin());
    for (size_t i = 6; i < size; ++i)
        f[i] = static_cast<u8>(i * 7 + seed);
    return f;
}

// RNDIS_MSG_PACKET around `data`, msg_len padded up to `align`.
std::vector<u8> rndis_packet(const std::vector<u8>& data, u32 align = 1)
{
    const u32 length = (rndis::HEADER_SIZE + rndis::PACKET_SIZE + static_cast<u32>(data.size()) + align - 1) / align * align;
    std::vector<u8> m(length);
    store_le32(m, 0, rndis::PACKET);
    store_le32(m, 4, length);
    store_le32(m, rndis::PACKET_DATA_OFFSET, rndis::PACKET_SIZE);
    store_le32(m, rndis::PACKET_DATA_LENGTH, static_cast<u32>(data.size()));
    std::copy(data.begin(), data.end(), m.begin() + rndis::HEADER_SIZE + rndis::PACKET_SIZE);
    return m;
}

std::vector<u8> rndis_request(u32 type, u32 id, u32 oid = 0, const std::vector<u8>& info = {})
{
    std::vector<u8> m(type == rndis::INITIALIZE ? 24 : rndis::QUERY_SIZE + info.size());
    store_le32(m, 0, type);
    store_le32(m, 4, static_cast<u32>(m.size()));
    store_le32(m, rndis::REQUEST_ID, id);
    if (type == rndis::INITIALIZE) {
        store_le32(m, 12, 1);
        store_le32(m, 20, 0x4000);
        return m;
    }
    store_le32(m, rndis::REQUEST_OID, oid);
    store_le32(m, rndis::REQUEST_INFO_LENGTH, static_cast<u32>(info.size()));
    store_le32(m, rndis::REQUEST_INFO_OFFSET, 20);
    std::copy(info.begin(), info.end(), m.begin() + rndis::QUERY_SIZE);
    return m;
}

std::vector<u8> le32(u32 v)
{
    std::vector<u8> b(4);
    store_le32(b, 0, v);
    return b;
}

struct HostPacket {
    u16 type = 0;
    u64 transaction_id = 0;
    std::vector<u8> extra, body;
};

struct Harness : GuestRings {
    std::map<u32, std::vector<u64>> gpadls;
    std::vector<std::vector<u8>> sent;
    unsigned interrupts = 0;
    std::deque<HostPacket> inbox;
    u64 next_transaction = 100;
    std::vector<std::pair<u32, u16>> offers; // the sub-channels asked of the server: {primary, count}
    Netvsp vsp;

    // `sub_channels`: what the adapter may offer for vRSS.
    explicit Harness(u16 sub_channels = 0)
        : vsp(memory, MAC,
              [this](u32 handle) -> const std::vector<u64>* {
                  auto it = gpadls.find(handle);
                  return it == gpadls.end() ? nullptr : &it->second;
              },
              Netvsp::Links{[this](u32) { ++interrupts; },
                            [this](u32 primary, u16 count) { return offers.emplace_back(primary, count), true; }},
              sub_channels)
    {
        for (u32 i = 0; i < RECEIVE_PAGES; ++i)
            gpadls[RECEIVE_GPADL].push_back(RECEIVE_PFN + i);
        for (u32 i = 0; i < SEND_PAGES; ++i)
            gpadls[SEND_GPADL].push_back(SEND_PFN + i);
        gpadls[OTHER_GPADL] = {1ull << 45}; // beyond any address
        vsp.set_transmit([this](std::span<const u8> f) { sent.emplace_back(f.begin(), f.end()); });
        VmbusServer::OpenRequest open;
        open.relid = 1;
        open.ring_pfns = pfns;
        open.downstream_offset = OUT_PAGES;
        REQUIRE(vsp.open(open));
    }
    void collect()
    {
        std::vector<u8> extra;
        while (auto p = guest_read(&extra))
            inbox.push_back({std::get<0>(*p), std::get<1>(*p), extra, std::get<2>(*p)});
    }
    std::optional<HostPacket> take(u16 type)
    {
        collect();
        for (auto it = inbox.begin(); it != inbox.end(); ++it)
            if (it->type == type) {
                HostPacket p = std::move(*it);
                inbox.erase(it);
                return p;
            }
        return std::nullopt;
    }
    // Posts one NVSP message; returns the completion's body (empty: none came).
    std::vector<u8> request(const std::vector<u8>& body, const std::vector<u8>& extra = {},
                            u16 flags = PACKET_FLAG_COMPLETION_REQUESTED)
    {
        const u64 trans = next_transaction++;
        REQUIRE(guest_write(extra.empty() ? PACKET_DATA_INBAND : PACKET_DATA_USING_GPA_DIRECT, trans, body, flags,
                            extra));
        vsp.signaled();
        std::optional<HostPacket> c = take(PACKET_COMPLETION);
        if (!c)
            return {};
        CHECK(c->transaction_id == trans);
        return c->body;
    }
    void negotiate(u32 version = nvsp::VERSION_61)
    {
        REQUIRE(load_le32(request(nvsp_message(nvsp::INIT, {{4, version}, {8, version}})), 12) ==
                nvsp::STATUS_SUCCESS);
        CHECK(request(nvsp_message(nvsp::SEND_NDIS_CONFIG, {{4, 1514}}), {}, 0).empty());
        CHECK(request(nvsp_message(nvsp::SEND_NDIS_VERSION, {{4, 6}, {8, 30}}), {}, 0).empty());
        REQUIRE(load_le32(request(nvsp_message(nvsp::SEND_RECEIVE_BUFFER, {{4, RECEIVE_GPADL}, {8, RECEIVE_BUFFER_ID}})),
                          4) == nvsp::STATUS_SUCCESS);
        REQUIRE(load_le32(request(nvsp_message(nvsp::SEND_SEND_BUFFER, {{4, SEND_GPADL}})), 4) ==
                nvsp::STATUS_SUCCESS);
    }
    // A GPA-direct range of `bytes` bytes at `offset` into DATA_PFN, DATA_PFN + 5, ...
    static std::vector<u8> range(u32 bytes, u32 offset = 0)
    {
        std::vector<u8> e(16);
        store_le32(e, 4, 1);
        store_le32(e, 8, bytes);
        store_le32(e, 12, offset);
        for (u64 i = 0; i < (offset + bytes + 4095) / 4096; ++i) {
            e.resize(e.size() + 8);
            store_le64(e, e.size() - 8, DATA_PFN + i * 5);
        }
        return e;
    }
    void write_data(const std::vector<u8>& bytes, u32 offset = 0)
    {
        for (size_t i = 0; i < bytes.size(); ++i) {
            const u64 at = offset + i;
            REQUIRE(memory.write((DATA_PFN + at / 4096 * 5) * 4096 + at % 4096, &bytes[i], 1));
        }
    }
    void write_send_section(u32 index, const std::vector<u8>& bytes)
    {
        REQUIRE(memory.write(SEND_PFN * 4096 + u64{index} * Netvsp::SEND_SECTION_SIZE, bytes.data(), bytes.size()));
    }
    // RNDIS bytes through page ranges, as rndis_filter_send_request sends; the NVSP status.
    u32 send_rndis(const std::vector<u8>& bytes, u32 channel = nvsp::CHANNEL_CONTROL)
    {
        write_data(bytes, 0x100);
        const std::vector<u8> c =
            request(nvsp_message(nvsp::SEND_RNDIS_PACKET, {{4, channel}, {8, nvsp::NO_SECTION}}),
                    range(static_cast<u32>(bytes.size()), 0x100));
        REQUIRE(c.size() >= 8);
        CHECK(load_le32(c, 0) == nvsp::SEND_RNDIS_PACKET_COMPLETE);
        return load_le32(c, 4);
    }
    struct Received {
        u64 transaction_id = 0;
        u32 channel_type = 0;
        u32 offset = 0;
        std::vector<u8> message;
    };
    // The next transfer-page packet: its one range read from the receive buffer.
    std::optional<Received> receive_packet()
    {
        std::optional<HostPacket> p = take(PACKET_DATA_USING_TRANSFER_PAGES);
        if (!p)
            return std::nullopt;
        REQUIRE(p->extra.size() == 16);
        CHECK(load_le16(p->extra, 0) == RECEIVE_BUFFER_ID);
        CHECK(load_le32(p->extra, 4) == 1);
        REQUIRE(p->body.size() >= 16);
        CHECK(load_le32(p->body, 0) == nvsp::SEND_RNDIS_PACKET);
        Received r;
        r.transaction_id = p->transaction_id;
        r.channel_type = load_le32(p->body, 4);
        const u32 length = load_le32(p->extra, 8);
        r.offset = load_le32(p->extra, 12);
        CHECK(r.offset % Netvsp::RECEIVE_SECTION_SIZE == 0);
        REQUIRE(u64{r.offset} + length <= RECEIVE_PAGES * 4096ull);
        r.message.resize(length);
        REQUIRE(memory.read(RECEIVE_PFN * 4096 + r.offset, r.message.data(), length));
        return r;
    }
    void complete_receive(u64 transaction_id)
    {
        REQUIRE(guest_write(PACKET_COMPLETION, transaction_id,
                            nvsp_message(nvsp::SEND_RNDIS_PACKET_COMPLETE, {{4, nvsp::STATUS_SUCCESS}})));
        vsp.signaled();
    }
    // A control request and its RNDIS answer (whose section goes back).
    std::vector<u8> control(const std::vector<u8>& request_bytes)
    {
        CHECK(send_rndis(request_bytes) == nvsp::STATUS_SUCCESS);
        std::optional<Received> r = receive_packet();
        REQUIRE(r);
        CHECK(r->channel_type == nvsp::CHANNEL_CONTROL);
        complete_receive(r->transaction_id);
        return r->message;
    }
    std::vector<u8> query(u32 oid) { return control(rndis_request(rndis::QUERY, 7, oid)); }
    // Negotiated, RNDIS initialized and the filter Linux sets when it opens.
    void bring_up(u32 version = nvsp::VERSION_61)
    {
        negotiate(version);
        control(rndis_request(rndis::INITIALIZE, 1));
        const u32 filter = rndis::FILTER_DIRECTED | rndis::FILTER_BROADCAST | rndis::FILTER_ALL_MULTICAST;
        CHECK(load_le32(control(rndis_request(rndis::SET, 2, rndis::GEN_CURRENT_PACKET_FILTER, le32(filter))), 12) ==
              rndis::STATUS_SUCCESS);
    }
};

std::vector<u8> query_value(const std::vector<u8>& reply)
{
    REQUIRE(reply.size() >= rndis::QUERY_COMPLETE_SIZE);
    CHECK(load_le32(reply, 0) == (rndis::QUERY | rndis::COMPLETION));
    CHECK(load_le32(reply, 12) == rndis::STATUS_SUCCESS);
    const u32 length = load_le32(reply, 16), offset = load_le32(reply, 20);
    REQUIRE(offset == 16);
    REQUIRE(u64{rndis::HEADER_SIZE} + offset + length <= reply.size());
    return std::vector<u8>(reply.begin() + rndis::HEADER_SIZE + offset,
                           reply.begin() + rndis::HEADER_SIZE + offset + length);
}

} // namespace

TEST_CASE("netvsp: NVSP versions are negotiated as Linux 6.1 tries them, newest first")
{
    Harness h;
    // Linux sends min = max, from 6.1 down; an unknown version is refused.
    std::vector<u8> c = h.request(nvsp_message(nvsp::INIT, {{4, 0x70000}, {8, 0x70000}}));
    CHECK(load_le32(c, 0) == nvsp::INIT_COMPLETE);
    CHECK(load_le32(c, 12) == nvsp::STATUS_FAIL);
    CHECK(h.vsp.protocol_version() == 0);
    c = h.request(nvsp_message(nvsp::INIT, {{4, nvsp::VERSION_61}, {8, nvsp::VERSION_61}}));
    CHECK(load_le32(c, 12) == nvsp::STATUS_SUCCESS);
    CHECK(load_le32(c, 4) == nvsp::VERSION_61);
    // A range gets the newest version in it.
    c = h.request(nvsp_message(nvsp::INIT, {{4, nvsp::VERSION_1}, {8, 0x50005}}));
    CHECK(load_le32(c, 4) == nvsp::VERSION_5);
    CHECK(h.vsp.protocol_version() == nvsp::VERSION_5);
    c = h.request(nvsp_message(nvsp::INIT, {{4, nvsp::VERSION_1}, {8, nvsp::VERSION_1}}));
    CHECK(load_le32(c, 12) == nvsp::STATUS_SUCCESS);
    CHECK(h.vsp.protocol_version() == nvsp::VERSION_1);
    CHECK(h.interrupts > 0);
}

TEST_CASE("netvsp: the receive buffer is one section of 1728-byte pieces, the send buffer 6144-byte sections")
{
    Harness h;
    // Nothing before the version.
    CHECK(load_le32(h.request(nvsp_message(nvsp::SEND_RECEIVE_BUFFER, {{4, RECEIVE_GPADL}})), 4) == nvsp::STATUS_FAIL);
    h.request(nvsp_message(nvsp::INIT, {{4, nvsp::VERSION_61}, {8, nvsp::VERSION_61}}));
    // A GPADL that does not exist (or is not this channel's), or pages beyond memory.
    CHECK(load_le32(h.request(nvsp_message(nvsp::SEND_RECEIVE_BUFFER, {{4, 0x1234}})), 4) == nvsp::STATUS_FAIL);
    CHECK(load_le32(h.request(nvsp_message(nvsp::SEND_RECEIVE_BUFFER, {{4, OTHER_GPADL}})), 4) == nvsp::STATUS_FAIL);
    const std::vector<u8> r =
        h.request(nvsp_message(nvsp::SEND_RECEIVE_BUFFER, {{4, RECEIVE_GPADL}, {8, RECEIVE_BUFFER_ID}}));
    REQUIRE(r.size() >= 28);
    CHECK(load_le32(r, 0) == nvsp::SEND_RECEIVE_BUFFER_COMPLETE);
    CHECK(load_le32(r, 4) == nvsp::STATUS_SUCCESS);
    CHECK(load_le32(r, 8) == 1);  // one section
    CHECK(load_le32(r, 12) == 0); // at offset 0
    CHECK(load_le32(r, 16) == Netvsp::RECEIVE_SECTION_SIZE);
    CHECK(load_le32(r, 20) == RECEIVE_PAGES * 4096 / Netvsp::RECEIVE_SECTION_SIZE);
    CHECK(load_le32(r, 24) == load_le32(r, 20) * Netvsp::RECEIVE_SECTION_SIZE);
    // A second receive buffer is refused; the first stays.
    CHECK(load_le32(h.request(nvsp_message(nvsp::SEND_RECEIVE_BUFFER, {{4, SEND_GPADL}})), 4) == nvsp::STATUS_FAIL);
    const std::vector<u8> s = h.request(nvsp_message(nvsp::SEND_SEND_BUFFER, {{4, SEND_GPADL}}));
    CHECK(load_le32(s, 0) == nvsp::SEND_SEND_BUFFER_COMPLETE);
    CHECK(load_le32(s, 4) == nvsp::STATUS_SUCCESS);
    CHECK(load_le32(s, 8) == Netvsp::SEND_SECTION_SIZE);
    // The version cannot change under the buffers.
    CHECK(load_le32(h.request(nvsp_message(nvsp::INIT, {{4, nvsp::VERSION_5}, {8, nvsp::VERSION_5}})), 12) ==
          nvsp::STATUS_FAIL);
    CHECK(h.vsp.protocol_version() == nvsp::VERSION_61);
}

TEST_CASE("netvsp: RNDIS initialize and the OIDs Linux queries and sets are answered through the receive buffer")
{
    Harness h;
    h.negotiate();
    const std::vector<u8> init = h.control(rndis_request(rndis::INITIALIZE, 0x11));
    REQUIRE(init.size() >= 52);
    CHECK(load_le32(init, 0) == (rndis::INITIALIZE | rndis::COMPLETION));
    CHECK(load_le32(init, 8) == 0x11);
    CHECK(load_le32(init, 12) == rndis::STATUS_SUCCESS);
    CHECK(load_le32(init, 16) == 1); // RNDIS 1.0
    CHECK(load_le32(init, 32) >= 1); // packets per message
    CHECK(load_le32(init, 40) == 3); // 8-byte alignment
    CHECK(h.vsp.rndis_initialized());

    CHECK(query_value(h.query(rndis::PERMANENT_ADDRESS)) == std::vector<u8>(MAC.begin(), MAC.end()));
    CHECK(load_le32(query_value(h.query(rndis::GEN_MAXIMUM_FRAME_SIZE)), 0) == 1500);
    CHECK(load_le32(query_value(h.query(rndis::GEN_LINK_SPEED)), 0) == 100'000'000);
    CHECK(load_le32(query_value(h.query(rndis::GEN_MEDIA_CONNECT_STATUS)), 0) == 0); // connected
    // Offload capabilities: an NDIS_OFFLOAD of the revision NVSP 6.1 implies,
    // offering TCP and UDP checksums both ways (what Linux needs to use them:
    // TCP with options, and IPv6 extension headers) and nothing else.
    const std::vector<u8> caps = query_value(h.query(rndis::OFFLOAD_HARDWARE_CAPABILITIES));
    REQUIRE(caps.size() == 156);
    CHECK(caps[0] == 0xA7);
    CHECK(caps[1] == 3);
    CHECK(load_le16(caps, 2) == 156);
    CHECK(load_le32(caps, 8) == 0x54);  // IPv4 transmit: TCP, TCP options, UDP
    CHECK(load_le32(caps, 16) == 0x50); // IPv4 receive: TCP, UDP
    CHECK(load_le32(caps, 24) == 0x55); // IPv6 transmit: and extension headers
    CHECK(load_le32(caps, 32) == 0x50);
    CHECK(std::all_of(caps.begin() + 36, caps.begin() + 80, [](u8 b) { return b == 0; })); // no LSO v1, IPsec v1
    // Large send v2 over IPv4 and IPv6 (with extension headers and TCP options).
    CHECK(load_le32(caps, 80) == 2);
    CHECK(load_le32(caps, 84) == 62780);
    CHECK(load_le32(caps, 88) == 2);
    CHECK(load_le32(caps, 92) == 2);
    CHECK(load_le32(caps, 96) == 62780);
    CHECK(load_le32(caps, 104) == 5);
    CHECK(std::all_of(caps.begin() + 108, caps.end(), [](u8 b) { return b == 0; })); // no IPsec v2, RSC
    // RSS capabilities are not offered: one channel. The offset is still valid.
    const std::vector<u8> rss = h.query(rndis::GEN_RECEIVE_SCALE_CAPABILITIES);
    CHECK(load_le32(rss, 12) == rndis::STATUS_NOT_SUPPORTED);
    CHECK(load_le32(rss, 16) == 0);
    CHECK(load_le32(rss, 20) == 16);

    const u32 filter = rndis::FILTER_DIRECTED | rndis::FILTER_BROADCAST;
    const std::vector<u8> set = h.control(rndis_request(rndis::SET, 9, rndis::GEN_CURRENT_PACKET_FILTER, le32(filter)));
    CHECK(load_le32(set, 0) == (rndis::SET | rndis::COMPLETION));
    CHECK(load_le32(set, 8) == 9);
    CHECK(load_le32(set, 12) == rndis::STATUS_SUCCESS);
    CHECK(h.vsp.packet_filter() == filter);
    // As QMP query-rx-filter shows it.
    const RxFilter rx = h.vsp.rx_filter();
    CHECK(rx.main_mac == MAC);
    CHECK(rx.unicast == RxFilter::Mode::Normal);
    CHECK(rx.multicast == RxFilter::Mode::None);
    CHECK(rx.broadcast_allowed);
    CHECK_FALSE(rx.promiscuous);
    // Offload parameters as Linux sets them: the IPv4 header checksum off,
    // TCP and UDP checksums on both ways, then large send v2 on; LSO v1
    // cannot be turned on.
    std::vector<u8> params(26);
    params[0] = 0x80;
    params[1] = 3;
    params[2] = 26;
    params[4] = 1;
    std::fill(params.begin() + 5, params.begin() + 9, 4);
    CHECK(load_le32(h.control(rndis_request(rndis::SET, 10, rndis::OFFLOAD_PARAMETERS, params)), 12) ==
          rndis::STATUS_SUCCESS);
    params[11] = params[12] = 2; // LSO v2 over IPv4 and IPv6
    CHECK(load_le32(h.control(rndis_request(rndis::SET, 11, rndis::OFFLOAD_PARAMETERS, params)), 12) ==
          rndis::STATUS_SUCCESS);
    params[9] = 2; // LSO v1
    CHECK(load_le32(h.control(rndis_request(rndis::SET, 12, rndis::OFFLOAD_PARAMETERS, params)), 12) ==
          rndis::STATUS_NOT_SUPPORTED);
    CHECK(h.vsp.sections_in_flight() == 0);
}

TEST_CASE("netvsp: the offload capabilities' revision follows the NVSP version")
{
    Harness h;
    h.negotiate(nvsp::VERSION_4);
    h.control(rndis_request(rndis::INITIALIZE, 1));
    CHECK(query_value(h.query(rndis::OFFLOAD_HARDWARE_CAPABILITIES)).size() == 144);
    Harness old;
    old.negotiate(nvsp::VERSION_2);
    old.control(rndis_request(rndis::INITIALIZE, 1));
    const std::vector<u8> caps = query_value(old.query(rndis::OFFLOAD_HARDWARE_CAPABILITIES));
    CHECK(caps.size() == 112);
    CHECK(caps[1] == 1);
}

TEST_CASE("netvsp: frames in a send section, batched, and in page ranges reach the backend")
{
    Harness h;
    h.bring_up();
    const std::vector<u8> a = frame({1, 2, 3, 4, 5, 6}, 60, 1), b = frame({1, 2, 3, 4, 5, 6}, 1514, 2),
                          c = frame({1, 2, 3, 4, 5, 6}, 3000, 3);
    // Two packets batched in section 1, each padded to 8 bytes (multi-send).
    std::vector<u8> batch = rndis_packet(a, 8);
    const std::vector<u8> second = rndis_packet(b, 8);
    batch.insert(batch.end(), second.begin(), second.end());
    h.write_send_section(1, batch);
    std::vector<u8> done = h.request(nvsp_message(nvsp::SEND_RNDIS_PACKET,
                                                  {{4, nvsp::CHANNEL_DATA}, {8, 1}, {12, static_cast<u32>(batch.size())}}));
    CHECK(load_le32(done, 4) == nvsp::STATUS_SUCCESS);
    // A large one: its RNDIS header in section 0, its data in page ranges
    // that cross a page boundary.
    const std::vector<u8> whole = rndis_packet(c);
    const std::vector<u8> header(whole.begin(), whole.begin() + 44);
    h.write_send_section(0, header);
    h.write_data(c, 4000);
    done = h.request(nvsp_message(nvsp::SEND_RNDIS_PACKET, {{4, nvsp::CHANNEL_DATA}, {8, 0}, {12, 44}}),
                     Harness::range(static_cast<u32>(c.size()), 4000));
    CHECK(load_le32(done, 4) == nvsp::STATUS_SUCCESS);
    // And one entirely in page ranges.
    CHECK(h.send_rndis(rndis_packet(a), nvsp::CHANNEL_DATA) == nvsp::STATUS_SUCCESS);
    REQUIRE(h.sent.size() == 4);
    CHECK(h.sent[0] == a);
    CHECK(h.sent[1] == b);
    CHECK(h.sent[2] == c);
    CHECK(h.sent[3] == a);
    CHECK(h.vsp.counters().tx_frames == 4);
}

TEST_CASE("netvsp: a frame from the network lands in a receive section until the guest completes it")
{
    Harness h;
    h.bring_up();
    const std::vector<u8> f = frame(MAC, 1514, 5);
    h.vsp.receive(f);
    std::optional<Harness::Received> r = h.receive_packet();
    REQUIRE(r);
    CHECK(r->channel_type == nvsp::CHANNEL_DATA);
    REQUIRE(r->message.size() == 44 + f.size());
    CHECK(load_le32(r->message, 0) == rndis::PACKET);
    CHECK(load_le32(r->message, 4) == r->message.size());
    CHECK(load_le32(r->message, rndis::PACKET_DATA_OFFSET) == 36);
    CHECK(load_le32(r->message, rndis::PACKET_DATA_LENGTH) == f.size());
    CHECK(std::equal(f.begin(), f.end(), r->message.begin() + 44));
    CHECK(h.vsp.sections_in_flight() == 1);
    h.complete_receive(r->transaction_id);
    CHECK(h.vsp.sections_in_flight() == 0);
    // The filter: broadcast and our address pass, another's does not.
    h.vsp.receive(frame({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 60, 1));
    h.vsp.receive(frame({0x00, 0x15, 0x5D, 9, 9, 9}, 60, 1));
    CHECK(h.vsp.counters().rx_frames == 2);
    CHECK(h.vsp.counters().rx_dropped == 1);
    // Nothing too large for a section, nothing shorter than a header.
    h.vsp.receive(frame(MAC, Netvsp::MAX_RECEIVE_FRAME + 1, 1));
    h.vsp.receive(std::vector<u8>(10, 0xFF));
    CHECK(h.vsp.counters().rx_dropped == 3);
}

TEST_CASE("netvsp: frames are dropped, never held, while every receive section is in flight")
{
    Harness h;
    h.bring_up();
    const unsigned sections = RECEIVE_PAGES * 4096 / Netvsp::RECEIVE_SECTION_SIZE;
    std::vector<Harness::Received> held;
    std::set<u32> offsets;
    for (unsigned i = 0; i < sections + 3; ++i) {
        h.vsp.receive(frame(MAC, 600, static_cast<u8>(i)));
        while (std::optional<Harness::Received> r = h.receive_packet()) {
            held.push_back(*r);
            offsets.insert(r->offset);
        }
    }
    CHECK(held.size() == sections);
    CHECK(offsets.size() == sections); // every section, once
    CHECK(h.vsp.counters().rx_dropped == 3);
    CHECK(h.vsp.sections_in_flight() == sections);
    h.complete_receive(held[2].transaction_id);
    h.vsp.receive(frame(MAC, 600, 0x77));
    std::optional<Harness::Received> r = h.receive_packet();
    REQUIRE(r);
    CHECK(r->offset == held[2].offset);
    CHECK(r->message[44 + 6] == static_cast<u8>(6 * 7 + 0x77));
}

TEST_CASE("netvsp: a control answer waits for a free section instead of being dropped")
{
    Harness h;
    h.bring_up();
    const unsigned sections = RECEIVE_PAGES * 4096 / Netvsp::RECEIVE_SECTION_SIZE;
    std::vector<u64> held;
    for (unsigned i = 0; i < sections; ++i)
        h.vsp.receive(frame(MAC, 600, 1));
    while (std::optional<Harness::Received> r = h.receive_packet())
        held.push_back(r->transaction_id);
    REQUIRE(held.size() == sections);
    CHECK(h.send_rndis(rndis_request(rndis::QUERY, 44, rndis::GEN_LINK_SPEED)) == nvsp::STATUS_SUCCESS);
    CHECK_FALSE(h.receive_packet());
    h.vsp.receive(frame(MAC, 600, 1)); // a frame does not take the answer's place
    CHECK_FALSE(h.receive_packet());
    h.complete_receive(held[0]);
    std::optional<Harness::Received> r = h.receive_packet();
    REQUIRE(r);
    CHECK(r->channel_type == nvsp::CHANNEL_CONTROL);
    CHECK(load_le32(r->message, 8) == 44);
}

namespace {

// An Ethernet frame with an IPv4 (or IPv6) header and a TCP (or UDP)
// segment of `payload` bytes, its L4 checksum right when `good`, or the
// pseudo-header's sum left in it when `seeded` (what a stack offloading the
// checksum leaves).
std::vector<u8> ip_frame(bool ipv6, bool tcp, size_t payload, bool good, bool seeded = false)
{
    const size_t ip = ipv6 ? 40 : 20, l4_header = tcp ? 20 : 8, l4_length = l4_header + payload;
    std::vector<u8> f(14 + ip + l4_length);
    std::copy(MAC.begin(), MAC.end(), f.begin());
    store_be16(f, 12, ipv6 ? 0x86DD : 0x0800);
    const u8 protocol = tcp ? 6 : 17;
    u64 pseudo = protocol + l4_length;
    if (ipv6) {
        f[14] = 0x60;
        store_be16(f, 18, static_cast<u16>(l4_length));
        f[20] = protocol;
        f[21] = 64;
        for (size_t i = 0; i < 32; ++i)
            f[22 + i] = static_cast<u8>(i * 3 + 1);
        pseudo = net::checksum_add(std::span<const u8>(f).subspan(22, 32), pseudo);
    } else {
        f[14] = 0x45;
        store_be16(f, 16, static_cast<u16>(ip + l4_length));
        f[22] = 64;
        f[23] = protocol;
        const u8 addresses[8] = {10, 0, 2, 2, 10, 0, 2, 15};
        std::copy(addresses, addresses + 8, f.begin() + 26);
        pseudo = net::checksum_add(std::span<const u8>(f).subspan(26, 8), pseudo);
    }
    const size_t l4 = 14 + ip;
    store_be16(f, l4, 80);
    store_be16(f, l4 + 2, 5555);
    if (tcp)
        f[l4 + 12] = 0x50;
    else
        store_be16(f, l4 + 4, static_cast<u16>(l4_length));
    for (size_t i = 0; i < payload; ++i)
        f[l4 + l4_header + i] = static_cast<u8>(i * 11 + 3);
    const size_t field = l4 + (tcp ? 16 : 6);
    if (seeded) {
        // The folded pseudo-header sum, not complemented.
        store_be16(f, field, static_cast<u16>(~net::checksum_finish(pseudo)));
        return f;
    }
    u16 sum = net::checksum_finish(net::checksum_add(std::span<const u8>(f).subspan(l4), pseudo));
    if (!tcp && sum == 0)
        sum = 0xFFFF;
    store_be16(f, field, static_cast<u16>(good ? sum : sum ^ 0x0101));
    return f;
}

// RNDIS_MSG_PACKET with one per-packet information record of `type`.
std::vector<u8> rndis_packet_with_info(const std::vector<u8>& data, u32 type, u32 value)
{
    std::vector<u8> m(rndis::HEADER_SIZE + rndis::PACKET_SIZE + rndis::CHECKSUM_INFO_SIZE + data.size());
    store_le32(m, 0, rndis::PACKET);
    store_le32(m, 4, static_cast<u32>(m.size()));
    store_le32(m, rndis::PACKET_DATA_OFFSET, rndis::PACKET_SIZE + rndis::CHECKSUM_INFO_SIZE);
    store_le32(m, rndis::PACKET_DATA_LENGTH, static_cast<u32>(data.size()));
    store_le32(m, rndis::PACKET_INFO_OFFSET, rndis::PACKET_SIZE);
    store_le32(m, rndis::PACKET_INFO_LENGTH, rndis::CHECKSUM_INFO_SIZE);
    const unsigned at = rndis::HEADER_SIZE + rndis::PACKET_SIZE;
    store_le32(m, at, rndis::CHECKSUM_INFO_SIZE);
    store_le32(m, at + 4, type);
    store_le32(m, at + 8, rndis::INFO_HEADER_SIZE);
    store_le32(m, at + 12, value);
    std::copy(data.begin(), data.end(), m.begin() + at + rndis::CHECKSUM_INFO_SIZE);
    return m;
}

// With a TCPIP_CHKSUM_PKTINFO asking for the L4 checksum.
std::vector<u8> rndis_packet_with_checksum(const std::vector<u8>& data, bool tcp, u32 l4)
{
    return rndis_packet_with_info(data, rndis::INFO_CHECKSUM,
                                  (tcp ? rndis::CHECKSUM_TX_TCP : rndis::CHECKSUM_TX_UDP) | 1u | l4 << 16);
}

} // namespace

TEST_CASE("netvsp: transmitted TCP and UDP packets get the checksum their per-packet information asks for")
{
    Harness h;
    h.bring_up();
    for (bool ipv6 : {false, true})
        for (bool tcp : {false, true}) {
            const std::vector<u8> seeded = ip_frame(ipv6, tcp, 333, false, true);
            const u32 l4 = ipv6 ? 54 : 34;
            CHECK(h.send_rndis(rndis_packet_with_checksum(seeded, tcp, l4), nvsp::CHANNEL_DATA) ==
                  nvsp::STATUS_SUCCESS);
            REQUIRE_FALSE(h.sent.empty());
            CHECK(h.sent.back() == ip_frame(ipv6, tcp, 333, true));
        }
    // A checksum field beyond the frame: refused, nothing sent.
    const size_t sent = h.sent.size();
    CHECK(h.send_rndis(rndis_packet_with_checksum(ip_frame(false, true, 0, false, true), true, 50),
                       nvsp::CHANNEL_DATA) == nvsp::STATUS_FAIL);
    CHECK(h.sent.size() == sent);
}

TEST_CASE("netvsp: a large send is cut into MSS-sized TCP segments whose IP and TCP checksums add up")
{
    Harness h;
    h.bring_up();
    for (bool ipv6 : {false, true}) {
        h.sent.clear();
        const u32 l4 = ipv6 ? 54 : 34;
        // NDIS_TCP_LARGE_SEND_OFFLOAD_V2 as netvsc_xmit fills it.
        const u32 lso = 1448u | l4 << 20 | 1u << 30 | (ipv6 ? 1u << 31 : 0);
        const std::vector<u8> packet = ip_frame(ipv6, true, 4000, false, true);
        CHECK(h.send_rndis(rndis_packet_with_info(packet, rndis::INFO_LARGE_SEND, lso), nvsp::CHANNEL_DATA) ==
              nvsp::STATUS_SUCCESS);
        REQUIRE(h.sent.size() == 3);
        std::vector<u8> payload;
        for (const std::vector<u8>& s : h.sent) {
            const std::span<const u8> b(s);
            CHECK(s.size() <= 14 + (ipv6 ? 40u : 20u) + 20 + 1448);
            if (!ipv6)
                CHECK(net::checksum_finish(net::checksum_add(b.subspan(14, 20))) == 0);
            u64 sum = net::checksum_add(ipv6 ? b.subspan(22, 32) : b.subspan(26, 8)) + 6 + (s.size() - l4);
            CHECK(net::checksum_finish(net::checksum_add(b.subspan(l4), sum)) == 0);
            payload.insert(payload.end(), s.begin() + l4 + 20, s.end());
        }
        CHECK(std::equal(payload.begin(), payload.end(), packet.begin() + l4 + 20, packet.end()));
    }
    CHECK(h.vsp.counters().large_sends == 2);
    // A header offset that is not the TCP header's: refused, nothing sent.
    h.sent.clear();
    CHECK(h.send_rndis(rndis_packet_with_info(ip_frame(false, true, 4000, false), rndis::INFO_LARGE_SEND,
                                              1448u | 40u << 20 | 1u << 30),
                       nvsp::CHANNEL_DATA) == nvsp::STATUS_FAIL);
    CHECK(h.sent.empty());
}

TEST_CASE("netvsp: a received frame whose checksum the host verified carries that in its per-packet information")
{
    Harness h;
    h.bring_up();
    struct Case {
        bool ipv6, tcp, good;
        u32 expected;
    };
    for (const Case c : {Case{false, true, true, rndis::CHECKSUM_RX_TCP_OK}, Case{false, false, true, rndis::CHECKSUM_RX_UDP_OK},
                         Case{true, true, true, rndis::CHECKSUM_RX_TCP_OK}, Case{false, true, false, 0},
                         Case{true, false, false, 0}}) {
        const std::vector<u8> f = ip_frame(c.ipv6, c.tcp, 500, c.good);
        h.vsp.receive(f);
        std::optional<Harness::Received> r = h.receive_packet();
        REQUIRE(r);
        const u32 data_offset = load_le32(r->message, rndis::PACKET_DATA_OFFSET);
        REQUIRE(u64{8} + data_offset + f.size() == r->message.size());
        CHECK(std::equal(f.begin(), f.end(), r->message.begin() + 8 + data_offset));
        if (!c.expected) {
            CHECK(data_offset == rndis::PACKET_SIZE); // the guest checks it
            CHECK(load_le32(r->message, rndis::PACKET_INFO_OFFSET) == 0);
        } else {
            CHECK(load_le32(r->message, rndis::PACKET_INFO_OFFSET) == rndis::PACKET_SIZE);
            CHECK(load_le32(r->message, rndis::PACKET_INFO_LENGTH) == 16);
            CHECK(load_le32(r->message, 44) == 16); // size
            CHECK(load_le32(r->message, 48) == 0);  // TCPIP_CHKSUM_PKTINFO
            CHECK(load_le32(r->message, 52) == 12); // its value's offset
            CHECK(load_le32(r->message, 56) == c.expected);
        }
        h.complete_receive(r->transaction_id);
    }
}

TEST_CASE("netvsp: the link going down and up reaches the guest as media indications")
{
    Harness h;
    h.bring_up();
    h.vsp.set_link_up(false);
    std::optional<Harness::Received> r = h.receive_packet();
    REQUIRE(r);
    CHECK(load_le32(r->message, 0) == rndis::INDICATE_STATUS);
    CHECK(load_le32(r->message, 4) == 20);
    CHECK(load_le32(r->message, 8) == rndis::STATUS_MEDIA_DISCONNECT);
    h.complete_receive(r->transaction_id);
    CHECK(load_le32(query_value(h.query(rndis::GEN_MEDIA_CONNECT_STATUS)), 0) == 1);
    // No frames either way while the cable is out.
    h.vsp.receive(frame(MAC, 100, 1));
    CHECK_FALSE(h.receive_packet());
    CHECK(h.send_rndis(rndis_packet(frame(MAC, 100, 1)), nvsp::CHANNEL_DATA) == nvsp::STATUS_SUCCESS);
    CHECK(h.sent.empty());
    h.vsp.set_link_up(true);
    r = h.receive_packet();
    REQUIRE(r);
    CHECK(load_le32(r->message, 8) == rndis::STATUS_MEDIA_CONNECT);
}

TEST_CASE("netvsp: hostile lengths, offsets and indices are refused and reach nothing beyond the buffers")
{
    Harness h;
    h.bring_up();
    const u64 refused = h.vsp.counters().refused;
    auto status = [&](std::initializer_list<std::pair<unsigned, u32>> fields, const std::vector<u8>& extra = {}) {
        std::vector<u8> c = h.request(nvsp_message(nvsp::SEND_RNDIS_PACKET, fields), extra);
        REQUIRE(c.size() >= 8);
        return load_le32(c, 4);
    };
    // Send-buffer section index beyond the buffer, a size beyond the section.
    CHECK(status({{8, SEND_PAGES * 4096 / Netvsp::SEND_SECTION_SIZE}, {12, 60}}) == nvsp::STATUS_FAIL);
    CHECK(status({{8, 0}, {12, Netvsp::SEND_SECTION_SIZE + 1}}) == nvsp::STATUS_FAIL);
    // RNDIS lengths: longer than the transfer, shorter than a header, zero.
    std::vector<u8> bad = rndis_packet(frame(MAC, 100, 1));
    store_le32(bad, 4, static_cast<u32>(bad.size() + 8));
    h.write_send_section(0, bad);
    CHECK(status({{8, 0}, {12, static_cast<u32>(bad.size())}}) == nvsp::STATUS_FAIL);
    store_le32(bad, 4, 4);
    h.write_send_section(0, bad);
    CHECK(status({{8, 0}, {12, static_cast<u32>(bad.size())}}) == nvsp::STATUS_FAIL);
    // A data offset and length that run past the message (and wrap in 32 bits).
    bad = rndis_packet(frame(MAC, 100, 1));
    store_le32(bad, rndis::PACKET_DATA_OFFSET, 0xFFFFFFF0);
    h.write_send_section(0, bad);
    CHECK(status({{8, 0}, {12, static_cast<u32>(bad.size())}}) == nvsp::STATUS_FAIL);
    bad = rndis_packet(frame(MAC, 100, 1));
    store_le32(bad, rndis::PACKET_DATA_LENGTH, 0xFFFFFFF0);
    h.write_send_section(0, bad);
    CHECK(status({{8, 0}, {12, static_cast<u32>(bad.size())}}) == nvsp::STATUS_FAIL);
    // A SET whose information runs past the message.
    std::vector<u8> set = rndis_request(rndis::SET, 3, rndis::GEN_CURRENT_PACKET_FILTER, le32(0x20));
    store_le32(set, rndis::REQUEST_INFO_OFFSET, 0xFFFFFFFC);
    CHECK(load_le32(h.control(set), 12) == rndis::STATUS_INVALID_DATA);
    CHECK(h.vsp.packet_filter() != 0x20);
    // No ranges, a range count beyond the packet, a transfer beyond the limit.
    CHECK(status({{8, nvsp::NO_SECTION}}) == nvsp::STATUS_FAIL);
    std::vector<u8> ranges = Harness::range(100);
    store_le32(ranges, 4, 1000);
    CHECK(status({{8, nvsp::NO_SECTION}}, ranges) == nvsp::STATUS_FAIL);
    CHECK(status({{8, nvsp::NO_SECTION}}, Harness::range(Netvsp::MAX_TRANSFER + 1)) == nvsp::STATUS_FAIL);
    // Completions of receive packets that were never sent.
    REQUIRE(h.guest_write(PACKET_COMPLETION, 0xDEAD, nvsp_message(nvsp::SEND_RNDIS_PACKET_COMPLETE)));
    h.vsp.signaled();
    // Unknown messages and packet types.
    CHECK(h.request(nvsp_message(999)).empty());
    REQUIRE(h.guest_write(PACKET_DATA_USING_TRANSFER_PAGES, 1, nvsp_message(nvsp::SEND_RNDIS_PACKET), 0,
                          std::vector<u8>(16)));
    h.vsp.signaled();
    CHECK(h.sent.empty());
    CHECK(h.vsp.counters().refused >= refused + 12);
    // The channel still works.
    CHECK(h.send_rndis(rndis_packet(frame(MAC, 100, 1)), nvsp::CHANNEL_DATA) == nvsp::STATUS_SUCCESS);
    CHECK(h.sent.size() == 1);
}

TEST_CASE("netvsp: a revoked receive buffer takes no frames and its sections are forgotten")
{
    Harness h;
    h.bring_up();
    h.vsp.receive(frame(MAC, 100, 1));
    REQUIRE(h.receive_packet());
    CHECK(h.request(nvsp_message(nvsp::REVOKE_RECEIVE_BUFFER, {{4, RECEIVE_BUFFER_ID}}), {}, 0).empty());
    CHECK(h.vsp.sections_in_flight() == 0);
    h.vsp.receive(frame(MAC, 100, 1));
    CHECK_FALSE(h.receive_packet());
}

TEST_CASE("netvsp: a saved channel with frames in flight loads, and the guest completes them after")
{
    Harness h;
    h.bring_up();
    h.vsp.receive(frame(MAC, 200, 1));
    h.vsp.receive(frame(MAC, 300, 2));
    std::optional<Harness::Received> first = h.receive_packet(), second = h.receive_packet();
    REQUIRE(first);
    REQUIRE(second);
    h.vsp.set_link_up(false); // its indication takes a third section
    StateVisitor saver = StateVisitor::saver();
    h.vsp.visit_state(saver);
    REQUIRE(saver.ok());

    unsigned interrupts = 0;
    std::vector<std::vector<u8>> sent;
    Netvsp loaded(h.memory, MAC, [&](u32 handle) -> const std::vector<u64>* { return &h.gpadls[handle]; },
                  [&] { ++interrupts; });
    loaded.set_transmit([&](std::span<const u8> f) { sent.emplace_back(f.begin(), f.end()); });
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    loaded.visit_state(loader);
    REQUIRE(loader.ok());
    CHECK(loader.at_end());
    StateVisitor again = StateVisitor::saver();
    loaded.visit_state(again);
    CHECK(again.bytes() == saver.bytes());
    CHECK(loaded.sections_in_flight() == 3); // two frames and the indication
    CHECK(loaded.protocol_version() == nvsp::VERSION_61);
    CHECK(loaded.rndis_initialized());
    CHECK_FALSE(loaded.link_up());

    // The guest goes on with the loaded device: completes a frame, sends one.
    REQUIRE(h.guest_write(PACKET_COMPLETION, first->transaction_id,
                          nvsp_message(nvsp::SEND_RNDIS_PACKET_COMPLETE, {{4, nvsp::STATUS_SUCCESS}})));
    loaded.signaled();
    CHECK(loaded.sections_in_flight() == 2);
    loaded.set_link_up(true);
    const std::vector<u8> f = frame(MAC, 100, 9);
    std::vector<u8> rndis = rndis_packet(f);
    h.write_data(rndis, 0x100);
    REQUIRE(h.guest_write(PACKET_DATA_USING_GPA_DIRECT, 55,
                          nvsp_message(nvsp::SEND_RNDIS_PACKET, {{8, nvsp::NO_SECTION}}),
                          PACKET_FLAG_COMPLETION_REQUESTED, Harness::range(static_cast<u32>(rndis.size()), 0x100)));
    loaded.signaled();
    REQUIRE(sent.size() == 1);
    CHECK(sent[0] == f);
}

TEST_CASE("netvsp: a saved state with an in-flight section outside the buffer does not load")
{
    Harness h;
    h.bring_up();
    h.vsp.receive(frame(MAC, 200, 1));
    StateVisitor saver = StateVisitor::saver();
    h.vsp.visit_state(saver);
    std::vector<u8> bytes = saver.bytes();
    // The section index is the last u32 before the count of waiting control messages (a u32 zero).
    const size_t at = bytes.size() - 8;
    REQUIRE(load_le32(bytes, at) < RECEIVE_PAGES * 4096 / Netvsp::RECEIVE_SECTION_SIZE);
    store_le32(bytes, at, 5000);
    Netvsp loaded(h.memory, MAC, [&](u32 handle) -> const std::vector<u64>* { return &h.gpadls[handle]; }, [] {});
    StateVisitor loader = StateVisitor::loader(bytes);
    loaded.visit_state(loader);
    CHECK_FALSE(loader.ok());
}

namespace {

// Microsoft's RSS key (Linux's netvsc_hash_key) and an IPv4/TCP frame from
// `source` to `destination` (addresses and ports as the hash reads them).
constexpr u8 RSS_KEY[40] = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
                            0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
                            0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

std::vector<u8> tcp4_frame(std::array<u8, 4> source, u16 source_port, std::array<u8, 4> destination,
                           u16 destination_port, u8 protocol = 6)
{
    std::vector<u8> f = frame(MAC, 14 + 20 + 20, 0);
    store_be16(f, 12, 0x0800);
    std::fill(f.begin() + 14, f.end(), 0);
    f[14] = 0x45;
    f[14 + 9] = protocol;
    std::copy(source.begin(), source.end(), f.begin() + 14 + 12);
    std::copy(destination.begin(), destination.end(), f.begin() + 14 + 16);
    store_be16(f, 34, source_port);
    store_be16(f, 36, destination_port);
    return f;
}

// OID_GEN_RECEIVE_SCALE_PARAMETERS as rndis_set_rss_param_msg builds it.
std::vector<u8> rss_parameters(const std::vector<u32>& table, u16 flags = 0)
{
    std::vector<u8> p(rndis::RSS_PARAMETERS_SIZE + 4 * table.size() + sizeof RSS_KEY);
    p[0] = rndis::RSS_PARAMETERS_TYPE;
    p[1] = rndis::RSS_REVISION;
    store_le16(p, 2, rndis::RSS_PARAMETERS_SIZE);
    store_le16(p, rndis::RSS_FLAGS, flags);
    store_le32(p, rndis::RSS_HASH_INFO,
               rndis::HASH_TOEPLITZ | rndis::HASH_IPV4 | rndis::HASH_TCP_IPV4 | rndis::HASH_IPV6 |
                   rndis::HASH_TCP_IPV6);
    store_le16(p, rndis::RSS_TABLE_SIZE, static_cast<u16>(4 * table.size()));
    store_le32(p, rndis::RSS_TABLE_OFFSET, rndis::RSS_PARAMETERS_SIZE);
    store_le16(p, rndis::RSS_KEY_SIZE, sizeof RSS_KEY);
    store_le32(p, rndis::RSS_KEY_OFFSET, static_cast<u32>(rndis::RSS_PARAMETERS_SIZE + 4 * table.size()));
    for (size_t i = 0; i < table.size(); ++i)
        store_le32(p, rndis::RSS_PARAMETERS_SIZE + 4 * i, table[i]);
    std::copy(std::begin(RSS_KEY), std::end(RSS_KEY), p.end() - sizeof RSS_KEY);
    return p;
}

} // namespace

TEST_CASE("netvsp: the Toeplitz hash gives the values of Microsoft's RSS verification table")
{
    struct Case {
        std::array<u8, 4> source;
        u16 source_port;
        std::array<u8, 4> destination;
        u16 destination_port;
        u32 ip, tcp;
    };
    const Case cases[] = {
        {{66, 9, 149, 187}, 2794, {161, 142, 100, 80}, 1766, 0x323e8fc2, 0x51ccc178},
        {{199, 92, 111, 2}, 14230, {65, 69, 140, 83}, 4739, 0xd718262a, 0xc626b0ea},
        {{24, 19, 198, 95}, 12898, {12, 22, 207, 184}, 38024, 0xd2d0a5de, 0x5c2b394a},
        {{38, 27, 205, 30}, 48228, {209, 142, 163, 6}, 2217, 0x82989176, 0xafc7327f},
        {{153, 39, 163, 191}, 44251, {202, 188, 127, 2}, 1303, 0x5d1809c5, 0x10e828a2},
    };
    for (const Case& c : cases) {
        std::vector<u8> input(c.source.begin(), c.source.end());
        input.insert(input.end(), c.destination.begin(), c.destination.end());
        CHECK(toeplitz_hash(RSS_KEY, input) == c.ip);
        input.resize(12);
        store_be16(input, 8, c.source_port);
        store_be16(input, 10, c.destination_port);
        CHECK(toeplitz_hash(RSS_KEY, input) == c.tcp);
    }
}

TEST_CASE("netvsp: vRSS: sub-channels on request, frames on the channel the table names, answers on the asking one")
{
    Harness h(1);
    h.bring_up();
    // One receive queue per channel it can have; Linux's ITAB_NUM entries.
    const std::vector<u8> caps = query_value(h.query(rndis::GEN_RECEIVE_SCALE_CAPABILITIES));
    REQUIRE(caps.size() == rndis::RSS_CAPABILITIES_SIZE);
    CHECK(caps[0] == rndis::RSS_CAPABILITIES_TYPE);
    CHECK(load_le32(caps, 12) == 2);
    CHECK(load_le16(caps, 16) == 128);
    // More than it has is refused; one is granted and asked of the server.
    std::vector<u8> c = h.request(nvsp_message(nvsp::SUBCHANNEL, {{4, nvsp::SUBCHANNEL_ALLOCATE}, {8, 2}}));
    CHECK(load_le32(c, 4) == nvsp::STATUS_FAIL);
    c = h.request(nvsp_message(nvsp::SUBCHANNEL, {{4, nvsp::SUBCHANNEL_ALLOCATE}, {8, 1}}));
    REQUIRE(c.size() >= 12);
    CHECK(load_le32(c, 0) == nvsp::SUBCHANNEL);
    CHECK(load_le32(c, 4) == nvsp::STATUS_SUCCESS);
    CHECK(load_le32(c, 8) == 1);
    CHECK(h.offers == std::vector<std::pair<u32, u16>>{{1, 1}});
    CHECK(h.vsp.sub_channel(2) == nullptr);
    VmbusServer::Device* sub = h.vsp.sub_channel(1);
    REQUIRE(sub);
    GuestRings sub_rings;
    sub_rings.place(h.memory, 0x180);
    VmbusServer::OpenRequest open;
    open.relid = 7;
    open.ring_pfns = sub_rings.pfns;
    open.downstream_offset = GuestRings::OUT_PAGES;
    REQUIRE(sub->open(open));

    // The table sends the hash of the first test vector's flow to channel 1,
    // everything else to 0; an entry past the channels is refused.
    std::vector<u32> table(128, 0);
    table[0x51ccc178 % 128] = 1;
    std::vector<u32> bad = table;
    bad[5] = 2;
    CHECK(load_le32(h.control(rndis_request(rndis::SET, 3, rndis::GEN_RECEIVE_SCALE_PARAMETERS, rss_parameters(bad))),
                    12) == rndis::STATUS_INVALID_DATA);
    CHECK(load_le32(h.control(rndis_request(rndis::SET, 4, rndis::GEN_RECEIVE_SCALE_PARAMETERS, rss_parameters(table))),
                    12) == rndis::STATUS_SUCCESS);
    CHECK(h.vsp.rss_table() == table);

    const std::vector<u8> to_one = tcp4_frame({66, 9, 149, 187}, 2794, {161, 142, 100, 80}, 1766);
    h.vsp.receive(to_one);
    h.vsp.receive(tcp4_frame({199, 92, 111, 2}, 14230, {65, 69, 140, 83}, 4739));
    h.vsp.receive(tcp4_frame({66, 9, 149, 187}, 2794, {161, 142, 100, 80}, 1766, 17)); // UDP: the addresses only
    h.vsp.receive(frame(MAC, 60, 3)); // not IP
    CHECK(h.vsp.frames_on(1) == 1);
    CHECK(h.vsp.frames_on(0) == 3);
    for (int i = 0; i < 3; ++i) { // the primary's, taken and completed
        std::optional<Harness::Received> r = h.receive_packet();
        REQUIRE(r);
        h.complete_receive(r->transaction_id);
    }
    std::vector<u8> extra;
    auto p = sub_rings.guest_read(&extra);
    REQUIRE(p);
    CHECK(std::get<0>(*p) == PACKET_DATA_USING_TRANSFER_PAGES);
    REQUIRE(extra.size() == 16);
    std::vector<u8> message(load_le32(extra, 8));
    REQUIRE(h.memory.read(RECEIVE_PFN * 4096 + load_le32(extra, 12), message.data(), message.size()));
    CHECK(std::equal(to_one.begin(), to_one.end(), message.end() - static_cast<long>(to_one.size())));
    CHECK_FALSE(sub_rings.guest_read());
    // Its completion may come on the sub-channel.
    REQUIRE(sub_rings.guest_write(PACKET_COMPLETION, std::get<1>(*p),
                                  nvsp_message(nvsp::SEND_RNDIS_PACKET_COMPLETE, {{4, nvsp::STATUS_SUCCESS}})));
    sub->signaled();
    CHECK(h.vsp.sections_in_flight() == 0);

    // A frame sent on the sub-channel is answered there.
    const std::vector<u8> f = frame(MAC, 100, 9);
    const std::vector<u8> rndis = rndis_packet(f);
    h.write_data(rndis, 0x100);
    REQUIRE(sub_rings.guest_write(PACKET_DATA_USING_GPA_DIRECT, 77,
                                  nvsp_message(nvsp::SEND_RNDIS_PACKET, {{8, nvsp::NO_SECTION}}),
                                  PACKET_FLAG_COMPLETION_REQUESTED,
                                  Harness::range(static_cast<u32>(rndis.size()), 0x100)));
    sub->signaled();
    REQUIRE(h.sent.size() == 1);
    CHECK(h.sent[0] == f);
    p = sub_rings.guest_read();
    REQUIRE(p);
    CHECK(std::get<0>(*p) == PACKET_COMPLETION);
    CHECK(std::get<1>(*p) == 77);
    CHECK(h.vsp.requests_on(1) == 2);

    // Saved and loaded with both channels and the table.
    StateVisitor saver = StateVisitor::saver();
    h.vsp.visit_state(saver);
    Netvsp loaded(h.memory, MAC, [&](u32 handle) -> const std::vector<u64>* { return &h.gpadls[handle]; },
                  Netvsp::Links{[](u32) {}, nullptr}, 1);
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    loaded.visit_state(loader);
    REQUIRE(loader.ok());
    CHECK(loader.at_end());
    StateVisitor again = StateVisitor::saver();
    loaded.visit_state(again);
    CHECK(again.bytes() == saver.bytes());
    CHECK(loaded.rss_table() == table);
    loaded.receive(to_one);
    CHECK(loaded.frames_on(1) == 1);
    // An adapter with no sub-channels does not load it.
    Netvsp single(h.memory, MAC, [&](u32 handle) -> const std::vector<u64>* { return &h.gpadls[handle]; }, [] {});
    StateVisitor refused = StateVisitor::loader(saver.bytes());
    single.visit_state(refused);
    CHECK_FALSE(refused.ok());

    // RSS off: everything on the primary.
    CHECK(load_le32(h.control(rndis_request(rndis::SET, 5, rndis::GEN_RECEIVE_SCALE_PARAMETERS,
                                            rss_parameters(table, rndis::RSS_DISABLE))),
                    12) == rndis::STATUS_SUCCESS);
    h.vsp.receive(to_one);
    CHECK(h.vsp.frames_on(1) == 1);
}

TEST_CASE("netvsp: without sub-channels, or before NVSP 5, none are granted")
{
    Harness single;
    single.bring_up();
    std::vector<u8> c = single.request(nvsp_message(nvsp::SUBCHANNEL, {{4, nvsp::SUBCHANNEL_ALLOCATE}, {8, 1}}));
    CHECK(load_le32(c, 4) == nvsp::STATUS_FAIL);
    CHECK(load_le32(single.control(rndis_request(rndis::SET, 3, rndis::GEN_RECEIVE_SCALE_PARAMETERS,
                                                 rss_parameters(std::vector<u32>(128, 0)))),
                    12) == rndis::STATUS_NOT_SUPPORTED);
    Harness old(3);
    old.bring_up(nvsp::VERSION_4);
    c = old.request(nvsp_message(nvsp::SUBCHANNEL, {{4, nvsp::SUBCHANNEL_ALLOCATE}, {8, 1}}));
    CHECK(load_le32(c, 4) == nvsp::STATUS_FAIL);
    CHECK(old.offers.empty());
}
