// The 82540EM's receive side (8254x SDM 3.2): the address filters (13.4.22
// RCTL, 13.5 RAL/RAH and MTA), then legacy receive descriptors from RDH up
// to RDT, one buffer of RCTL.BSIZE each, a frame spanning as many as it
// needs. Frames the ring has no room for wait in a small backlog (the
// controller's packet buffer) until the guest moves RDT.
#include "platform/net/e1000.h"

#include "platform/net/frame_bytes.h"

#include <zlib.h>

using namespace e1000;
using namespace net;

namespace {

constexpr size_t MINIMUM_FRAME = 60, FCS = 4;
constexpr size_t MAX_STANDARD_FRAME = 1522; // with a VLAN tag; more needs RCTL.LPE

bool is_broadcast(std::span<const u8> frame)
{
    for (size_t i = 0; i < 6; ++i)
        if (frame[i] != 0xFF)
            return false;
    return true;
}

// The 12 bits of the destination address that index the multicast table,
// chosen by RCTL.MO (SDM 13.5.1).
u32 multicast_hash(std::span<const u8> frame, u32 offset_select)
{
    const u32 high = u32(frame[4]) | u32(frame[5]) << 8;
    constexpr unsigned SHIFT[4] = {4, 3, 2, 0};
    return (high >> SHIFT[offset_select & 3]) & 0xFFF;
}

} // namespace

void E1000::receive(std::span<const u8> frame)
{
    if (frame.size() < MIN_FRAME || frame.size() > MAX_FRAME)
        return;
    if (!m_link_up || !(reg(RCTL) & RCTL_EN) || !accepts(frame))
        return;
    if (!(reg(RCTL) & RCTL_LPE) && frame.size() > MAX_STANDARD_FRAME)
        return;
    if (m_rx_backlog.empty() && deliver(frame))
        return;
    if (m_rx_backlog.size() >= RX_BACKLOG) {
        count(MPC, 1); // missed: the packet buffer is full
        set_causes(ICR_RXO);
        return;
    }
    count(RNBC, 1);
    m_rx_backlog.emplace_back(frame.begin(), frame.end());
}

bool E1000::accepts(std::span<const u8> frame) const
{
    const u32 rctl = reg(RCTL);
    if (is_broadcast(frame))
        return rctl & (RCTL_BAM | RCTL_MPE);
    if (frame[0] & 1) {
        if (rctl & RCTL_MPE)
            return true;
        const u32 hash = multicast_hash(frame, (rctl >> RCTL_MO_SHIFT) & 3);
        return (reg(MTA + (hash >> 5) * 4) >> (hash & 31)) & 1;
    }
    if (rctl & RCTL_UPE)
        return true;
    const u32 low = static_cast<u32>(load_le(frame, 0, 4));
    const u32 high = static_cast<u32>(load_le(frame, 4, 2));
    for (u32 i = 0; i < RA_ENTRIES; ++i) {
        const u32 rah = reg(RAH0 + 8 * i);
        if ((rah & RAH_AV) && reg(RAL0 + 8 * i) == low && (rah & 0xFFFF) == high)
            return true;
    }
    return false;
}

RxFilter E1000::rx_filter() const
{
    const u32 rctl = reg(RCTL);
    RxFilter f;
    f.main_mac = m_mac;
    f.unicast = rctl & RCTL_UPE ? RxFilter::Mode::All : RxFilter::Mode::Normal;
    f.promiscuous = (rctl & RCTL_UPE) && (rctl & RCTL_MPE);
    f.broadcast_allowed = rctl & (RCTL_BAM | RCTL_MPE);
    // Receive addresses past the first (the adapter's own) that are valid:
    // Linux's driver puts further unicast and then multicast addresses there
    // before it hashes the rest into the multicast table.
    for (u32 i = 1; i < RA_ENTRIES; ++i) {
        const u32 low = reg(RAL0 + 8 * i), rah = reg(RAH0 + 8 * i);
        if (!(rah & RAH_AV))
            continue;
        RxFilter::Mac mac{};
        for (u32 b = 0; b < 4; ++b)
            mac[b] = static_cast<u8>(low >> (8 * b));
        mac[4] = static_cast<u8>(rah);
        mac[5] = static_cast<u8>(rah >> 8);
        (mac[0] & 1 ? f.multicast_table : f.unicast_table).push_back(mac);
    }
    // The multicast table is a hash: whether any bit is set is all that can be said.
    bool any_multicast = false;
    for (u32 i = 0; i < MTA_ENTRIES; ++i)
        any_multicast = any_multicast || reg(MTA + 4 * i) != 0;
    f.multicast = rctl & RCTL_MPE                                   ? RxFilter::Mode::All
                  : any_multicast || !f.multicast_table.empty() ? RxFilter::Mode::Normal
                                                                 : RxFilter::Mode::None;
    f.multicast_overflow = !(rctl & RCTL_MPE) && any_multicast;
    return f;
}

u32 E1000::rx_buffer_size() const
{
    // RCTL.BSIZE, scaled by 16 with BSEX (SDM 13.4.22).
    const u32 bsize = (reg(RCTL) >> RCTL_BSIZE_SHIFT) & 3;
    if (reg(RCTL) & RCTL_BSEX && bsize != 0)
        return 16384u >> (bsize - 1);
    return 2048u >> bsize;
}

u32 E1000::rx_free_descriptors() const
{
    const u32 count = reg(RDLEN) / DESCRIPTOR_SIZE;
    const u64 base = u64(reg(RDBAH)) << 32 | reg(RDBAL);
    if (!ring_valid(base, reg(RDLEN), reg(RDH), reg(RDT)))
        return 0; // an unusable ring has no room
    return (reg(RDT) + count - reg(RDH)) % count;
}

bool E1000::deliver(std::span<const u8> frame)
{
    // What lands in guest memory: the frame padded to the Ethernet minimum,
    // and the FCS unless RCTL.SECRC strips it (Linux's e1000 takes 4 bytes
    // off every frame it receives).
    std::vector<u8> data(frame.begin(), frame.end());
    if (data.size() < MINIMUM_FRAME)
        data.resize(MINIMUM_FRAME, 0);
    if (!(reg(RCTL) & RCTL_SECRC)) {
        const u32 crc = static_cast<u32>(crc32(0, data.data(), static_cast<uInt>(data.size())));
        for (unsigned i = 0; i < FCS; ++i)
            data.push_back(static_cast<u8>(crc >> (8 * i)));
    }
    const u32 buffer_size = rx_buffer_size();
    const u32 needed = static_cast<u32>((data.size() + buffer_size - 1) / buffer_size);
    const u32 free = rx_free_descriptors();
    if (free < needed)
        return false;
    const u32 count = reg(RDLEN) / DESCRIPTOR_SIZE;
    const u64 base = u64(reg(RDBAH)) << 32 | reg(RDBAL);
    for (u32 i = 0; i < needed; ++i) {
        const u64 address = base + u64(reg(RDH)) * DESCRIPTOR_SIZE;
        const size_t at = size_t(i) * buffer_size;
        const size_t length = std::min<size_t>(buffer_size, data.size() - at);
        std::array<u8, DESCRIPTOR_SIZE> desc{};
        // A descriptor or buffer outside RAM loses this piece of the frame;
        // the ring moves on as the hardware's would.
        if (m_memory.read(address, desc.data(), desc.size()))
            (void)m_memory.write(load_le(desc, 0, 8), data.data() + at, length);
        store_le(desc, 8, length, 2);
        store_le(desc, 10, 0, 2); // packet checksum: not computed
        // IXSM: the checksums were not checked, the stack checks them.
        desc[12] = static_cast<u8>(RXD_DD | RXD_IXSM | (i + 1 == needed ? RXD_EOP : 0));
        desc[13] = 0;
        store_le(desc, 14, 0, 2);
        (void)m_memory.write(address + 8, desc.data() + 8, 8);
        reg(RDH) = (reg(RDH) + 1) % count;
    }
    count_rx(frame);
    u32 causes = ICR_RXT0;
    // RXDMT0 when the free descriptors fall to RCTL.RDMTS's share of the ring.
    const u32 threshold = count >> (1 + ((reg(RCTL) >> RCTL_RDMTS_SHIFT) & 3));
    if (free - needed <= threshold)
        causes |= ICR_RXDMT0;
    set_causes(causes);
    return true;
}

void E1000::drain_rx_backlog()
{
    while (!m_rx_backlog.empty() && (reg(RCTL) & RCTL_EN) && deliver(m_rx_backlog.front()))
        m_rx_backlog.pop_front();
}

void E1000::count_rx(std::span<const u8> frame)
{
    const u64 octets = std::max(frame.size(), MINIMUM_FRAME) + FCS;
    count(GPRC, 1);
    count(TPR, 1);
    count(GORCL, octets);
    count(TORL, octets);
    if (is_broadcast(frame))
        count(BPRC, 1);
    else if (frame[0] & 1)
        count(MPRC, 1);
}
