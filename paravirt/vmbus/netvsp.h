// netvsp: the host end of Hyper-V's synthetic network adapter (docs/network.md
// "netvsc"), the VMBus device Linux's hv_netvsc drives. On its ring the guest speaks NVSP, the network VSP
// protocol: version negotiation (6.1 down to 2), the NDIS version and
// configuration, then a receive buffer and a send buffer, each a GPADL of its
// own. Inside NVSP travels RNDIS: control messages (initialize, query, set,
// reset, keepalive) and data packets, each an Ethernet frame.
//
//   guest -> host: SEND_RNDIS_PKT, the RNDIS bytes in a send-buffer section
//                  and/or GPA-direct page ranges; the host completes it.
//   host -> guest: a transfer-page packet naming sections of the receive
//                  buffer, each holding one RNDIS message (a frame, a control
//                  completion or a status indication); the guest completes
//                  it and the sections are free again.
//
// vRSS: with sub-channels to offer (one per further vCPU, as Hyper-V), the
// host announces receive-side scaling; the guest asks for sub-channels
// (NVSP SUBCHANNEL), opens them and sets the hash key and indirection table
// (OID_GEN_RECEIVE_SCALE_PARAMETERS). Each received frame then goes on the
// channel the table names for its Toeplitz hash (IPv4/IPv6 addresses, and
// TCP ports), so that each vCPU takes its share of the interrupts; frames
// that do not hash, and RNDIS control messages, go on the primary. The
// guest sends on any channel and is answered on that one. Both buffers
// and the receive sections are the device's, shared by its channels.
//
// Wire layouts: Linux's drivers/net/hyperv/hyperv_net.h and
// include/linux/rndis.h (facts only). Everything the guest writes is checked
// where it is used: a bad length, offset, section index or RNDIS message is
// refused (the protocol's failure status, or dropped and counted) and never
// reaches beyond the buffers the guest gave.
#pragma once

#include "mmu/base/state_visitor.h"
#include "paravirt/vmbus/vmbus_ring.h"
#include "paravirt/vmbus/vmbus_server.h"
#include "platform/net/rx_filter.h"

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace nvsp {
// Protocol versions (NVSP_PROTOCOL_VERSION_*), newest first: what Linux 6.1
// tries, one at a time with min = max.
constexpr u32 VERSION_1 = 0x2, VERSION_2 = 0x30002, VERSION_4 = 0x40000, VERSION_5 = 0x50000,
              VERSION_6 = 0x60000, VERSION_61 = 0x60001;
constexpr std::array<u32, 6> SUPPORTED_VERSIONS = {VERSION_61, VERSION_6, VERSION_5,
                                                   VERSION_4,  VERSION_2, VERSION_1};
// Message types (nvsp_message_header.msg_type).
enum MessageType : u32 {
    INIT = 1,
    INIT_COMPLETE = 2,
    SEND_NDIS_VERSION = 100,
    SEND_RECEIVE_BUFFER = 101,
    SEND_RECEIVE_BUFFER_COMPLETE = 102,
    REVOKE_RECEIVE_BUFFER = 103,
    SEND_SEND_BUFFER = 104,
    SEND_SEND_BUFFER_COMPLETE = 105,
    REVOKE_SEND_BUFFER = 106,
    SEND_RNDIS_PACKET = 107,
    SEND_RNDIS_PACKET_COMPLETE = 108,
    SEND_NDIS_CONFIG = 125,
    SUBCHANNEL = 133,
};
// Status values (NVSP_STAT_*).
constexpr u32 STATUS_SUCCESS = 1, STATUS_FAIL = 2;
// Every NVSP message is the 4-byte type and a union; Linux sends and reads 40.
constexpr unsigned MESSAGE_SIZE = 40;
// Field offsets from the message's start.
constexpr unsigned INIT_MIN_VERSION = 4, INIT_MAX_VERSION = 8;
constexpr unsigned INIT_COMPLETE_VERSION = 4, INIT_COMPLETE_MAX_MDL_CHAIN = 8, INIT_COMPLETE_STATUS = 12;
constexpr unsigned NDIS_VERSION_MAJOR = 4, NDIS_VERSION_MINOR = 8;
constexpr unsigned NDIS_CONFIG_MTU = 4;
constexpr unsigned BUFFER_GPADL = 4, BUFFER_ID = 8; // SEND_*_BUFFER {u32 gpadl, u16 id}
constexpr unsigned REVOKE_ID = 4;
// SEND_RECEIVE_BUFFER_COMPLETE: status, num_sections, then sections of
// {offset, sub_alloc_size, num_sub_allocs, end_offset}.
constexpr unsigned RECEIVE_COMPLETE_STATUS = 4, RECEIVE_COMPLETE_SECTIONS = 8, RECEIVE_SECTION = 12;
constexpr unsigned SEND_COMPLETE_STATUS = 4, SEND_COMPLETE_SECTION_SIZE = 8;
// SEND_RNDIS_PACKET: channel type (0 data, 1 control), the send-buffer section
// index (NO_SECTION: none) and the bytes used in it.
constexpr unsigned RNDIS_CHANNEL_TYPE = 4, RNDIS_SECTION_INDEX = 8, RNDIS_SECTION_SIZE = 12;
constexpr unsigned RNDIS_COMPLETE_STATUS = 4;
constexpr u32 CHANNEL_DATA = 0, CHANNEL_CONTROL = 1;
constexpr u32 NO_SECTION = 0xFFFFFFFF;
// SUBCHANNEL (NVSP 5 on): the request {op, count}, ALLOCATE the only op;
// the completion {status, count granted}.
constexpr unsigned SUBCHANNEL_OP = 4, SUBCHANNEL_COUNT = 8;
constexpr u32 SUBCHANNEL_ALLOCATE = 1;
// The network device's class GUID (Linux's HV_NIC_GUID).
inline constexpr const char* NIC_CLASS_GUID = "f8615163-df3e-46c5-913f-f2d2f965ed0e";
} // namespace nvsp

namespace rndis {
// Message types (RNDIS_MSG_*); completions have bit 31 set.
enum MessageType : u32 {
    PACKET = 1,
    INITIALIZE = 2,
    HALT = 3,
    QUERY = 4,
    SET = 5,
    RESET = 6,
    INDICATE_STATUS = 7,
    KEEPALIVE = 8,
    COMPLETION = 0x80000000,
};
constexpr unsigned HEADER_SIZE = 8; // {u32 type, u32 length of the whole message}
// rndis_packet after the header: data_offset, data_len, oob offset, length and
// count, per-packet-info offset and length, vc_handle, reserved; its offsets
// count from the rndis_packet, not from the header.
constexpr unsigned PACKET_SIZE = 36;
constexpr unsigned PACKET_DATA_OFFSET = 8, PACKET_DATA_LENGTH = 12, PACKET_INFO_OFFSET = 28,
                   PACKET_INFO_LENGTH = 32;
// A per-packet information record: {size, type (bit 31: internal), offset of
// its value}; TCPIP_CHKSUM_PKTINFO (type 0) holds one u32. Transmit bits:
// IPv4 0, IPv6 1, TCP 2, UDP 3, the L4 header's offset in bits 16-25;
// receive bits: TCP checksum succeeded 3, UDP 4.
constexpr unsigned INFO_HEADER_SIZE = 12, CHECKSUM_INFO_SIZE = INFO_HEADER_SIZE + 4;
constexpr u32 INFO_CHECKSUM = 0, INFO_LARGE_SEND = 2; // TCPIP_CHKSUM_PKTINFO, TCP_LARGESEND_PKTINFO
constexpr u32 CHECKSUM_TX_TCP = 1u << 2, CHECKSUM_TX_UDP = 1u << 3, CHECKSUM_RX_TCP_OK = 1u << 3,
              CHECKSUM_RX_UDP_OK = 1u << 4;
// Requests: request id @8; QUERY and SET: oid @12, info length @16, info
// offset @20 (from byte 8).
constexpr unsigned REQUEST_ID = 8, REQUEST_OID = 12, REQUEST_INFO_LENGTH = 16, REQUEST_INFO_OFFSET = 20;
constexpr unsigned QUERY_SIZE = HEADER_SIZE + 20, SET_SIZE = HEADER_SIZE + 20;
constexpr unsigned QUERY_COMPLETE_SIZE = HEADER_SIZE + 16; // id, status, info length, info offset
constexpr u32 STATUS_SUCCESS = 0, STATUS_FAILURE = 0xC0000001, STATUS_INVALID_DATA = 0xC0010015,
              STATUS_NOT_SUPPORTED = 0xC00000BB, STATUS_MEDIA_CONNECT = 0x4001000B,
              STATUS_MEDIA_DISCONNECT = 0x4001000C;
// Object identifiers the host answers (NDIS; Linux's rndis.h and hyperv_net.h).
enum Oid : u32 {
    GEN_SUPPORTED_LIST = 0x00010101,
    GEN_HARDWARE_STATUS = 0x00010102,
    GEN_MEDIA_SUPPORTED = 0x00010103,
    GEN_MEDIA_IN_USE = 0x00010104,
    GEN_MAXIMUM_FRAME_SIZE = 0x00010106,
    GEN_LINK_SPEED = 0x00010107,
    GEN_CURRENT_PACKET_FILTER = 0x0001010E,
    GEN_MAXIMUM_TOTAL_SIZE = 0x00010111,
    GEN_MEDIA_CONNECT_STATUS = 0x00010114,
    GEN_RECEIVE_SCALE_CAPABILITIES = 0x00010203,
    GEN_RECEIVE_SCALE_PARAMETERS = 0x00010204,
    GEN_FRIENDLY_NAME = 0x00020216,
    PERMANENT_ADDRESS = 0x01010101,
    CURRENT_ADDRESS = 0x01010102,
    MULTICAST_LIST = 0x01010103,
    OFFLOAD_PARAMETERS = 0xFC01020C,
    OFFLOAD_HARDWARE_CAPABILITIES = 0xFC01020D,
};
// Receive-side scaling. NDIS_RECEIVE_SCALE_CAPABILITIES (revision 2,
// packed): {type 0x88, revision, u16 size}, capability flags, interrupt
// messages, receive queues, u16 indirection table entries.
constexpr u8 RSS_CAPABILITIES_TYPE = 0x88, RSS_PARAMETERS_TYPE = 0x89, RSS_REVISION = 2;
constexpr unsigned RSS_CAPABILITIES_SIZE = 18;
constexpr u32 RSS_CAPS_HASH_TCP_IPV4 = 0x100, RSS_CAPS_HASH_TCP_IPV6 = 0x200;
// NDIS_RECEIVE_SCALE_PARAMETERS (natural alignment, 40 bytes): header,
// u16 flags @4, u32 hash information @8, u16 table size in bytes @12, u32
// its offset @16, u16 key size @20, u32 its offset @24; offsets from the
// structure's start. Flags: what stays unchanged, and RSS off.
constexpr unsigned RSS_FLAGS = 4, RSS_HASH_INFO = 8, RSS_TABLE_SIZE = 12, RSS_TABLE_OFFSET = 16,
                   RSS_KEY_SIZE = 20, RSS_KEY_OFFSET = 24, RSS_PARAMETERS_SIZE = 40;
constexpr u16 RSS_HASH_INFO_UNCHANGED = 0x2, RSS_TABLE_UNCHANGED = 0x4, RSS_KEY_UNCHANGED = 0x8,
              RSS_DISABLE = 0x10;
// Hash information: Toeplitz over IPv4 and IPv6 addresses, with the TCP ports.
constexpr u32 HASH_TOEPLITZ = 0x1, HASH_IPV4 = 0x100, HASH_TCP_IPV4 = 0x200, HASH_IPV6 = 0x400,
              HASH_TCP_IPV6 = 0x1000;
// The largest indirection table (entries) and key (bytes) NDIS 6.30 has.
constexpr unsigned RSS_MAX_TABLE = 128, RSS_KEY_BYTES = 40;
// NDIS_PACKET_TYPE_* bits of the packet filter.
constexpr u32 FILTER_DIRECTED = 0x1, FILTER_MULTICAST = 0x2, FILTER_ALL_MULTICAST = 0x4,
              FILTER_BROADCAST = 0x8, FILTER_PROMISCUOUS = 0x20;
} // namespace rndis

// The Toeplitz hash of `input` with `key` (Microsoft's RSS hash; the key
// holds at least input.size() + 4 bytes).
u32 toeplitz_hash(std::span<const u8> key, std::span<const u8> input);

class Netvsp final : public VmbusServer::Device {
public:
    using Mac = std::array<u8, 6>;
    using Transmit = std::function<void(std::span<const u8> frame)>;
    // The pages of a GPADL the guest made for this channel, by its handle;
    // null when there is no such complete GPADL (VmbusServer::gpadl_pages).
    using GpadlPages = std::function<const std::vector<u64>*(u32 handle)>;

    // The receive buffer is cut into sections of this size (Linux sizes its
    // buffer in them: NETVSC_RECV_SECTION_SIZE), each one RNDIS message; the
    // send buffer into sections of SEND_SECTION_SIZE.
    static constexpr u32 RECEIVE_SECTION_SIZE = 1728;
    static constexpr u32 SEND_SECTION_SIZE = 6144;
    // The largest RNDIS transfer a guest may send in one NVSP packet (a
    // 64 KiB frame and its headers); the largest frame the host delivers
    // fits one receive section with its RNDIS header.
    static constexpr u32 MAX_TRANSFER = 0x10000 + 0x1000;
    static constexpr u32 MAX_RECEIVE_FRAME =
        RECEIVE_SECTION_SIZE - rndis::HEADER_SIZE - rndis::PACKET_SIZE - rndis::CHECKSUM_INFO_SIZE;
    static constexpr u32 MTU = 1500;
    // RNDIS messages waiting for a free receive section (control
    // completions, status indications), at most; and completions waiting
    // for room in the ring (the guest's ring holds about as many requests).
    static constexpr size_t MAX_CONTROL_BACKLOG = 256;
    static constexpr size_t MAX_COMPLETION_BACKLOG = 16384;
    // Receive sections at most (a 1.7 GiB buffer).
    static constexpr u32 MAX_RECEIVE_SECTIONS = 1u << 20;

    struct Counters {
        u64 tx_frames = 0;
        u64 rx_frames = 0;
        u64 rx_dropped = 0; // no buffer, no free section, a full ring, filtered, link down
        u64 refused = 0;    // malformed or impossible guest requests
        u64 large_sends = 0; // packets the host cut into segments (LSO)
    };

    // What the device needs of the VMBus server: interrupting the guest
    // for one of its channels (VmbusServer::signal_guest) and offering
    // sub-channels of its primary (VmbusServer::offer_sub_channels).
    struct Links {
        std::function<void(u32 relid)> signal_guest;
        std::function<bool(u32 primary, u16 count)> offer_sub_channels;
    };
    static constexpr u16 MAX_SUB_CHANNELS = 63;

    // One channel: `signal_guest` interrupts the guest for it.
    Netvsp(GuestMemory memory, const Mac& mac, GpadlPages gpadl_pages, std::function<void()> signal_guest);
    // Up to `max_sub_channels` (at most MAX_SUB_CHANNELS) sub-channels for
    // vRSS; none: RSS is not announced.
    Netvsp(GuestMemory memory, const Mac& mac, GpadlPages gpadl_pages, Links links, u16 max_sub_channels);
    ~Netvsp() override;

    // Where transmitted frames go (without the FCS).
    void set_transmit(Transmit transmit) { m_transmit = std::move(transmit); }
    // A frame from the network: filtered, copied into a free receive section
    // and announced; dropped when there is none (never held).
    void receive(std::span<const u8> frame);
    // The cable: the guest gets a media connect or disconnect indication.
    void set_link_up(bool up);
    bool link_up() const { return m_link_up; }

    bool open(const VmbusServer::OpenRequest& request) override;
    void close() override;
    void signaled() override;
    // Sub-channel `index` (1 .. max_sub_channels), served like the primary.
    VmbusServer::Device* sub_channel(u16 index) override;

    u32 protocol_version() const { return m_version; }
    bool rndis_initialized() const { return m_rndis_initialized; }
    u32 packet_filter() const { return m_packet_filter; }
    // Receive sections the guest holds (announced, not yet completed).
    size_t sections_in_flight() const { return m_in_flight.size(); }
    const Counters& counters() const { return m_counters; }
    // Frames received and requests taken on channel `index` (0: the primary).
    u64 frames_on(u16 index) const;
    u64 requests_on(u16 index) const;
    // The receive filter as the guest's packet filter (OID
    // GEN_CURRENT_PACKET_FILTER) has it (QMP query-rx-filter).
    RxFilter rx_filter() const;
    // The indirection table the guest set (empty: RSS off).
    const std::vector<u32>& rss_table() const { return m_rss_table; }

    // The channel's state: rings, versions, both buffers, the RNDIS state,
    // the receive sections the guest holds and what waits to be sent.
    void visit_state(StateVisitor& v);

private:
    class Channel; // one channel: its rings and the completions it owes
    struct Buffer {
        u32 gpadl = 0;
        u16 id = 0;
        std::vector<u64> pfns; // empty: none
        u64 size() const { return pfns.size() * PAGE_SIZE; }
    };

    // netvsp.cpp: NVSP, the buffers, the data path, the rings.
    Channel& channel(u16 index);
    void handle(Channel& channel, const vmbus::Packet& packet);
    void handle_completion(const vmbus::Packet& packet);
    std::vector<u8> allocate_sub_channels(Channel& channel, std::span<const u8> m);
    // Each takes the NVSP message, zero-extended to MESSAGE_SIZE, and
    // returns the completion's body (empty: none).
    std::vector<u8> init(std::span<const u8> m);
    std::vector<u8> send_receive_buffer(std::span<const u8> m);
    std::vector<u8> send_send_buffer(std::span<const u8> m);
    std::vector<u8> send_rndis_packet(const vmbus::Packet& packet, std::span<const u8> m);
    bool take_buffer(Buffer& buffer, std::span<const u8> m);
    bool copy_buffer(const Buffer& buffer, u64 offset, std::span<u8> bytes, bool to_guest);
    bool gather(const vmbus::Packet& packet, std::span<const u8> m, std::vector<u8>& bytes);
    bool accepts(std::span<const u8> frame) const;
    // Puts one RNDIS message into a free receive section and announces it;
    // false when there is no section, the copy fails or the ring is full.
    bool deliver(std::vector<u8>& message, u32 channel_type, u16 channel_index = 0);
    void flush_control();
    void complete(Channel& channel, u64 transaction_id, std::vector<u8> body);
    void reset_channel();
    // The channel a received frame goes on (vRSS), 0 when RSS is off or
    // the frame does not hash.
    u16 rss_channel(std::span<const u8> frame) const;

    // netvsp_rndis.cpp: the RNDIS messages in a transfer, one after another.
    bool process_rndis(std::span<const u8> bytes);
    bool rndis_packet(std::span<const u8> message);
    void rndis_initialize(std::span<const u8> message);
    void rndis_query(std::span<const u8> message);
    void rndis_set(std::span<const u8> message);
    std::optional<std::vector<u8>> query_oid(u32 oid) const;
    // A transmitted packet's per-packet information record of `type` (its
    // u32 value), if it has one.
    static std::optional<u32> packet_info(std::span<const u8> message, u32 type);
    // Checksum offload: fills the L4 checksum `request` (a
    // TCPIP_CHKSUM_PKTINFO) asks for (false: it cannot be done), and the
    // receive information for a frame whose checksum the host verified.
    static bool fill_checksum(u32 request, std::vector<u8>& frame);
    static u32 verified_checksum(std::span<const u8> frame);
    u32 set_oid(u32 oid, std::span<const u8> info);
    // netvsp_rss.cpp: receive-side scaling.
    std::vector<u8> rss_capabilities() const;
    u32 set_rss_parameters(std::span<const u8> info);
    void send_control(std::vector<u8> message);
    void indicate_link();

    GuestMemory m_memory;
    Mac m_mac;
    GpadlPages m_gpadl_pages;
    Links m_links;
    u16 m_max_sub_channels = 0;
    Transmit m_transmit;
    std::vector<std::unique_ptr<Channel>> m_channels; // [0] the primary; made as the guest asks
    u32 m_version = 0; // negotiated NVSP version; 0 before INIT
    u32 m_ndis_version = 0;
    u32 m_mtu = 0; // from SEND_NDIS_CONFIG, 0 before
    Buffer m_receive;
    Buffer m_send;
    bool m_rndis_initialized = false;
    u32 m_packet_filter = 0;
    bool m_link_up = true;
    // Receive sections the guest holds, by the transfer-page packet's
    // transaction id; m_section_busy mirrors them.
    std::map<u64, u32> m_in_flight;
    std::vector<u8> m_section_busy;
    u32 m_next_section = 0; // where the search for a free one starts
    u64 m_next_transaction = 1;
    std::deque<std::vector<u8>> m_control; // RNDIS messages without a section yet
    // vRSS as the guest set it: the hash types, the key, the table of
    // channel indexes (empty: off).
    u32 m_rss_hash_info = 0;
    std::vector<u8> m_rss_key;
    std::vector<u32> m_rss_table;
    Counters m_counters;
};
