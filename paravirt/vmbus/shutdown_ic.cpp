#include "paravirt/vmbus/shutdown_ic.h"

#include <utility>

using namespace vmbus;

namespace {

// What the host offers (Linux 6.1 accepts framework 3.0 or 1.0 and shutdown
// 3.2, 3.1, 3.0 or 1.0, taking the first of its own list the host offers).
constexpr u32 FRAMEWORK_VERSIONS[] = {0x30000, 0x10000};
constexpr u32 SHUTDOWN_VERSIONS[] = {0x30002, 0x30001, 0x30000, 0x10000};

void put_version(std::vector<u8>& m, unsigned at, u32 version)
{
    store_u16(m, at, static_cast<u16>(version >> 16));
    store_u16(m, at + 2, static_cast<u16>(version));
}
u32 get_version(const std::vector<u8>& m, unsigned at) { return (u32{load_u16(m, at)} << 16) | load_u16(m, at + 2); }

// A request with the framing filled in: pipe header, IC header.
std::vector<u8> request(u16 type, u32 framework, u32 message_version, size_t body, u8 transaction)
{
    std::vector<u8> m(ic::HEADER_END + body);
    store_u32(m, ic::PIPE_FLAGS, 1);
    store_u32(m, ic::PIPE_SIZE, static_cast<u32>(m.size() - ic::PIPE_HEADER));
    put_version(m, ic::FRAMEWORK_VERSION, framework);
    store_u16(m, ic::TYPE, type);
    put_version(m, ic::MESSAGE_VERSION, message_version);
    store_u16(m, ic::SIZE, static_cast<u16>(body));
    m[ic::TRANSACTION] = transaction;
    m[ic::FLAGS] = ic::FLAG_TRANSACTION | ic::FLAG_REQUEST;
    return m;
}

} // namespace

ShutdownIc::ShutdownIc(GuestMemory memory, std::function<void()> signal_guest)
    : m_memory(memory), m_signal_guest(std::move(signal_guest))
{
}

bool ShutdownIc::open(const VmbusServer::OpenRequest& r)
{
    m_rings = RingPair::create(m_memory, r.ring_pfns, r.downstream_offset);
    if (!m_rings)
        return false;
    m_negotiated = false;
    m_framework = m_service = 0;
    m_shutdown_status.reset();
    return true;
}

void ShutdownIc::opened()
{
    // The host opens the conversation with its versions.
    const size_t count = std::size(FRAMEWORK_VERSIONS) + std::size(SHUTDOWN_VERSIONS);
    std::vector<u8> m = request(ic::TYPE_NEGOTIATE, FRAMEWORK_VERSIONS[0], 0x10000, 8 + 4 * count,
                                ++m_transaction);
    store_u16(m, ic::NEGOTIATE_FRAMEWORK_COUNT, static_cast<u16>(std::size(FRAMEWORK_VERSIONS)));
    store_u16(m, ic::NEGOTIATE_MESSAGE_COUNT, static_cast<u16>(std::size(SHUTDOWN_VERSIONS)));
    unsigned at = ic::NEGOTIATE_VERSIONS;
    for (u32 v : FRAMEWORK_VERSIONS)
        put_version(m, std::exchange(at, at + 4), v);
    for (u32 v : SHUTDOWN_VERSIONS)
        put_version(m, std::exchange(at, at + 4), v);
    send(m);
}

void ShutdownIc::close()
{
    m_rings.reset();
    m_negotiated = false;
}

bool ShutdownIc::send(std::span<const u8> message)
{
    bool wake = false;
    if (!m_rings || !m_rings->write(PACKET_DATA_INBAND, 0, m_transaction, {}, message, wake))
        return false;
    if (wake)
        m_signal_guest();
    return true;
}

void ShutdownIc::signaled()
{
    if (m_rings)
        m_rings->drain([this](const Packet& packet) { receive(packet); }, m_signal_guest);
}

void ShutdownIc::receive(const Packet& packet)
{
    // Only the guest's responses come here; anything else, or too short, is ignored.
    const std::vector<u8>& m = packet.body;
    if (packet.type != PACKET_DATA_INBAND || m.size() < ic::HEADER_END || !(m[ic::FLAGS] & ic::FLAG_RESPONSE))
        return;
    switch (load_u16(m, ic::TYPE)) {
    case ic::TYPE_NEGOTIATE:
        // The guest rewrote the counts to 1 and 1 and put its choices first.
        if (m.size() < ic::NEGOTIATE_VERSIONS + 8 || load_u32(m, ic::STATUS) != 0 ||
            load_u16(m, ic::NEGOTIATE_FRAMEWORK_COUNT) != 1 || load_u16(m, ic::NEGOTIATE_MESSAGE_COUNT) != 1)
            return;
        m_framework = get_version(m, ic::NEGOTIATE_VERSIONS);
        m_service = get_version(m, ic::NEGOTIATE_VERSIONS + 4);
        m_negotiated = true;
        return;
    case ic::TYPE_SHUTDOWN:
        m_shutdown_status = load_u32(m, ic::STATUS);
        return;
    default:
        return;
    }
}

bool ShutdownIc::request_shutdown()
{
    if (!ready())
        return false;
    std::vector<u8> m = request(ic::TYPE_SHUTDOWN, m_framework, m_service, ic::SHUTDOWN_BODY, ++m_transaction);
    store_u32(m, ic::SHUTDOWN_FLAGS, 0); // a graceful shutdown
    m_shutdown_status.reset();
    return send(m);
}

void ShutdownIc::visit_state(StateVisitor& v)
{
    v.section("shutdown-ic", 1);
    RingPair::visit_state(v, m_memory, m_rings);
    v.field("negotiated", m_negotiated);
    v.field("framework", m_framework);
    v.field("service", m_service);
    v.field("transaction", m_transaction);
}
