#include "frontend/gdb/gdb_packet.h"

namespace {

int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

constexpr char HEX[] = "0123456789abcdef";

} // namespace

void GdbPacketParser::receive(std::string_view bytes, std::vector<GdbInput>& out)
{
    for (const char c : bytes) {
        const uint8_t byte = static_cast<uint8_t>(c);
        switch (m_state) {
        case State::Idle:
            if (c == '$') {
                m_state = State::Payload;
                m_payload.clear();
                m_sum = 0;
                m_broken = false;
            } else if (c == '+') {
                out.push_back({GdbInput::Kind::Ack, {}});
            } else if (c == '-') {
                out.push_back({GdbInput::Kind::Nack, {}});
            } else if (byte == 0x03) {
                out.push_back({GdbInput::Kind::Interrupt, {}});
            }
            // Anything else between packets is noise (a stray newline).
            break;
        case State::Payload:
            if (c == '#') {
                m_state = State::Checksum1;
                break;
            }
            m_sum = static_cast<uint8_t>(m_sum + byte);
            if (c == '}') {
                m_state = State::Escape;
                break;
            }
            if (c == '$') {
                // A new packet starts inside this one: the client gave up on
                // the old one (the manual's resynchronisation). Start again.
                m_payload.clear();
                m_sum = 0;
                m_broken = false;
                break;
            }
            if (m_payload.size() >= m_max)
                m_broken = true;
            else
                m_payload.push_back(c);
            break;
        case State::Escape:
            m_sum = static_cast<uint8_t>(m_sum + byte);
            m_state = State::Payload;
            if (m_payload.size() >= m_max)
                m_broken = true;
            else
                m_payload.push_back(static_cast<char>(byte ^ 0x20));
            break;
        case State::Checksum1:
            if (hex_value(c) < 0) {
                m_broken = true;
                m_given = 0;
            } else {
                m_given = static_cast<uint8_t>(hex_value(c) << 4);
            }
            m_state = State::Checksum2;
            break;
        case State::Checksum2:
            if (hex_value(c) < 0)
                m_broken = true;
            else
                m_given = static_cast<uint8_t>(m_given | hex_value(c));
            finish(out);
            break;
        }
    }
}

void GdbPacketParser::finish(std::vector<GdbInput>& out)
{
    m_state = State::Idle;
    if (m_broken || m_given != m_sum) {
        out.push_back({GdbInput::Kind::Bad, {}});
    } else {
        out.push_back({GdbInput::Kind::Packet, std::move(m_payload)});
    }
    m_payload = std::string();
}

std::string gdb_frame(std::string_view payload)
{
    std::string out;
    out.reserve(payload.size() + 4);
    out.push_back('$');
    uint8_t sum = 0;
    for (const char c : payload) {
        if (c == '$' || c == '#' || c == '}' || c == '*') {
            out.push_back('}');
            sum = static_cast<uint8_t>(sum + '}');
            const char escaped = static_cast<char>(c ^ 0x20);
            out.push_back(escaped);
            sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(escaped));
        } else {
            out.push_back(c);
            sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(c));
        }
    }
    out.push_back('#');
    out.push_back(HEX[sum >> 4]);
    out.push_back(HEX[sum & 15]);
    return out;
}

std::string gdb_hex(std::string_view bytes)
{
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char c : bytes) {
        const uint8_t b = static_cast<uint8_t>(c);
        out.push_back(HEX[b >> 4]);
        out.push_back(HEX[b & 15]);
    }
    return out;
}

bool gdb_unhex(std::string_view hex, std::string& out)
{
    if (hex.size() % 2)
        return false;
    out.clear();
    out.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2) {
        const int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out.push_back(static_cast<char>(hi << 4 | lo));
    }
    return true;
}
