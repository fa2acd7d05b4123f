// The 82540EM's transmit ring (8254x SDM 3.3): legacy descriptors, and
// extended ones: a context descriptor that says where checksums go and how
// TCP segmentation cuts (3.3.6), then data descriptors (3.3.7). A packet is
// gathered from its descriptors up to EOP, then checksummed or cut into
// segments and handed to the transmit callback.
#include "platform/net/e1000.h"

#include "platform/net/frame_bytes.h"

using namespace e1000;
using namespace net;

namespace {

constexpr u8 TCP_FIN = 0x01, TCP_PSH = 0x08;
constexpr u32 IPV4_HEADER = 20, IPV6_HEADER = 40, TCP_HEADER = 20, UDP_HEADER = 8;
constexpr u8 BROADCAST[6] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

// Writes the checksum of frame[start, end] (end inclusive; 0: to the end of
// the frame) plus `extra` at `offset`, as the context descriptor's CSS, CSO
// and CSE ask (SDM 3.3.6). Offsets outside the frame do nothing: the guest
// gets what it described.
void insert_checksum(std::span<u8> frame, u32 start, u32 offset, u32 end, u64 extra)
{
    if (start >= frame.size() || offset + 2 > frame.size())
        return;
    const size_t stop = end == 0 ? frame.size() : std::min<size_t>(end + 1u, frame.size());
    if (stop <= start)
        return;
    const u64 sum = checksum_add(frame.subspan(start, stop - start), extra);
    // 0 and 0xFFFF are the same one's-complement sum; 0 in a UDP checksum
    // would mean "none" (RFC 768), so a computed 0 goes out as 0xFFFF.
    const u16 checksum = checksum_finish(sum);
    store_be16(frame, offset, checksum == 0 ? 0xFFFF : checksum);
}

} // namespace

void E1000::process_tx_ring()
{
    // Descriptors from TDH up to TDT belong to the hardware. A head or tail
    // outside the ring stops it (the guest must reset it); each pass stops
    // after at most one lap, so no value can keep the host here.
    const u64 base = u64(reg(TDBAH)) << 32 | reg(TDBAL);
    if (!(reg(TCTL) & TCTL_EN) || !ring_valid(base, reg(TDLEN), reg(TDH), reg(TDT)))
        return;
    const u32 count = reg(TDLEN) / DESCRIPTOR_SIZE;
    bool done = false;
    while (reg(TDH) != reg(TDT)) {
        if (!process_tx_descriptor(base + u64(reg(TDH)) * DESCRIPTOR_SIZE))
            break; // the descriptor is not in RAM: the ring stalls there
        reg(TDH) = (reg(TDH) + 1) % count;
        done = true;
    }
    if (done)
        set_causes(ICR_TXDW | (reg(TDH) == reg(TDT) ? ICR_TXQE : 0));
}

bool E1000::process_tx_descriptor(u64 address)
{
    std::array<u8, DESCRIPTOR_SIZE> desc{};
    if (!m_memory.read(address, desc.data(), desc.size()))
        return false;
    const u8 command = desc[11];
    const bool extended = command & TXD_DEXT;
    const u8 type = (desc[10] >> 4) & 0xF;
    if (extended && type == DTYP_CONTEXT)
        take_context(desc);
    else if (!extended || type == DTYP_DATA)
        take_data(desc, extended);
    // Report Status: DD in the status byte, in every descriptor format.
    if (command & TXD_RS) {
        const u8 status = static_cast<u8>(desc[12] | TXD_DD);
        (void)m_memory.write(address + 12, &status, 1);
    }
    return true;
}

void E1000::take_context(const std::array<u8, 16>& desc)
{
    m_context.ipcss = desc[0];
    m_context.ipcso = desc[1];
    m_context.ipcse = static_cast<u16>(load_le(desc, 2, 2));
    m_context.tucss = desc[4];
    m_context.tucso = desc[5];
    m_context.tucse = static_cast<u16>(load_le(desc, 6, 2));
    m_context.tucmd = desc[11];
    m_context.hdrlen = desc[13];
    m_context.mss = static_cast<u16>(load_le(desc, 14, 2));
}

void E1000::take_data(const std::array<u8, 16>& desc, bool extended)
{
    const u64 buffer = load_le(desc, 0, 8);
    const u32 length = extended ? static_cast<u32>(load_le(desc, 8, 3) & 0xFFFFF)
                                : static_cast<u32>(load_le(desc, 8, 2));
    const u8 command = desc[11];
    // The packet's options come with its first descriptor (SDM 3.3.7.1).
    if (m_tx_packet.empty() && !m_tx_oversized) {
        m_tx_tse = extended && (command & TXD_TSE);
        m_tx_ip_checksum = extended && (desc[13] & POPTS_IXSM);
        m_tx_l4_checksum = extended && (desc[13] & POPTS_TXSM);
    }
    if (m_tx_packet.size() + length > TX_MAX_PACKET) {
        m_tx_oversized = true; // dropped at EOP
    } else if (length && !m_tx_oversized) {
        const size_t at = m_tx_packet.size();
        m_tx_packet.resize(at + length);
        if (!m_memory.read(buffer, m_tx_packet.data() + at, length))
            m_tx_oversized = true; // a buffer outside RAM: the packet is dropped
    }
    if (command & TXD_EOP)
        finish_tx_packet();
}

void E1000::finish_tx_packet()
{
    if (!m_tx_oversized && !m_tx_packet.empty()) {
        if (m_tx_tse)
            send_segmented();
        else
            send_frame(m_tx_packet, true, 0, 0);
    }
    m_tx_packet.clear();
    m_tx_oversized = false;
}

void E1000::send_segmented()
{
    // TCP segmentation (SDM 3.5): the first HDRLEN bytes are the headers of
    // every segment, the rest is cut into MSS-byte payloads. A context that
    // does not describe a header inside the packet drops it.
    const u32 header = m_context.hdrlen;
    const u32 mss = m_context.mss;
    const u32 l4_minimum = (m_context.tucmd & TUCMD_TCP) ? TCP_HEADER : UDP_HEADER;
    if (header == 0 || header >= m_tx_packet.size() || mss < TSO_MIN_MSS ||
        m_context.tucss + l4_minimum > header || m_context.ipcss >= m_context.tucss)
        return;
    const u32 payload = static_cast<u32>(m_tx_packet.size()) - header;
    std::vector<u8> frame;
    u32 segment = 0;
    for (u32 offset = 0; offset < payload; offset += mss, ++segment) {
        const u32 length = std::min(mss, payload - offset);
        frame.assign(m_tx_packet.begin(), m_tx_packet.begin() + header);
        frame.insert(frame.end(), m_tx_packet.begin() + header + offset,
                     m_tx_packet.begin() + header + offset + length);
        send_frame(frame, offset + length == payload, segment, offset);
    }
}

void E1000::send_frame(std::span<u8> frame, bool last_segment, u32 segment, u32 payload_offset)
{
    const TxContext& c = m_context;
    u64 pseudo_length = 0;
    if (m_tx_tse) {
        // Each segment's headers are fixed up as the hardware does: the IP
        // length (and the IPv4 identification, one more per segment), the
        // TCP sequence number, FIN and PSH only on the last segment; the
        // TCP/UDP checksum gets the segment's length added to the pseudo
        // header sum the driver left in it.
        const size_t size = frame.size();
        if (c.tucmd & TUCMD_IP) {
            if (c.ipcss + IPV4_HEADER <= size) {
                store_be16(frame, c.ipcss + 2, static_cast<u16>(size - c.ipcss));
                store_be16(frame, c.ipcss + 4,
                           static_cast<u16>(load_be16(frame, c.ipcss + 4) + segment));
            }
        } else if (c.ipcss + IPV6_HEADER <= size) {
            store_be16(frame, c.ipcss + 4, static_cast<u16>(size - c.ipcss - IPV6_HEADER));
        }
        if (c.tucmd & TUCMD_TCP) {
            store_be32(frame, c.tucss + 4, load_be32(frame, c.tucss + 4) + payload_offset);
            if (!last_segment)
                frame[c.tucss + 13] &= static_cast<u8>(~(TCP_FIN | TCP_PSH));
        } else {
            store_be16(frame, c.tucss + 4, static_cast<u16>(size - c.tucss));
        }
        pseudo_length = size - c.tucss;
    }
    if (m_tx_ip_checksum)
        insert_checksum(frame, c.ipcss, c.ipcso, c.ipcse, 0);
    if (m_tx_l4_checksum)
        insert_checksum(frame, c.tucss, c.tucso, c.tucse, pseudo_length);
    count_tx(frame);
    if (m_transmit)
        m_transmit(frame);
}

void E1000::count_tx(std::span<const u8> frame)
{
    constexpr u64 FCS = 4; // the octet counters include the CRC
    count(GPTC, 1);
    count(TPT, 1);
    count(GOTCL, frame.size() + FCS);
    count(TOTL, frame.size() + FCS);
    if (frame.size() >= 6 && std::equal(frame.begin(), frame.begin() + 6, BROADCAST))
        count(BPTC, 1);
    else if (!frame.empty() && (frame[0] & 1))
        count(MPTC, 1);
}
