// The gdb remote serial protocol's framing (gdb manual, "Overview" and
// "Packets" of the Remote Protocol appendix): `$payload#xx` with a modulo-256
// checksum in two hex digits, `+`/`-` acknowledgments (until
// QStartNoAckMode), `}` escapes (the next byte XOR 0x20) and Ctrl-C (0x03)
// outside a packet as an interrupt request. No transport: bytes in, events
// out, so a socket, a test or a fuzzer can drive it.
//
// Bounded: a packet whose payload grows past the limit is thrown away (and
// answered with `-` in acknowledgment mode), so a broken or hostile client
// never makes the host hold more than one packet's worth of input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct GdbInput {
    enum class Kind : uint8_t {
        Packet,    // a whole packet with a good checksum: `payload` (unescaped)
        Ack,       // `+`
        Nack,      // `-`: resend the last packet
        Interrupt, // 0x03 outside a packet
        Bad,       // a packet with a wrong checksum, a bad escape or too long
    };
    Kind kind = Kind::Packet;
    std::string payload;
};

class GdbPacketParser {
public:
    // The largest unescaped payload kept (what qSupported's PacketSize says,
    // with room for the escapes a client may add on top).
    static constexpr size_t DEFAULT_MAX_PAYLOAD = 0x4000;
    explicit GdbPacketParser(size_t max_payload = DEFAULT_MAX_PAYLOAD) : m_max(max_payload) {}

    // Takes bytes in pieces of any size and appends what they complete.
    void receive(std::string_view bytes, std::vector<GdbInput>& out);
    // Bytes held for a packet not complete yet.
    size_t buffered() const { return m_payload.size(); }

private:
    enum class State : uint8_t { Idle, Payload, Escape, Checksum1, Checksum2 };
    void finish(std::vector<GdbInput>& out);

    size_t m_max;
    State m_state = State::Idle;
    std::string m_payload;
    uint8_t m_sum = 0;       // of the raw bytes between $ and #
    uint8_t m_given = 0;     // the checksum the client sent
    bool m_broken = false;   // too long or a bad escape: dropped at its end
};

// `$payload#xx` with `$`, `#`, `}` and `*` escaped (binary replies, qXfer).
std::string gdb_frame(std::string_view payload);
// Lower-case hex of `bytes`, and its inverse (false on an odd length or a
// non-hex digit).
std::string gdb_hex(std::string_view bytes);
bool gdb_unhex(std::string_view hex, std::string& out);
