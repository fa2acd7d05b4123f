// The host side of the partition's connections (TLFS 11.6): the endpoints
// a guest reaches with HvCallPostMessage and HvCallSignalEvent. In viridian
// the parent partition is this process, so a "port" is a handler the VMBus
// host (or a test) registers under a connection ID. Nothing here is guest
// state: the host re-registers its connections after a snapshot load.
#pragma once

#include "paravirt/tlfs.h"

#include <functional>
#include <map>
#include <span>

class HvConnections {
public:
    // A message port: gets the caller's VP, the message type and payload;
    // answers Success, InsufficientBuffers or any other HV_STATUS.
    using MessageHandler =
        std::function<HvStatus(unsigned vp, u32 message_type, std::span<const u8> payload)>;
    // An event port with `flag_count` flags (flag numbers 0 .. count-1).
    using EventHandler = std::function<HvStatus(unsigned vp, u16 flag)>;

    // False when the connection ID is taken or has reserved bits (31:24).
    bool add_message_port(u32 connection_id, MessageHandler handler);
    bool add_event_port(u32 connection_id, u16 flag_count, EventHandler handler);
    bool remove(u32 connection_id);

    // What the hypercalls do once their input is validated (TLFS 11.11).
    HvStatus post_message(unsigned vp, u32 connection_id, u32 message_type,
                          std::span<const u8> payload) const;
    HvStatus signal_event(unsigned vp, u32 connection_id, u16 flag) const;

private:
    struct Port {
        MessageHandler message;
        EventHandler event;
        u16 flag_count = 0;
    };
    std::map<u32, Port> m_ports;
};
