// netvsp's RNDIS: the messages inside one SEND_RNDIS_PACKET transfer, and
// the control requests Linux's rndis_filter.c makes (initialize, the OIDs it
// queries and sets). Answers go back through the receive buffer like frames.
#include "paravirt/vmbus/netvsp.h"

#include "platform/net/frame_bytes.h"
#include "platform/net/tcp_segmentation.h"

namespace {

// RNDIS_MSG_INIT_C after the header: request id, status, version 1.0,
// device flags, medium, packets per message, transfer size, alignment
// factor, address-family list offset and size.
constexpr unsigned INITIALIZE_COMPLETE_SIZE = rndis::HEADER_SIZE + 44;
constexpr u32 DF_CONNECTIONLESS = 1, MEDIUM_802_3 = 0;
// A send section may hold several packets, each padded to 1 << 3 bytes
// (Linux batches them in one section: netvsc_send's multi-send data).
constexpr u32 MAX_PACKETS_PER_MESSAGE = 8, PACKET_ALIGNMENT_FACTOR = 3;
// OID_GEN_LINK_SPEED counts 100 bit/s: 10 Gbit/s, as Hyper-V's switch says.
constexpr u32 LINK_SPEED = 100'000'000;
constexpr u32 MEDIA_CONNECTED = 0, MEDIA_DISCONNECTED = 1;

// NDIS_OFFLOAD (OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES): an object header
// {type 0xA7, revision, size} and the capabilities, whose size grows with
// the revision (NDIS 6.0: 112 bytes, 6.1: 144, 6.30: 156).
constexpr u8 OBJECT_TYPE_OFFLOAD = 0xA7;
// NDIS_OFFLOAD_PARAMETERS (OID_TCP_OFFLOAD_PARAMETERS): after the 4-byte
// header, one byte per offload (IPv4/TCP/UDP checksums, LSO v1, IPsec,
// LSO v2, connection offload) at 4-14 and RSC at 22-23; 0 means no
// change, 1 disabled, more enables.
constexpr unsigned OFFLOAD_SWITCHES_FIRST = 4, OFFLOAD_SWITCHES_LAST = 14, OFFLOAD_RSC_FIRST = 22,
                   OFFLOAD_RSC_LAST = 23;
// Of those, the TCP and UDP checksums over IPv4 and IPv6 (5-8) may be on
// (up to 4: both ways), and large send v2 for IPv4 and IPv6 (11-12, 2:
// enabled); the IPv4 header checksum (4), LSO v1, IPsec, connection
// offload and RSC may not.
constexpr unsigned OFFLOAD_L4_CHECKSUMS_FIRST = 5, OFFLOAD_L4_CHECKSUMS_LAST = 8, OFFLOAD_LSO_V2_FIRST = 11,
                   OFFLOAD_LSO_V2_LAST = 12;
constexpr u8 OFFLOAD_TX_RX_ENABLED = 4, OFFLOAD_LSO_V2_ENABLED = 2;
// NDIS_OFFLOAD's checksum part: {IPv4 transmit encapsulation, IPv4
// transmit capabilities, IPv4 receive encapsulation and capabilities, the
// same four for IPv6} from byte 4.
constexpr unsigned CAPS_IP4_TX = 4, CAPS_IP6_TX = 20;
constexpr u32 ENCAP_802_3 = 2;
constexpr u32 CSUM_TCP_OPTIONS = 0x4, CSUM_TCP = 0x10, CSUM_UDP = 0x40, CSUM_IP6_EXTENSIONS = 0x1;
// NDIS_OFFLOAD's large send v2 part from byte 80: {IPv4 encapsulation,
// maximum size, minimum segments, IPv6 encapsulation, maximum size,
// minimum segments, IPv6 options (extension headers, TCP options)}. The
// largest packet is Hyper-V's; Linux makes it its GSO limit.
constexpr unsigned CAPS_LSO_V2 = 80;
constexpr u32 LSO_MAX_SIZE = 62780, LSO_MIN_SEGMENTS = 2, LSO_IP6_OPTIONS = 0x1 | 0x4;
// Ethernet and IP fields the checksums need (RFC 791, RFC 8200, RFC 768/793).
constexpr unsigned ETH_HEADER = 14;
constexpr u16 ETHERTYPE_IPV4 = 0x0800, ETHERTYPE_IPV6 = 0x86DD;
constexpr u8 PROTOCOL_TCP = 6, PROTOCOL_UDP = 17;
constexpr unsigned TCP_CHECKSUM = 16, UDP_CHECKSUM = 6;

std::vector<u8> u32_value(u32 value)
{
    std::vector<u8> v(4);
    store_le32(v, 0, value);
    return v;
}

} // namespace

bool Netvsp::process_rndis(std::span<const u8> bytes)
{
    size_t at = 0;
    while (at < bytes.size()) {
        if (bytes.size() - at < rndis::HEADER_SIZE)
            return false;
        const u32 type = load_le32(bytes, at), length = load_le32(bytes, at + 4);
        if (length < rndis::HEADER_SIZE || length > bytes.size() - at)
            return false;
        const std::span<const u8> message = bytes.subspan(at, length);
        switch (type) {
        case rndis::PACKET:
            if (!rndis_packet(message))
                return false;
            break;
        case rndis::INITIALIZE:
            rndis_initialize(message);
            break;
        case rndis::HALT:
            m_rndis_initialized = false;
            m_packet_filter = 0;
            break;
        case rndis::QUERY:
            rndis_query(message);
            break;
        case rndis::SET:
            rndis_set(message);
            break;
        case rndis::RESET: { // {status, addressing reset}: nothing to reset
            std::vector<u8> reply(rndis::HEADER_SIZE + 8);
            store_le32(reply, 0, rndis::RESET | rndis::COMPLETION);
            store_le32(reply, 4, static_cast<u32>(reply.size()));
            send_control(std::move(reply));
            break;
        }
        case rndis::KEEPALIVE: {
            if (length < rndis::HEADER_SIZE + 4)
                return false;
            std::vector<u8> reply(rndis::HEADER_SIZE + 8);
            store_le32(reply, 0, rndis::KEEPALIVE | rndis::COMPLETION);
            store_le32(reply, 4, static_cast<u32>(reply.size()));
            store_le32(reply, rndis::REQUEST_ID, load_le32(message, rndis::REQUEST_ID));
            send_control(std::move(reply));
            break;
        }
        default:
            return false;
        }
        at += length;
    }
    return true;
}

bool Netvsp::rndis_packet(std::span<const u8> message)
{
    if (message.size() < rndis::HEADER_SIZE + rndis::PACKET_SIZE)
        return false;
    // Offsets count from the rndis_packet, after the header.
    const u64 start = u64{rndis::HEADER_SIZE} + load_le32(message, rndis::PACKET_DATA_OFFSET);
    const u32 length = load_le32(message, rndis::PACKET_DATA_LENGTH);
    if (start > message.size() || length > message.size() - start || length < 14)
        return false;
    // Per-packet information: checksums to fill in, or a large send to
    // cut; a VLAN tag or a hash is ignored (the tag is lost:
    // docs/network.md).
    if (!m_link_up || !m_transmit)
        return true;
    std::vector<u8> frame(message.begin() + static_cast<std::ptrdiff_t>(start),
                          message.begin() + static_cast<std::ptrdiff_t>(start + length));
    const std::optional<u32> large_send = packet_info(message, rndis::INFO_LARGE_SEND);
    if (large_send) {
        // NDIS_TCP_LARGE_SEND_OFFLOAD_V2 (Linux's only kind): the MSS in
        // bits 0-19, the TCP header's offset in 20-29; IP lengths and
        // checksums are the host's to fill.
        const u32 mss = *large_send & 0xFFFFF, tcp = (*large_send >> 20) & 0x3FF;
        const bool cut = net::segment_tcp(frame, tcp, mss, [this](std::span<const u8> segment) {
            m_transmit(segment);
            ++m_counters.tx_frames;
        });
        m_counters.large_sends += cut;
        return cut;
    }
    if (const std::optional<u32> checksum = packet_info(message, rndis::INFO_CHECKSUM))
        if (!fill_checksum(*checksum, frame))
            return false;
    m_transmit(frame);
    ++m_counters.tx_frames;
    return true;
}

std::optional<u32> Netvsp::packet_info(std::span<const u8> message, u32 wanted)
{
    // The per-packet information records, inside the message; a record
    // too short to step over ends the walk.
    const u64 info = u64{rndis::HEADER_SIZE} + load_le32(message, rndis::PACKET_INFO_OFFSET);
    const u64 info_length = load_le32(message, rndis::PACKET_INFO_LENGTH);
    if (info == rndis::HEADER_SIZE || info > message.size() || info_length > message.size() - info)
        return std::nullopt;
    for (u64 at = info; at + rndis::INFO_HEADER_SIZE <= info + info_length;) {
        const u32 size = load_le32(message, at), type = load_le32(message, at + 4);
        const u32 value_offset = load_le32(message, at + 8);
        if (size < rndis::INFO_HEADER_SIZE || size > info + info_length - at)
            return std::nullopt;
        if (type == wanted && value_offset >= rndis::INFO_HEADER_SIZE && value_offset <= size - 4)
            return load_le32(message, at + value_offset);
        at += size;
    }
    return std::nullopt;
}

bool Netvsp::fill_checksum(u32 request, std::vector<u8>& frame)
{
    if (!(request & (rndis::CHECKSUM_TX_TCP | rndis::CHECKSUM_TX_UDP)))
        return true;
    // The stack left the pseudo-header's sum in the field (NDIS checksum
    // offload, as the e1000's TXSM); the host sums the rest of the segment
    // over it.
    const bool tcp = request & rndis::CHECKSUM_TX_TCP;
    const size_t l4 = (request >> 16) & 0x3FF, field = l4 + (tcp ? TCP_CHECKSUM : UDP_CHECKSUM);
    if (field + 2 > frame.size())
        return false;
    const std::span<const u8> segment = std::span<const u8>(frame).subspan(l4);
    u16 sum = net::checksum_finish(net::checksum_add(segment));
    if (!tcp && sum == 0)
        sum = 0xFFFF; // UDP's "no checksum" is 0 (RFC 768)
    store_be16(frame, field, sum);
    return true;
}

u32 Netvsp::verified_checksum(std::span<const u8> frame)
{
    // What the host can vouch for: an unfragmented IPv4 packet or an IPv6
    // one without extension headers, carrying TCP or UDP whose checksum over
    // the pseudo-header adds up. Anything else the guest checks itself.
    if (frame.size() < ETH_HEADER + 20)
        return 0;
    const u16 type = load_be16(frame, 12);
    u64 sum = 0;
    size_t l4 = 0, l4_length = 0;
    u8 protocol = 0;
    if (type == ETHERTYPE_IPV4) {
        const size_t header = (frame[ETH_HEADER] & 0xF) * 4u;
        const size_t total = load_be16(frame, ETH_HEADER + 2);
        if ((frame[ETH_HEADER] >> 4) != 4 || header < 20 || total < header || ETH_HEADER + total > frame.size() ||
            (load_be16(frame, ETH_HEADER + 6) & 0x3FFF))
            return 0;
        protocol = frame[ETH_HEADER + 9];
        l4 = ETH_HEADER + header;
        l4_length = total - header;
        sum = net::checksum_add(frame.subspan(ETH_HEADER + 12, 8));
    } else if (type == ETHERTYPE_IPV6) {
        if (frame.size() < ETH_HEADER + 40 || (frame[ETH_HEADER] >> 4) != 6)
            return 0;
        protocol = frame[ETH_HEADER + 6];
        l4 = ETH_HEADER + 40;
        l4_length = load_be16(frame, ETH_HEADER + 4);
        if (l4 + l4_length > frame.size())
            return 0;
        sum = net::checksum_add(frame.subspan(ETH_HEADER + 8, 32));
    } else {
        return 0;
    }
    const bool tcp = protocol == PROTOCOL_TCP;
    if ((!tcp && protocol != PROTOCOL_UDP) || l4_length < (tcp ? 20u : 8u))
        return 0;
    if (!tcp && load_be16(frame, l4 + UDP_CHECKSUM) == 0)
        return 0; // sent without a checksum: nothing to vouch for
    sum += protocol + l4_length;
    sum = net::checksum_add(frame.subspan(l4, l4_length), sum);
    if (net::checksum_finish(sum) != 0)
        return 0;
    return tcp ? rndis::CHECKSUM_RX_TCP_OK : rndis::CHECKSUM_RX_UDP_OK;
}

void Netvsp::rndis_initialize(std::span<const u8> message)
{
    if (message.size() < rndis::HEADER_SIZE + 16) {
        ++m_counters.refused;
        return;
    }
    std::vector<u8> reply(INITIALIZE_COMPLETE_SIZE);
    store_le32(reply, 0, rndis::INITIALIZE | rndis::COMPLETION);
    store_le32(reply, 4, INITIALIZE_COMPLETE_SIZE);
    store_le32(reply, rndis::REQUEST_ID, load_le32(message, rndis::REQUEST_ID));
    store_le32(reply, 12, rndis::STATUS_SUCCESS);
    store_le32(reply, 16, 1); // RNDIS 1.0
    store_le32(reply, 20, 0);
    store_le32(reply, 24, DF_CONNECTIONLESS);
    store_le32(reply, 28, MEDIUM_802_3);
    store_le32(reply, 32, MAX_PACKETS_PER_MESSAGE);
    store_le32(reply, 36, MAX_TRANSFER);
    store_le32(reply, 40, PACKET_ALIGNMENT_FACTOR);
    m_rndis_initialized = true;
    m_packet_filter = 0;
    send_control(std::move(reply));
}

void Netvsp::rndis_query(std::span<const u8> message)
{
    if (message.size() < rndis::QUERY_SIZE) {
        ++m_counters.refused;
        return;
    }
    const std::optional<std::vector<u8>> value = query_oid(load_le32(message, rndis::REQUEST_OID));
    const size_t length = value ? value->size() : 0;
    std::vector<u8> reply(rndis::QUERY_COMPLETE_SIZE + length);
    store_le32(reply, 0, rndis::QUERY | rndis::COMPLETION);
    store_le32(reply, 4, static_cast<u32>(reply.size()));
    store_le32(reply, rndis::REQUEST_ID, load_le32(message, rndis::REQUEST_ID));
    store_le32(reply, 12, value ? rndis::STATUS_SUCCESS : rndis::STATUS_NOT_SUPPORTED);
    store_le32(reply, 16, static_cast<u32>(length));
    // The information follows the completion; its offset counts from byte 8
    // and Linux checks it even when there is none.
    store_le32(reply, 20, rndis::QUERY_COMPLETE_SIZE - rndis::HEADER_SIZE);
    if (value)
        std::copy(value->begin(), value->end(), reply.begin() + rndis::QUERY_COMPLETE_SIZE);
    send_control(std::move(reply));
}

std::optional<std::vector<u8>> Netvsp::query_oid(u32 oid) const
{
    switch (oid) {
    case rndis::GEN_SUPPORTED_LIST: {
        static constexpr u32 supported[] = {
            rndis::GEN_SUPPORTED_LIST,       rndis::GEN_HARDWARE_STATUS,      rndis::GEN_MEDIA_SUPPORTED,
            rndis::GEN_MEDIA_IN_USE,         rndis::GEN_MAXIMUM_FRAME_SIZE,   rndis::GEN_LINK_SPEED,
            rndis::GEN_CURRENT_PACKET_FILTER, rndis::GEN_MAXIMUM_TOTAL_SIZE,  rndis::GEN_MEDIA_CONNECT_STATUS,
            rndis::PERMANENT_ADDRESS,        rndis::CURRENT_ADDRESS,          rndis::OFFLOAD_HARDWARE_CAPABILITIES};
        std::vector<u8> list(sizeof supported);
        for (size_t i = 0; i < std::size(supported); ++i)
            store_le32(list, 4 * i, supported[i]);
        return list;
    }
    case rndis::GEN_HARDWARE_STATUS: // ready
    case rndis::GEN_MEDIA_SUPPORTED:
    case rndis::GEN_MEDIA_IN_USE:
        return u32_value(MEDIUM_802_3);
    case rndis::GEN_MAXIMUM_FRAME_SIZE: // Linux takes it as the MTU
        return u32_value(MTU);
    case rndis::GEN_MAXIMUM_TOTAL_SIZE:
        return u32_value(MTU + 14);
    case rndis::GEN_LINK_SPEED:
        return u32_value(LINK_SPEED);
    case rndis::GEN_MEDIA_CONNECT_STATUS:
        return u32_value(m_link_up ? MEDIA_CONNECTED : MEDIA_DISCONNECTED);
    case rndis::GEN_CURRENT_PACKET_FILTER:
        return u32_value(m_packet_filter);
    case rndis::PERMANENT_ADDRESS:
    case rndis::CURRENT_ADDRESS:
        return std::vector<u8>(m_mac.begin(), m_mac.end());
    case rndis::OFFLOAD_HARDWARE_CAPABILITIES: {
        // TCP and UDP checksums both ways over IPv4 and IPv6 (the host
        // fills them in transmitted packets and vouches for the received
        // ones it verified); not the IPv4 header checksum, which Linux
        // always does itself, nor segmentation (the guest cuts packets to
        // the MTU) or coalescing. The revision and size the guest's NDIS
        // version knows (Linux asks with the same ones and takes no
        // larger answer).
        const u8 revision = m_version >= nvsp::VERSION_5 ? 3 : m_version >= nvsp::VERSION_4 ? 2 : 1;
        std::vector<u8> caps(revision == 3 ? 156 : revision == 2 ? 144 : 112);
        caps[0] = OBJECT_TYPE_OFFLOAD;
        caps[1] = revision;
        store_le16(caps, 2, static_cast<u16>(caps.size()));
        for (unsigned at : {CAPS_IP4_TX, CAPS_IP6_TX}) {
            const u32 extra = at == CAPS_IP4_TX ? 0 : CSUM_IP6_EXTENSIONS;
            store_le32(caps, at, ENCAP_802_3);
            store_le32(caps, at + 4, CSUM_TCP | CSUM_TCP_OPTIONS | CSUM_UDP | extra);
            store_le32(caps, at + 8, ENCAP_802_3);
            store_le32(caps, at + 12, CSUM_TCP | CSUM_UDP);
        }
        // Large send: the host cuts the guest's TCP packets to its MSS
        // (rndis_packet), so the guest's stack hands over up to 62,780 bytes
        // at a time instead of a frame each.
        for (unsigned at : {CAPS_LSO_V2, CAPS_LSO_V2 + 12}) {
            store_le32(caps, at, ENCAP_802_3);
            store_le32(caps, at + 4, LSO_MAX_SIZE);
            store_le32(caps, at + 8, LSO_MIN_SEGMENTS);
        }
        store_le32(caps, CAPS_LSO_V2 + 24, LSO_IP6_OPTIONS);
        return caps;
    }
    case rndis::GEN_RECEIVE_SCALE_CAPABILITIES:
        if (!m_max_sub_channels)
            return std::nullopt; // one channel: the guest does not ask for more
        return rss_capabilities();
    default:
        return std::nullopt;
    }
}

void Netvsp::rndis_set(std::span<const u8> message)
{
    if (message.size() < rndis::SET_SIZE) {
        ++m_counters.refused;
        return;
    }
    const u32 length = load_le32(message, rndis::REQUEST_INFO_LENGTH);
    const u64 offset = u64{rndis::HEADER_SIZE} + load_le32(message, rndis::REQUEST_INFO_OFFSET);
    u32 status = rndis::STATUS_INVALID_DATA;
    if (offset <= message.size() && length <= message.size() - offset)
        status = set_oid(load_le32(message, rndis::REQUEST_OID),
                         message.subspan(static_cast<size_t>(offset), length));
    std::vector<u8> reply(rndis::HEADER_SIZE + 8);
    store_le32(reply, 0, rndis::SET | rndis::COMPLETION);
    store_le32(reply, 4, static_cast<u32>(reply.size()));
    store_le32(reply, rndis::REQUEST_ID, load_le32(message, rndis::REQUEST_ID));
    store_le32(reply, 12, status);
    send_control(std::move(reply));
}

u32 Netvsp::set_oid(u32 oid, std::span<const u8> info)
{
    switch (oid) {
    case rndis::GEN_CURRENT_PACKET_FILTER:
        if (info.size() < 4)
            return rndis::STATUS_INVALID_DATA;
        m_packet_filter = load_le32(info, 0);
        return rndis::STATUS_SUCCESS;
    case rndis::OFFLOAD_PARAMETERS:
        // Turning offloads off (or leaving them) is fine; only the L4
        // checksums can be on.
        if (info.size() < 4)
            return rndis::STATUS_INVALID_DATA;
        for (size_t i = OFFLOAD_SWITCHES_FIRST; i < info.size() && i <= OFFLOAD_RSC_LAST; ++i) {
            const bool checksum = i >= OFFLOAD_L4_CHECKSUMS_FIRST && i <= OFFLOAD_L4_CHECKSUMS_LAST;
            const bool large_send = i >= OFFLOAD_LSO_V2_FIRST && i <= OFFLOAD_LSO_V2_LAST;
            const u8 most = checksum ? OFFLOAD_TX_RX_ENABLED : large_send ? OFFLOAD_LSO_V2_ENABLED : 1;
            if ((i <= OFFLOAD_SWITCHES_LAST || i >= OFFLOAD_RSC_FIRST) && info[i] > most)
                return rndis::STATUS_NOT_SUPPORTED;
        }
        return rndis::STATUS_SUCCESS;
    case rndis::MULTICAST_LIST: // the filter's multicast bits decide
        return rndis::STATUS_SUCCESS;
    case rndis::GEN_RECEIVE_SCALE_PARAMETERS:
        return set_rss_parameters(info);
    default:
        return rndis::STATUS_NOT_SUPPORTED;
    }
}

void Netvsp::indicate_link()
{
    if (!m_rndis_initialized)
        return; // the guest asks for the media status when it initializes
    // RNDIS_MSG_INDICATE {status, buffer length 0, buffer offset 0}.
    std::vector<u8> message(rndis::HEADER_SIZE + 12);
    store_le32(message, 0, rndis::INDICATE_STATUS);
    store_le32(message, 4, static_cast<u32>(message.size()));
    store_le32(message, 8, m_link_up ? rndis::STATUS_MEDIA_CONNECT : rndis::STATUS_MEDIA_DISCONNECT);
    send_control(std::move(message));
}
