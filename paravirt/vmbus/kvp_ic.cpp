#include "paravirt/vmbus/kvp_ic.h"

#include <utility>

// Linux 6.1 takes KVP 4.0 (Windows 8), else 3.0, else 1.0 (kvp_versions in hv_kvp.c).
KvpIc::KvpIc(GuestMemory memory, std::function<void()> signal_guest)
    : IcService(memory, std::move(signal_guest), {0x40000, 0x30000, 0x10000})
{
}

void KvpIc::on_response(u16 type, std::span<const u8>)
{
    if (type == ic::TYPE_KVP_EXCHANGE)
        ++m_exchanges;
}

void KvpIc::visit_state(StateVisitor& v)
{
    v.section("kvp-ic", 1);
    visit_channel_state(v);
    v.field("exchanges", m_exchanges);
}
