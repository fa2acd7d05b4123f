// ARP frames the network tests send (RFC 826 over Ethernet).
#pragma once

#include "mmu/base/byte_order.h"

#include <algorithm>
#include <vector>

namespace test_frames {

constexpr u8 GUEST_MAC[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

// A broadcast "who has target_ip" from GUEST_MAC at sender_ip.
inline std::vector<u8> arp_request(u32 sender_ip, u32 target_ip)
{
    std::vector<u8> f(42, 0);
    std::fill(f.begin(), f.begin() + 6, 0xFF);
    std::copy(GUEST_MAC, GUEST_MAC + 6, f.begin() + 6);
    store_be16(f, 12, 0x0806);
    store_be16(f, 14, 1);      // Ethernet
    store_be16(f, 16, 0x0800); // IPv4
    f[18] = 6;
    f[19] = 4;
    store_be16(f, 20, 1); // request
    std::copy(GUEST_MAC, GUEST_MAC + 6, f.begin() + 22);
    store_be32(f, 28, sender_ip);
    store_be32(f, 38, target_ip);
    return f;
}

} // namespace test_frames
