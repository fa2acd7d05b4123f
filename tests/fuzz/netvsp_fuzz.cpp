// Fuzz target: netvsp (paravirt/vmbus/netvsp.h) as a hostile guest and
// network drive it. The guest writes NVSP messages on the ring the way
// hv_netvsc does (inband, or GPA-direct with page ranges near its data
// pages), with known message types and buffer GPADLs most of the time and
// any bytes otherwise; it fills send-buffer sections and data pages with
// RNDIS messages (well formed, or with any lengths and offsets), pokes any
// bytes into the ring pages, reads the host's packets and completes the
// receive ones (or a transaction of its choice), re-opens the channel, and
// signals. The network sends frames of any size to the adapter and takes
// its cable out and back. After each save, a load into a fresh device and
// a second save must give the same bytes. Built with libFuzzer
// (scripts/fuzz.sh) and with the seeded driver fuzz_driver.cpp.
#include "paravirt/vmbus/netvsp.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/vmbus_fuzz_guest.h"

#include <map>

namespace {

constexpr u64 RAM = 4ull << 20;
constexpr u64 RING_PFN = 0x100;    // the ring GPADL: 8 pages, 4 each way
constexpr u64 RECEIVE_PFN = 0x200; // 8 pages: 18 receive sections
constexpr u64 SEND_PFN = 0x210;    // 4 pages: 2 send sections
constexpr u64 DATA_PFN = 0x300;    // where page ranges point, mostly
constexpr u64 SUB_RING_PFN = 0x110; // the vRSS sub-channel's ring GPADL: 8 pages
constexpr size_t MAX_STEPS = 1024;
constexpr Netvsp::Mac MAC = {0x00, 0x15, 0x5D, 0x11, 0x22, 0x33};
constexpr u32 KNOWN_MESSAGES[] = {nvsp::INIT,
                                  nvsp::SEND_NDIS_VERSION,
                                  nvsp::SEND_RECEIVE_BUFFER,
                                  nvsp::REVOKE_RECEIVE_BUFFER,
                                  nvsp::SEND_SEND_BUFFER,
                                  nvsp::REVOKE_SEND_BUFFER,
                                  nvsp::SEND_RNDIS_PACKET,
                                  nvsp::SEND_RNDIS_PACKET,
                                  nvsp::SEND_RNDIS_PACKET,
                                  nvsp::SEND_NDIS_CONFIG,
                                  nvsp::SUBCHANNEL};
constexpr u32 KNOWN_OIDS[] = {rndis::GEN_SUPPORTED_LIST,       rndis::GEN_MAXIMUM_FRAME_SIZE,
                              rndis::GEN_LINK_SPEED,           rndis::GEN_CURRENT_PACKET_FILTER,
                              rndis::GEN_MEDIA_CONNECT_STATUS, rndis::GEN_RECEIVE_SCALE_CAPABILITIES,
                              rndis::PERMANENT_ADDRESS,        rndis::OFFLOAD_PARAMETERS,
                              rndis::OFFLOAD_HARDWARE_CAPABILITIES, rndis::MULTICAST_LIST,
                              rndis::GEN_RECEIVE_SCALE_PARAMETERS};

// An RNDIS message as rndis_filter.c or netvsc_xmit builds it, its fields
// from the input, or (sometimes) its lengths and offsets too.
std::vector<u8> rndis_message(FuzzInput& in)
{
    const u8 kind = in.byte();
    const bool wild = (kind & 0xC0) == 0xC0; // one in four
    std::vector<u8> m;
    switch (kind % 6) {
    case 0:
    case 1: { // a packet: header, then a frame
        std::vector<u8> frame = in.bytes(in.byte() % 2 ? in.word() % 1600 : in.byte());
        const bool large_send = in.byte() % 4 == 0;
        if (large_send && frame.size() >= 54) { // IPv4 and TCP headers the segmentation takes, mostly
            store_be16(frame, 12, 0x0800);
            frame[14] = 0x45;
            frame[14 + 9] = 6;
            frame[34 + 12] = static_cast<u8>((5 + in.byte() % 3) << 4);
        }
        m.resize(rndis::HEADER_SIZE + rndis::PACKET_SIZE + frame.size());
        store_le32(m, 0, rndis::PACKET);
        store_le32(m, rndis::PACKET_DATA_OFFSET, wild ? in.dword() : rndis::PACKET_SIZE);
        store_le32(m, rndis::PACKET_DATA_LENGTH, wild ? in.dword() : static_cast<u32>(frame.size()));
        std::copy(frame.begin(), frame.end(), m.begin() + rndis::HEADER_SIZE + rndis::PACKET_SIZE);
        if (large_send || in.byte() % 4 == 0) { // per-packet information somewhere in it (a checksum request or a large send, mostly)
            const u32 at = in.byte() % 64, length = in.byte() % 40;
            store_le32(m, rndis::PACKET_INFO_OFFSET, at);
            store_le32(m, rndis::PACKET_INFO_LENGTH, length);
            if (rndis::HEADER_SIZE + at + rndis::CHECKSUM_INFO_SIZE <= m.size() && in.byte() % 2) {
                store_le32(m, rndis::HEADER_SIZE + at, rndis::CHECKSUM_INFO_SIZE);
                store_le32(m, rndis::HEADER_SIZE + at + 4, large_send ? rndis::INFO_LARGE_SEND : rndis::INFO_CHECKSUM);
                store_le32(m, rndis::HEADER_SIZE + at + 8, rndis::INFO_HEADER_SIZE);
                // A large send's MSS and TCP offset (34) as Linux gives them, or anything.
                store_le32(m, rndis::HEADER_SIZE + at + 12,
                           large_send && in.byte() % 2 ? (in.word() % 2000) | 34u << 20 | 1u << 30 : in.dword());
            }
        }
        break;
    }
    case 2:
        m.resize(24);
        store_le32(m, 0, rndis::INITIALIZE);
        break;
    case 3:
    case 4: { // a query or a set with information
        const std::vector<u8> info = in.bytes(in.byte() % 32);
        m.resize(rndis::QUERY_SIZE + info.size());
        store_le32(m, 0, kind % 6 == 3 ? rndis::QUERY : rndis::SET);
        store_le32(m, rndis::REQUEST_OID, KNOWN_OIDS[in.byte() % std::size(KNOWN_OIDS)]);
        store_le32(m, rndis::REQUEST_INFO_LENGTH, wild ? in.dword() : static_cast<u32>(info.size()));
        store_le32(m, rndis::REQUEST_INFO_OFFSET, wild ? in.dword() : 20);
        std::copy(info.begin(), info.end(), m.begin() + rndis::QUERY_SIZE);
        break;
    }
    default: // any message type and bytes
        m = in.bytes(8 + in.byte() % 40);
        store_le32(m, 0, in.byte() % 10);
        break;
    }
    if (m.size() >= 12)
        store_le32(m, rndis::REQUEST_ID, in.byte());
    store_le32(m, 4, wild && in.byte() % 2 ? in.dword() : static_cast<u32>(m.size()));
    return m;
}

std::vector<u8> nvsp_message_bytes(u32 type)
{
    std::vector<u8> m(nvsp::MESSAGE_SIZE);
    store_le32(m, 0, type);
    return m;
}

// One GPA-direct range of `bytes` bytes at `offset` into the data pages.
std::vector<u8> data_range(u32 offset, u32 bytes)
{
    const u64 pages = (offset + u64{bytes} + PAGE_SIZE - 1) / PAGE_SIZE;
    std::vector<u8> extra(16 + 8 * pages);
    store_le32(extra, 4, 1);
    store_le32(extra, 8, bytes);
    store_le32(extra, 12, offset);
    for (u64 i = 0; i < pages; ++i)
        store_le64(extra, 16 + 8 * i, DATA_PFN + i);
    return extra;
}

// The guest's reader on the host-to-guest ring (header at RING_PFN + 4,
// three data pages): the next packet's type and transaction id, consumed.
std::optional<std::pair<u16, u64>> guest_read(GuestMemory m)
{
    constexpr u32 size = 3 * PAGE_SIZE;
    const u64 header = (RING_PFN + 4) * PAGE_SIZE, data = header + PAGE_SIZE;
    u32 w = 0, r = 0;
    if (!m.read(header, &w, 4) || !m.read(header + 4, &r, 4) || w >= size || r >= size || w == r || (w | r) % 8)
        return std::nullopt;
    u8 d[16];
    for (u32 i = 0; i < 16; ++i)
        (void)m.read(data + (r + i) % size, &d[i], 1);
    const u32 length = load_le16(d, 4) * 8u;
    if (length < 16 || length + 8 > size)
        return std::nullopt;
    const u32 next = (r + length + 8) % size;
    (void)m.write(header + 4, &next, 4);
    return std::make_pair(load_le16(d, 0), load_le64(d, 8));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    FuzzInput in{data, size};
    PhysicalMemory ram{RAM};
    GuestMemory memory{ram};
    std::map<u32, std::vector<u64>> gpadls;
    for (u64 i = 0; i < 8; ++i)
        gpadls[1].push_back(RECEIVE_PFN + i);
    for (u64 i = 0; i < 4; ++i)
        gpadls[2].push_back(SEND_PFN + i);
    gpadls[3] = {1ull << 45, DATA_PFN};    // beyond any address
    gpadls[4] = {RING_PFN + 4, RING_PFN}; // the rings themselves
    gpadls[5] = {RAM / PAGE_SIZE};         // just past RAM
    auto lookup = [&gpadls](u32 handle) -> const std::vector<u64>* {
        auto it = gpadls.find(handle);
        return it == gpadls.end() ? nullptr : &it->second;
    };
    size_t transmitted = 0;
    std::function<std::unique_ptr<Netvsp>()> make = [&] {
        // One vRSS sub-channel, which the server always grants.
        auto vsp = std::make_unique<Netvsp>(memory, MAC, lookup,
                                            Netvsp::Links{[](u32) {}, [](u32, u16) { return true; }}, 1);
        vsp->set_transmit([&transmitted](std::span<const u8> frame) {
            if (frame.size() < 14 || frame.size() > Netvsp::MAX_TRANSFER)
                fail("a transmitted frame of an impossible size");
            transmitted += frame.size();
        });
        return vsp;
    };
    std::unique_ptr<Netvsp> vsp = make();
    if (!vsp->open(ring(RING_PFN, 8, 4)))
        fail("the first open failed");
    std::vector<u64> received; // transaction ids of the host's transfer-page packets
    // Where the guest last put RNDIS bytes, so that a SEND_RNDIS_PACKET can
    // name them exactly (a send section, or a range of the data pages).
    bool last_in_section = false;
    u32 last_place = 0, last_size = 0;
    auto send_rndis = [&](bool in_section, u32 place, u32 bytes, u16 flags) {
        std::vector<u8> body = nvsp_message_bytes(nvsp::SEND_RNDIS_PACKET);
        store_le32(body, 8, in_section ? place : nvsp::NO_SECTION);
        store_le32(body, 12, in_section ? bytes : 0);
        std::vector<u8> extra;
        if (!in_section)
            extra = data_range(place, bytes);
        guest_write(memory, RING_PFN, 3,
                    in_section ? vmbus::PACKET_DATA_INBAND : vmbus::PACKET_DATA_USING_GPA_DIRECT, flags, extra,
                    body, 0x1000 + place);
    };
    for (size_t step = 0; step < MAX_STEPS && !in.done(); ++step) {
        const u8 op = in.byte();
        switch (op % 10) {
        case 0:
        case 1: { // an NVSP message as hv_netvsc writes it, inband or GPA-direct
            std::vector<u8> body = in.bytes(op & 0x40 ? in.byte() % 48 : nvsp::MESSAGE_SIZE);
            if (body.size() >= 16 && (op & 0x10)) {
                const u32 type = KNOWN_MESSAGES[in.byte() % std::size(KNOWN_MESSAGES)];
                store_le32(body, 0, type);
                if (type == nvsp::INIT) {
                    const u32 version = nvsp::SUPPORTED_VERSIONS[in.byte() % nvsp::SUPPORTED_VERSIONS.size()];
                    store_le32(body, 4, version);
                    store_le32(body, 8, version);
                } else if (type == nvsp::SEND_RECEIVE_BUFFER || type == nvsp::SEND_SEND_BUFFER) {
                    store_le32(body, 4, in.byte() % 7);
                } else if (type == nvsp::SEND_RNDIS_PACKET && in.byte() % 4) {
                    store_le32(body, 8, in.byte() % 2 ? nvsp::NO_SECTION : in.byte() % 3);
                    store_le32(body, 12, in.word() % 7000);
                }
            }
            if (body.size() >= 16 && load_le32(body, 0) == nvsp::SEND_RNDIS_PACKET && last_size && in.byte() % 2) {
                send_rndis(last_in_section, last_place, last_size, static_cast<u16>(in.byte() % 2));
                break;
            }
            std::vector<u8> extra;
            if (op & 0x20) { // one or two ranges near the data pages
                const u32 count = 1 + in.byte() % 2;
                extra.resize(8);
                store_le32(extra, 4, count);
                for (u32 r = 0; r < count; ++r) {
                    const u32 offset = in.byte() % 2 ? 0 : in.word() % PAGE_SIZE;
                    const u32 bytes = in.byte() % 2 ? in.word() % 2000 + 1 : in.dword() % 0x20000 + 1;
                    const u64 pages = (offset + u64{bytes} + PAGE_SIZE - 1) / PAGE_SIZE;
                    extra.resize(extra.size() + 8);
                    store_le32(extra, extra.size() - 8, bytes);
                    store_le32(extra, extra.size() - 4, offset);
                    for (u64 i = 0; i < pages && i < 40; ++i) {
                        extra.resize(extra.size() + 8);
                        store_le64(extra, extra.size() - 8, in.byte() % 8 ? DATA_PFN + i : in.dword());
                    }
                }
                if (in.byte() % 4 == 0)
                    extra.resize(extra.size() - 8); // one pfn short
            }
            guest_write(memory, RING_PFN, 3, op & 0x20 ? vmbus::PACKET_DATA_USING_GPA_DIRECT : in.byte() % 12,
                        in.byte() % 4 ? vmbus::PACKET_FLAG_COMPLETION_REQUESTED : 0, extra, body);
            break;
        }
        case 2: { // RNDIS messages in a send section or the data pages, often sent at once
            std::vector<u8> bytes = rndis_message(in);
            while (in.byte() % 3 == 0 && bytes.size() < 6000) { // a batch
                const std::vector<u8> more = rndis_message(in);
                bytes.insert(bytes.end(), more.begin(), more.end());
            }
            last_in_section = op & 0x10;
            last_place = last_in_section ? in.byte() % 3 : in.word() % PAGE_SIZE;
            last_size = static_cast<u32>(bytes.size());
            const u64 at = last_in_section ? SEND_PFN * PAGE_SIZE + u64{last_place} * Netvsp::SEND_SECTION_SIZE
                                           : DATA_PFN * PAGE_SIZE + last_place;
            (void)memory.write(at, bytes.data(), bytes.size());
            if (op & 0x20)
                send_rndis(last_in_section, last_place, last_size, vmbus::PACKET_FLAG_COMPLETION_REQUESTED);
            break;
        }
        case 3:
            vsp->signaled();
            break;
        case 4: { // the guest reads the host's packets; completes receives now or later
            while (auto packet = guest_read(memory))
                if (packet->first == vmbus::PACKET_DATA_USING_TRANSFER_PAGES)
                    received.push_back(packet->second);
            const size_t n = in.byte() % 8;
            for (size_t i = 0; i < n && !received.empty(); ++i) {
                const size_t pick = in.byte() % received.size();
                std::vector<u8> body(8);
                store_le32(body, 0, in.byte() % 8 ? u32{nvsp::SEND_RNDIS_PACKET_COMPLETE} : in.byte());
                store_le32(body, 4, nvsp::STATUS_SUCCESS);
                guest_write(memory, RING_PFN, 3, vmbus::PACKET_COMPLETION, 0, {}, body,
                            in.byte() % 8 ? received[pick] : in.dword());
                received.erase(received.begin() + static_cast<std::ptrdiff_t>(pick));
            }
            vsp->signaled();
            break;
        }
        case 5: { // a frame from the network, often to the adapter's address
            std::vector<u8> frame = in.bytes(in.byte() % 2 ? in.word() % 2000 : in.byte() % 64);
            if (frame.size() >= 6 && in.byte() % 2)
                std::copy(MAC.begin(), MAC.end(), frame.begin());
            vsp->receive(frame);
            break;
        }
        case 6:
            vsp->set_link_up(op & 0x10);
            if (VmbusServer::Device* sub = op & 0x20 ? vsp->sub_channel(1) : nullptr) {
                // The guest opens (or closes) the sub-channel and signals it.
                if (op & 0x40)
                    sub->close();
                else
                    (void)sub->open(ring(SUB_RING_PFN, 8, 4));
                sub->signaled();
            }
            break;
        case 7: { // close and open again, on the usual pages or the guest's choice
            vsp->close();
            received.clear();
            VmbusServer::OpenRequest r = ring(RING_PFN, 8, 4);
            if (op & 0x10)
                for (u64& pfn : r.ring_pfns)
                    pfn = in.byte() % 4 ? pfn : in.dword();
            r.downstream_offset = op & 0x20 ? in.byte() % 10 : 4;
            (void)vsp->open(r);
            break;
        }
        case 8: // save, load, save; then go on with the loaded device
            vsp = round_trip<Netvsp>(*vsp, make);
            break;
        case 9:
            if (op & 0x10) { // any bytes anywhere in the ring pages
                const u64 at = RING_PFN * PAGE_SIZE + in.word() % (8 * PAGE_SIZE);
                const std::vector<u8> bytes = in.bytes(in.byte() % 16);
                (void)memory.write(at, bytes.data(), bytes.size());
                break;
            }
            // hv_netvsc's bring-up in one go: a version, both buffers,
            // RNDIS initialize and a packet filter from the input.
            for (u32 type : {u32{nvsp::INIT}, u32{nvsp::SEND_NDIS_CONFIG}, u32{nvsp::SEND_RECEIVE_BUFFER},
                             u32{nvsp::SEND_SEND_BUFFER}}) {
                std::vector<u8> body = nvsp_message_bytes(type);
                const u32 version = nvsp::SUPPORTED_VERSIONS[in.byte() % nvsp::SUPPORTED_VERSIONS.size()];
                store_le32(body, 4, type == nvsp::INIT ? version : type == nvsp::SEND_RECEIVE_BUFFER ? 1 : 2);
                store_le32(body, 8, type == nvsp::INIT ? version : 0xCAFE);
                guest_write(memory, RING_PFN, 3, vmbus::PACKET_DATA_INBAND, vmbus::PACKET_FLAG_COMPLETION_REQUESTED,
                            {}, body, type);
            }
            for (u32 section : {0u, 1u}) {
                std::vector<u8> m(section ? rndis::SET_SIZE + 4 : 24);
                store_le32(m, 0, section ? rndis::SET : rndis::INITIALIZE);
                store_le32(m, 4, static_cast<u32>(m.size()));
                if (section) {
                    store_le32(m, rndis::REQUEST_OID, rndis::GEN_CURRENT_PACKET_FILTER);
                    store_le32(m, rndis::REQUEST_INFO_LENGTH, 4);
                    store_le32(m, rndis::REQUEST_INFO_OFFSET, 20);
                    store_le32(m, rndis::SET_SIZE, in.byte());
                }
                (void)memory.write(SEND_PFN * PAGE_SIZE + section * Netvsp::SEND_SECTION_SIZE, m.data(), m.size());
                send_rndis(true, section, static_cast<u32>(m.size()), vmbus::PACKET_FLAG_COMPLETION_REQUESTED);
            }
            vsp->signaled();
            break;
        }
        if (vsp->sections_in_flight() > 18)
            fail("more receive sections in flight than the buffer has");
    }
    return 0;
}
