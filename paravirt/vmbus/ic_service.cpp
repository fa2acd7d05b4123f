#include "paravirt/vmbus/ic_service.h"

#include <algorithm>
#include <utility>

using namespace vmbus;

u32 ic::load_version(std::span<const u8> m, unsigned at)
{
    return (u32{load_le16(m, at)} << 16) | load_le16(m, at + 2);
}

void ic::store_version(std::span<u8> m, unsigned at, u32 version)
{
    store_le16(m, at, static_cast<u16>(version >> 16));
    store_le16(m, at + 2, static_cast<u16>(version));
}

void ic::visit_timer(StateVisitor& v, ClockTimer& timer)
{
    bool armed = timer.armed();
    u64 deadline = armed ? timer.deadline() : 0;
    v.field("timer_armed", armed);
    v.field("timer_deadline", deadline);
    if (v.loading() && v.ok()) {
        if (armed)
            timer.arm(deadline);
        else
            timer.disarm();
    }
}

IcService::IcService(GuestMemory memory, std::function<void()> signal_guest,
                     std::vector<u32> service_versions)
    : m_memory(memory), m_signal_guest(std::move(signal_guest)),
      m_service_versions(std::move(service_versions))
{
}

bool IcService::open(const VmbusServer::OpenRequest& r)
{
    m_rings = RingPair::create(m_memory, r.ring_pfns, r.downstream_offset);
    if (!m_rings)
        return false;
    m_negotiated = false;
    m_framework = m_service = 0;
    on_open();
    return true;
}

void IcService::opened()
{
    // The host opens the conversation with its versions. Before the
    // negotiation the header carries framework 1.0 and message 1.0, the
    // versions every guest understands.
    const size_t frameworks = std::size(ic::FRAMEWORK_VERSIONS),
                 services = m_service_versions.size();
    // Room for one version more than offered: Linux kernels before 5.11
    // declared icversion_data[1] and count it in the size they require.
    std::vector<u8> m = frame(ic::TYPE_NEGOTIATE, ic::FRAMEWORK_VERSIONS[0], 0x10000,
                              8 + 4 * (frameworks + services + 1));
    store_le16(m, ic::NEGOTIATE_FRAMEWORK_COUNT, static_cast<u16>(frameworks));
    store_le16(m, ic::NEGOTIATE_MESSAGE_COUNT, static_cast<u16>(services));
    unsigned at = ic::NEGOTIATE_VERSIONS;
    for (u32 v : ic::FRAMEWORK_VERSIONS)
        ic::store_version(m, std::exchange(at, at + 4), v);
    for (u32 v : m_service_versions)
        ic::store_version(m, std::exchange(at, at + 4), v);
    send(m);
}

void IcService::close()
{
    m_rings.reset();
    m_negotiated = false;
    on_close();
}

std::vector<u8> IcService::frame(u16 type, u32 framework, u32 message_version, size_t body)
{
    std::vector<u8> m(ic::HEADER_END + body);
    store_le32(m, ic::PIPE_FLAGS, 1);
    store_le32(m, ic::PIPE_SIZE, static_cast<u32>(m.size() - ic::PIPE_HEADER));
    ic::store_version(m, ic::FRAMEWORK_VERSION, framework);
    store_le16(m, ic::TYPE, type);
    ic::store_version(m, ic::MESSAGE_VERSION, message_version);
    store_le16(m, ic::SIZE, static_cast<u16>(body));
    m[ic::TRANSACTION] = ++m_transaction;
    m[ic::FLAGS] = ic::FLAG_TRANSACTION | ic::FLAG_REQUEST;
    return m;
}

bool IcService::send(std::span<const u8> message)
{
    bool wake = false;
    if (!m_rings || !m_rings->write(PACKET_DATA_INBAND, 0, m_transaction, {}, message, wake))
        return false;
    if (wake)
        m_signal_guest();
    return true;
}

void IcService::signaled()
{
    if (!m_rings)
        return;
    m_rings->drain([this](const Packet& packet) { receive(packet); }, m_signal_guest);
    if (m_rings)
        on_room();
}

void IcService::receive(const Packet& packet)
{
    // Only the guest's responses come here; anything else, or too short, is ignored.
    const std::vector<u8>& m = packet.body;
    if (packet.type != PACKET_DATA_INBAND || m.size() < ic::HEADER_END ||
        !(m[ic::FLAGS] & ic::FLAG_RESPONSE))
        return;
    const u16 type = load_le16(m, ic::TYPE);
    if (type != ic::TYPE_NEGOTIATE) {
        if (m_negotiated)
            on_response(type, m);
        return;
    }
    // The guest rewrote the counts to 1 and 1 and put its choices first;
    // counts of 0 say it found nothing it could use.
    if (m_negotiated || m.size() < ic::NEGOTIATE_VERSIONS + 8 || load_le32(m, ic::STATUS) != 0 ||
        load_le16(m, ic::NEGOTIATE_FRAMEWORK_COUNT) != 1 ||
        load_le16(m, ic::NEGOTIATE_MESSAGE_COUNT) != 1)
        return;
    const u32 framework = ic::load_version(m, ic::NEGOTIATE_VERSIONS);
    const u32 service = ic::load_version(m, ic::NEGOTIATE_VERSIONS + 4);
    if (std::ranges::find(ic::FRAMEWORK_VERSIONS, framework) == std::end(ic::FRAMEWORK_VERSIONS) ||
        std::ranges::find(m_service_versions, service) == m_service_versions.end())
        return;
    m_framework = framework;
    m_service = service;
    m_negotiated = true;
    on_negotiated();
}

void IcService::visit_channel_state(StateVisitor& v)
{
    RingPair::visit_state(v, m_memory, m_rings);
    v.field("negotiated", m_negotiated);
    v.field("framework", m_framework);
    v.field("service", m_service);
    v.field("transaction", m_transaction);
}
