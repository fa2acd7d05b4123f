#include "platform/net/tcp_segmentation.h"

#include "platform/net/frame_bytes.h"

#include <algorithm>
#include <vector>

namespace net {

namespace {

constexpr size_t ETH_HEADER = 14, IPV4_MIN = 20, IPV6_HEADER = 40, TCP_MIN = 20;
constexpr u16 ETHERTYPE_IPV4 = 0x0800, ETHERTYPE_IPV6 = 0x86DD;
constexpr u8 PROTOCOL_TCP = 6;
constexpr u8 TCP_FIN = 0x01, TCP_PSH = 0x08, TCP_CWR = 0x80;

// The TCP checksum of `segment`'s TCP part (its field zeroed first) over
// the IPv4 or IPv6 pseudo-header.
void fill_tcp_checksum(std::vector<u8>& segment, size_t tcp, bool ipv4)
{
    store_be16(segment, tcp + 16, 0);
    const size_t tcp_length = segment.size() - tcp;
    const std::span<const u8> bytes(segment);
    u64 sum = ipv4 ? checksum_add(bytes.subspan(ETH_HEADER + 12, 8)) : checksum_add(bytes.subspan(ETH_HEADER + 8, 32));
    sum += PROTOCOL_TCP + tcp_length;
    sum = checksum_add(bytes.subspan(tcp), sum);
    store_be16(segment, tcp + 16, checksum_finish(sum));
}

} // namespace

bool segment_tcp(std::span<const u8> packet, size_t tcp, u32 mss,
                 const std::function<void(std::span<const u8> segment)>& emit)
{
    if (mss < MIN_SEGMENT_SIZE || packet.size() < ETH_HEADER + IPV4_MIN)
        return false;
    const u16 type = load_be16(packet, 12);
    const bool ipv4 = type == ETHERTYPE_IPV4;
    if (ipv4) {
        const size_t header = (packet[ETH_HEADER] & 0xF) * 4u;
        if ((packet[ETH_HEADER] >> 4) != 4 || header < IPV4_MIN || tcp != ETH_HEADER + header ||
            packet[ETH_HEADER + 9] != PROTOCOL_TCP)
            return false;
    } else if (type != ETHERTYPE_IPV6 || packet.size() < ETH_HEADER + IPV6_HEADER ||
               (packet[ETH_HEADER] >> 4) != 6 || tcp < ETH_HEADER + IPV6_HEADER) {
        return false;
    }
    if (tcp + TCP_MIN > packet.size())
        return false;
    const size_t headers = tcp + (packet[tcp + 12] >> 4) * 4u;
    if (headers < tcp + TCP_MIN || headers > packet.size())
        return false;
    const size_t payload = packet.size() - headers;
    if (headers - ETH_HEADER + std::min<size_t>(mss, payload) > 0xFFFF)
        return false; // a segment whose IP length would not fit its field
    const u32 sequence = load_be32(packet, tcp + 4);
    const u16 identification = ipv4 ? load_be16(packet, ETH_HEADER + 4) : 0;
    const u8 flags = packet[tcp + 13];
    std::vector<u8> segment;
    size_t offset = 0;
    u16 index = 0;
    do { // an empty payload (a bare FIN, say) is one segment
        const size_t length = std::min<size_t>(mss, payload - offset);
        const bool first = offset == 0, last = offset + length == payload;
        segment.assign(packet.begin(), packet.begin() + static_cast<std::ptrdiff_t>(headers));
        segment.insert(segment.end(), packet.begin() + static_cast<std::ptrdiff_t>(headers + offset),
                       packet.begin() + static_cast<std::ptrdiff_t>(headers + offset + length));
        if (ipv4) {
            store_be16(segment, ETH_HEADER + 2, static_cast<u16>(segment.size() - ETH_HEADER));
            store_be16(segment, ETH_HEADER + 4, static_cast<u16>(identification + index));
            store_be16(segment, ETH_HEADER + 10, 0);
            const size_t header = (segment[ETH_HEADER] & 0xF) * 4u;
            store_be16(segment, ETH_HEADER + 10,
                       checksum_finish(checksum_add(std::span<const u8>(segment).subspan(ETH_HEADER, header))));
        } else {
            store_be16(segment, ETH_HEADER + 4, static_cast<u16>(segment.size() - ETH_HEADER - IPV6_HEADER));
        }
        store_be32(segment, tcp + 4, sequence + static_cast<u32>(offset));
        segment[tcp + 13] = static_cast<u8>(flags & ~((last ? 0 : TCP_FIN | TCP_PSH) | (first ? 0 : TCP_CWR)));
        fill_tcp_checksum(segment, tcp, ipv4);
        emit(segment);
        offset += length;
        ++index;
    } while (offset < payload);
    return true;
}

} // namespace net
