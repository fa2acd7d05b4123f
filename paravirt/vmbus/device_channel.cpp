#include "paravirt/vmbus/device_channel.h"

#include <utility>

using namespace vmbus;

DeviceChannel::DeviceChannel(GuestMemory memory, std::function<void(u32 relid)> signal_guest, size_t max_backlog,
                             size_t max_body)
    : m_memory(memory), m_signal_guest(std::move(signal_guest)), m_max_backlog(max_backlog), m_max_body(max_body)
{
}

bool DeviceChannel::open(const VmbusServer::OpenRequest& request)
{
    m_rings = RingPair::create(m_memory, request.ring_pfns, request.downstream_offset);
    m_relid = request.relid;
    m_backlog.clear();
    return m_rings.has_value();
}

void DeviceChannel::close()
{
    m_rings.reset();
    m_backlog.clear();
}

bool DeviceChannel::complete(u64 transaction_id, std::vector<u8> body)
{
    if (m_backlog.size() >= m_max_backlog)
        return false;
    m_backlog.emplace_back(transaction_id, std::move(body));
    flush_completions();
    return true;
}

void DeviceChannel::flush_completions()
{
    write_completions(m_rings, m_backlog, [this] { signal(); });
}

void DeviceChannel::visit_channel_state(StateVisitor& v, const char* device)
{
    v.field("relid", m_relid);
    RingPair::visit_state(v, m_memory, m_rings);
    visit_completions(v, m_backlog, m_max_backlog, m_max_body, device);
}
