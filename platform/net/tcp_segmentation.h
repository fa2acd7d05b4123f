// TCP segmentation offload in software, for the network adapters (netvsp's
// large send, NDIS LSO v2): one large TCP packet, as a guest's stack hands
// it over, cut into segments of at most MSS bytes of payload, each a whole
// frame with its own IP length, IPv4 identification and header checksum,
// TCP sequence number and checksum, and the flags a sender would put on it
// (FIN and PSH only on the last segment, CWR only on the first).
#pragma once

#include "mmu/base/types.h"

#include <functional>
#include <span>

namespace net {

// The smallest MSS a segmentation takes (a guest asking for less would have
// the host make a frame per few bytes of a 64 KiB packet).
constexpr u32 MIN_SEGMENT_SIZE = 64;

// `packet`: an Ethernet II frame (no VLAN tag) holding IPv4 or IPv6 and then
// TCP at `tcp_offset` (IPv6 extension headers are kept as they are).
// Calls `emit` with each segment in order; false (and nothing emitted)
// when the packet is not that, or `mss` is below MIN_SEGMENT_SIZE.
bool segment_tcp(std::span<const u8> packet, size_t tcp_offset, u32 mss,
                 const std::function<void(std::span<const u8> segment)>& emit);

} // namespace net
