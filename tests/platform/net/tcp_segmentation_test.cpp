// Software TCP segmentation (platform/net/tcp_segmentation.h): segments
// checked field by field and by their checksums, as a receiver would.
#include "platform/net/frame_bytes.h"
#include "platform/net/tcp_segmentation.h"

#include <doctest/doctest.h>

#include <vector>

namespace {

// An Ethernet/IPv4 (or IPv6)/TCP packet with `payload` bytes of pattern,
// the lengths and checksums left as Linux leaves them for LSO (zero).
std::vector<u8> tcp_packet(bool ipv4, size_t payload, u8 flags)
{
    const size_t ip = ipv4 ? 20 : 40, tcp = 14 + ip;
    std::vector<u8> p(tcp + 32 + payload); // a TCP header with 12 bytes of options
    store_be16(p, 12, ipv4 ? 0x0800 : 0x86DD);
    if (ipv4) {
        p[14] = 0x45;
        p[14 + 8] = 64;
        p[14 + 9] = 6;
        store_be16(p, 14 + 4, 0x1234);
        for (int i = 0; i < 8; ++i)
            p[14 + 12 + i] = static_cast<u8>(10 + i);
    } else {
        p[14] = 0x60;
        p[14 + 6] = 6;
        p[14 + 7] = 64;
        for (int i = 0; i < 32; ++i)
            p[14 + 8 + i] = static_cast<u8>(0x20 + i);
    }
    store_be16(p, tcp, 40000);
    store_be16(p, tcp + 2, 80);
    store_be32(p, tcp + 4, 0xFFFFF000); // the sequence number wraps
    p[tcp + 12] = 8 << 4;
    p[tcp + 13] = flags;
    for (size_t i = 0; i < payload; ++i)
        p[tcp + 32 + i] = static_cast<u8>(i * 13 + 7);
    return p;
}

// True when the segment's TCP checksum (and IPv4 header checksum) add up.
bool checksums_add_up(const std::vector<u8>& s, bool ipv4)
{
    const std::span<const u8> b(s);
    const size_t tcp = ipv4 ? 34 : 54;
    if (ipv4 && net::checksum_finish(net::checksum_add(b.subspan(14, 20))) != 0)
        return false;
    u64 sum = ipv4 ? net::checksum_add(b.subspan(26, 8)) : net::checksum_add(b.subspan(22, 32));
    sum += 6 + (s.size() - tcp);
    return net::checksum_finish(net::checksum_add(b.subspan(tcp), sum)) == 0;
}

} // namespace

TEST_CASE("TCP segmentation cuts a large IPv4 packet into MSS-sized frames a receiver takes")
{
    const std::vector<u8> packet = tcp_packet(true, 3000, 0x18 | 0x01 | 0x80); // PSH ACK FIN CWR
    std::vector<std::vector<u8>> segments;
    REQUIRE(net::segment_tcp(packet, 34, 1448, [&](std::span<const u8> s) { segments.emplace_back(s.begin(), s.end()); }));
    REQUIRE(segments.size() == 3);
    std::vector<u8> payload;
    for (size_t i = 0; i < segments.size(); ++i) {
        const std::vector<u8>& s = segments[i];
        const size_t length = i < 2 ? 1448 : 3000 - 2 * 1448;
        REQUIRE(s.size() == 34 + 32 + length);
        CHECK(load_be16(s, 16) == s.size() - 14);
        CHECK(load_be16(s, 18) == 0x1234 + i);
        CHECK(load_be32(s, 38) == 0xFFFFF000u + 1448 * i);
        CHECK((s[47] & 0x01) == (i == 2 ? 0x01 : 0));  // FIN on the last
        CHECK((s[47] & 0x08) == (i == 2 ? 0x08 : 0));  // PSH on the last
        CHECK((s[47] & 0x80) == (i == 0 ? 0x80 : 0));  // CWR on the first
        CHECK((s[47] & 0x10) == 0x10);                 // ACK on every one
        CHECK(checksums_add_up(s, true));
        payload.insert(payload.end(), s.begin() + 66, s.end());
    }
    CHECK(std::equal(payload.begin(), payload.end(), packet.begin() + 66));
}

TEST_CASE("TCP segmentation of IPv6 sets the payload length; an empty payload is one segment")
{
    const std::vector<u8> packet = tcp_packet(false, 2500, 0x10);
    std::vector<std::vector<u8>> segments;
    REQUIRE(net::segment_tcp(packet, 54, 1000, [&](std::span<const u8> s) { segments.emplace_back(s.begin(), s.end()); }));
    REQUIRE(segments.size() == 3);
    for (const std::vector<u8>& s : segments) {
        CHECK(load_be16(s, 18) == s.size() - 54);
        CHECK(checksums_add_up(s, false));
    }
    segments.clear();
    REQUIRE(net::segment_tcp(tcp_packet(true, 0, 0x11), 34, 1448,
                             [&](std::span<const u8> s) { segments.emplace_back(s.begin(), s.end()); }));
    REQUIRE(segments.size() == 1);
    CHECK(segments[0][47] == 0x11);
    CHECK(checksums_add_up(segments[0], true));
}

TEST_CASE("TCP segmentation refuses what is not an Ethernet/IP/TCP packet it can cut")
{
    int emitted = 0;
    const auto count = [&](std::span<const u8>) { ++emitted; };
    std::vector<u8> packet = tcp_packet(true, 3000, 0x10);
    CHECK_FALSE(net::segment_tcp(packet, 34, net::MIN_SEGMENT_SIZE - 1, count)); // a tiny MSS
    CHECK_FALSE(net::segment_tcp(packet, 38, 1448, count));                      // TCP not after the IP header
    CHECK_FALSE(net::segment_tcp(tcp_packet(true, 66000, 0x10), 34, 70000, count)); // too long for IPv4
    std::vector<u8> udp = packet;
    udp[14 + 9] = 17;
    CHECK_FALSE(net::segment_tcp(udp, 34, 1448, count));
    std::vector<u8> short_header = packet;
    short_header[46] = 4 << 4; // a TCP header of 16 bytes
    CHECK_FALSE(net::segment_tcp(short_header, 34, 1448, count));
    CHECK_FALSE(net::segment_tcp(std::span<const u8>(packet).first(40), 34, 1448, count));
    std::vector<u8> arp = packet;
    store_be16(arp, 12, 0x0806);
    CHECK_FALSE(net::segment_tcp(arp, 34, 1448, count));
    CHECK(emitted == 0);
}
