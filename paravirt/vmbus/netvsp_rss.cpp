// Receive-side scaling for netvsp (docs/network.md "vRSS"): what the host
// announces, the parameters the guest sets, and the channel each received
// frame goes on. The hash is NDIS's Toeplitz hash ("Verifying the RSS Hash
// Calculation" in the Windows driver documentation gives its test vectors).
#include "paravirt/vmbus/netvsp.h"

#include <algorithm>
#include <array>

u32 toeplitz_hash(std::span<const u8> key, std::span<const u8> input)
{
    // For every set bit of the input, from the most significant, the 32
    // key bits that start at that bit's position are added (xor).
    u32 hash = 0;
    u64 window = 0; // key bits from the current position on, in the top 32
    for (size_t i = 0; i < 4 && i < key.size(); ++i)
        window |= u64{key[i]} << (56 - 8 * i);
    for (size_t i = 0; i < input.size(); ++i) {
        const u8 next = i + 4 < key.size() ? key[i + 4] : 0;
        window |= u64{next} << 24;
        for (int bit = 7; bit >= 0; --bit) {
            if (input[i] & (1u << bit))
                hash ^= static_cast<u32>(window >> 32);
            window <<= 1;
        }
    }
    return hash;
}

std::vector<u8> Netvsp::rss_capabilities() const
{
    // One receive queue per channel the guest may have; Linux asks for
    // min(queues, its CPUs) - 1 sub-channels.
    std::vector<u8> caps(rndis::RSS_CAPABILITIES_SIZE);
    caps[0] = rndis::RSS_CAPABILITIES_TYPE;
    caps[1] = rndis::RSS_REVISION;
    store_le16(caps, 2, rndis::RSS_CAPABILITIES_SIZE);
    store_le32(caps, 4, rndis::RSS_CAPS_HASH_TCP_IPV4 | rndis::RSS_CAPS_HASH_TCP_IPV6);
    store_le32(caps, 8, 1u + m_max_sub_channels);  // interrupt messages
    store_le32(caps, 12, 1u + m_max_sub_channels); // receive queues
    store_le16(caps, 16, rndis::RSS_MAX_TABLE);
    return caps;
}

u32 Netvsp::set_rss_parameters(std::span<const u8> info)
{
    if (!m_max_sub_channels)
        return rndis::STATUS_NOT_SUPPORTED;
    if (info.size() < rndis::RSS_PARAMETERS_SIZE || info[0] != rndis::RSS_PARAMETERS_TYPE)
        return rndis::STATUS_INVALID_DATA;
    const u16 flags = load_le16(info, rndis::RSS_FLAGS);
    if (flags & rndis::RSS_DISABLE) {
        m_rss_table.clear();
        return rndis::STATUS_SUCCESS;
    }
    // Everything is checked before anything changes.
    u32 hash_info = m_rss_hash_info;
    if (!(flags & rndis::RSS_HASH_INFO_UNCHANGED))
        hash_info = load_le32(info, rndis::RSS_HASH_INFO);
    std::vector<u32> table = m_rss_table;
    if (!(flags & rndis::RSS_TABLE_UNCHANGED)) {
        const u32 bytes = load_le16(info, rndis::RSS_TABLE_SIZE), at = load_le32(info, rndis::RSS_TABLE_OFFSET);
        if (bytes == 0 || bytes % 4 || bytes / 4 > rndis::RSS_MAX_TABLE || at > info.size() ||
            bytes > info.size() - at)
            return rndis::STATUS_INVALID_DATA;
        table.resize(bytes / 4);
        for (u32 i = 0; i < table.size(); ++i) {
            table[i] = load_le32(info, at + 4 * i);
            if (table[i] > m_max_sub_channels)
                return rndis::STATUS_INVALID_DATA;
        }
    }
    std::vector<u8> key = m_rss_key;
    if (!(flags & rndis::RSS_KEY_UNCHANGED)) {
        const u32 bytes = load_le16(info, rndis::RSS_KEY_SIZE), at = load_le32(info, rndis::RSS_KEY_OFFSET);
        if (bytes == 0 || bytes > rndis::RSS_KEY_BYTES || at > info.size() || bytes > info.size() - at)
            return rndis::STATUS_INVALID_DATA;
        key.assign(info.begin() + at, info.begin() + at + bytes);
    }
    if (table.empty() || key.empty() || (hash_info & rndis::HASH_TOEPLITZ) == 0)
        return rndis::STATUS_INVALID_DATA;
    m_rss_hash_info = hash_info;
    m_rss_table = std::move(table);
    m_rss_key = std::move(key);
    return rndis::STATUS_SUCCESS;
}

u16 Netvsp::rss_channel(std::span<const u8> frame) const
{
    if (m_rss_table.empty())
        return 0;
    // An Ethernet II frame without a VLAN tag: IPv4 (no options needed:
    // the header length says where TCP starts; a fragment hashes its
    // addresses only) or IPv6 whose first header is TCP.
    constexpr size_t IP = 14;
    const u16 type = frame.size() >= IP ? load_be16(frame, 12) : 0;
    // The hash input, without a heap allocation per frame: the source and
    // destination addresses (IPv6's at most), then maybe the two ports.
    std::array<u8, 36> bytes{};
    size_t length = 0;
    const auto append = [&](std::span<const u8> part) {
        std::copy(part.begin(), part.end(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
        length += part.size();
    };
    size_t l4 = 0;
    bool tcp = false;
    if (type == 0x0800 && frame.size() >= IP + 20 && (frame[IP] >> 4) == 4) {
        if (!(m_rss_hash_info & (rndis::HASH_IPV4 | rndis::HASH_TCP_IPV4)))
            return 0;
        append(frame.subspan(IP + 12, 8));
        const bool fragment = (load_be16(frame, IP + 6) & 0x3FFF) != 0;
        tcp = frame[IP + 9] == 6 && !fragment && (m_rss_hash_info & rndis::HASH_TCP_IPV4);
        l4 = IP + 4u * (frame[IP] & 0xF);
    } else if (type == 0x86DD && frame.size() >= IP + 40 && (frame[IP] >> 4) == 6) {
        if (!(m_rss_hash_info & (rndis::HASH_IPV6 | rndis::HASH_TCP_IPV6)))
            return 0;
        append(frame.subspan(IP + 8, 32));
        tcp = frame[IP + 6] == 6 && (m_rss_hash_info & rndis::HASH_TCP_IPV6);
        l4 = IP + 40;
    } else {
        return 0;
    }
    if (tcp && frame.size() >= l4 + 4)
        append(frame.subspan(l4, 4));
    else if (!(m_rss_hash_info & (type == 0x0800 ? rndis::HASH_IPV4 : rndis::HASH_IPV6)))
        return 0; // only TCP hashing asked for, and this is not TCP
    const u32 hash = toeplitz_hash(m_rss_key, std::span<const u8>(bytes).first(length));
    return static_cast<u16>(m_rss_table[hash % m_rss_table.size()]);
}
