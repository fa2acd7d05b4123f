#include "paravirt/hv_test_device.h"

#include "paravirt/hyperv.h"

#include <algorithm>

HvTestDevice::HvTestDevice(HyperV& hv) : m_hv(hv), m_routes(hv.config().vp_count) {}

HvTestDevice::~HvTestDevice()
{
    for (const auto& [id, target] : m_connections)
        m_hv.connections().remove(id);
}

u64 HvTestDevice::io_read(u64 /*offset*/, unsigned size)
{
    // Write-only, as QEMU's; a read sees no device, whatever its width.
    return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

void HvTestDevice::io_write(u64 offset, unsigned size, u64 value)
{
    // QEMU accepts only aligned 32-bit accesses; anything else is dropped.
    if (offset != 0 || size != 4)
        return;
    control(static_cast<u8>(value >> 16), (value >> 8) & 0xFF, value & 0xFF,
            static_cast<u8>(value >> 24));
}

bool HvTestDevice::valid_target(unsigned vp, unsigned sint) const
{
    return vp < m_routes.size() && sint < HV_SINT_COUNT;
}

bool HvTestDevice::has_route(unsigned vp, unsigned sint) const
{
    return valid_target(vp, sint) && m_routes[vp][sint];
}

void HvTestDevice::control(u8 control, unsigned vp, unsigned sint, u8 connection_id)
{
    switch (control) {
    case SINT_ROUTE_CREATE:
        if (valid_target(vp, sint))
            m_routes[vp][sint] = true;
        return;
    case SINT_ROUTE_DESTROY:
        if (valid_target(vp, sint))
            m_routes[vp][sint] = false;
        return;
    case SINT_ROUTE_SET_SINT:
        // KVM raises the vector only while the SINT is unmasked; so does
        // Synic::signal_sint (and only with the SynIC enabled, as TLFS 11.2).
        if (has_route(vp, sint))
            m_hv.synic(vp).signal_sint(sint);
        return;
    case MSG_CONN_CREATE:
    case EVT_CONN_CREATE:
        if (valid_target(vp, sint))
            create_connection(connection_id, {vp, sint, control == EVT_CONN_CREATE});
        return;
    case MSG_CONN_DESTROY:
    case EVT_CONN_DESTROY:
        destroy_connection(connection_id, control == EVT_CONN_DESTROY);
        return;
    default:
        return; // unknown controls are ignored, as QEMU does
    }
}

void HvTestDevice::create_connection(u8 connection_id, Target target)
{
    HvConnections& table = m_hv.connections();
    bool added;
    if (target.event) {
        // One flag per port: the caller's flag number is relative to the
        // port's first flag (TLFS 11.11), which is the connection ID here,
        // as QEMU's test device signals flag conn_id.
        added = table.add_event_port(
            connection_id, 1, [this, target, connection_id](unsigned, u16 flag) {
                return m_hv.synic(target.vp).signal_event(target.sint, connection_id + flag);
            });
    } else {
        added = table.add_message_port(
            connection_id, [this, target](unsigned, u32 type, std::span<const u8> payload) {
                // Echo: the same type and payload into the target SINT's
                // slot. A full slot queues it (Success), as KVM retries it.
                HvMessage message;
                message.type = type;
                message.payload_size = static_cast<u8>(payload.size());
                std::copy_n(payload.begin(), std::min(payload.size(), message.payload.size()),
                            message.payload.begin());
                return m_hv.synic(target.vp).post_message(target.sint, message);
            });
    }
    // A connection ID already in the table (the device's or the host's)
    // stays as it was.
    if (added)
        m_connections[connection_id] = target;
}

void HvTestDevice::destroy_connection(u8 connection_id, bool event)
{
    auto it = m_connections.find(connection_id);
    // Only this device's own connections of the named kind go away.
    if (it == m_connections.end() || it->second.event != event)
        return;
    m_hv.connections().remove(connection_id);
    m_connections.erase(it);
}
