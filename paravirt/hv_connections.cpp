#include "paravirt/hv_connections.h"

namespace {
// HV_CONNECTION_ID: 23:0 ID, 31:24 reserved (TLFS 11.10).
constexpr u32 CONNECTION_ID_RESERVED = 0xFF000000;
} // namespace

bool HvConnections::add_message_port(u32 connection_id, MessageHandler handler)
{
    if ((connection_id & CONNECTION_ID_RESERVED) || !handler || m_ports.count(connection_id))
        return false;
    m_ports[connection_id] = Port{std::move(handler), {}, 0};
    return true;
}

bool HvConnections::add_event_port(u32 connection_id, u16 flag_count, EventHandler handler)
{
    if ((connection_id & CONNECTION_ID_RESERVED) || !handler || flag_count == 0 ||
        m_ports.count(connection_id))
        return false;
    m_ports[connection_id] = Port{{}, std::move(handler), flag_count};
    return true;
}

bool HvConnections::remove(u32 connection_id)
{
    return m_ports.erase(connection_id) != 0;
}

HvStatus HvConnections::post_message(unsigned vp, u32 connection_id, u32 message_type,
                                     std::span<const u8> payload) const
{
    auto it = m_ports.find(connection_id);
    if (it == m_ports.end())
        return HvStatus::InvalidConnectionId;
    // The connection exists but its port is not a message port (TLFS 11.11.x).
    if (!it->second.message)
        return HvStatus::InvalidPortId;
    return it->second.message(vp, message_type, payload);
}

HvStatus HvConnections::signal_event(unsigned vp, u32 connection_id, u16 flag) const
{
    auto it = m_ports.find(connection_id);
    if (it == m_ports.end())
        return HvStatus::InvalidConnectionId;
    if (!it->second.event)
        return HvStatus::InvalidPortId;
    if (flag >= it->second.flag_count)
        return HvStatus::InvalidParameter;
    return it->second.event(vp, flag);
}
