// What every integration service (docs/vmbus.md "Integration services")
// shares: the framing of its messages and the version negotiation that
// opens its channel. Linux's hv_utils (drivers/hv/hv_util.c, hv_kvp.c) binds
// to them. A message is a pipe header {flags, size}, an IC message header
// {framework version, type, message version, size, status, transaction,
// flags} and the body. The host speaks first: when the guest has opened the
// channel it sends a NEGOTIATE offering framework and service versions; the
// guest answers with one of each (vmbus_prep_negotiate_resp: the first of
// its own list the host offered). Every later request is the host's too,
// and the guest answers each in place, flagged a response.
//
// The guest's answers are untrusted: one too short, not flagged a response,
// of another type, or naming versions the host did not offer is ignored
// (the service stays where it was); nothing it sends can crash the host.
#pragma once

#include "mmu/base/state_visitor.h"
#include "paravirt/vmbus/vmbus_ring.h"
#include "paravirt/vmbus/vmbus_server.h"
#include "platform/clock/virtual_clock.h"

#include <functional>
#include <optional>
#include <span>
#include <vector>

namespace ic {
// Offsets in a message: the pipe header, then the IC header (struct
// vmbuspipe_hdr and struct icmsg_hdr in Linux's include/linux/hyperv.h).
constexpr unsigned PIPE_FLAGS = 0, PIPE_SIZE = 4, PIPE_HEADER = 8;
constexpr unsigned FRAMEWORK_VERSION = 8, TYPE = 12, MESSAGE_VERSION = 14, SIZE = 18, STATUS = 20,
                   TRANSACTION = 24, FLAGS = 25, HEADER_END = 28;
// ICMSGTYPE_*.
constexpr u16 TYPE_NEGOTIATE = 0, TYPE_HEARTBEAT = 1, TYPE_KVP_EXCHANGE = 2, TYPE_SHUTDOWN = 3,
              TYPE_TIMESYNC = 4;
// ICMSGHDRFLAG_*.
constexpr u8 FLAG_TRANSACTION = 1, FLAG_REQUEST = 2, FLAG_RESPONSE = 4;
// NEGOTIATE body (struct icmsg_negotiate): u16 framework count, u16 message
// count, u32 reserved, then {u16 major, u16 minor} per version, frameworks
// first.
constexpr unsigned NEGOTIATE_FRAMEWORK_COUNT = HEADER_END, NEGOTIATE_MESSAGE_COUNT = HEADER_END + 2,
                   NEGOTIATE_VERSIONS = HEADER_END + 8;
// Framework versions every service offers: Linux 6.1 takes 3.0 first, 1.0
// (Windows Server 2008) otherwise.
constexpr u32 FRAMEWORK_VERSIONS[] = {0x30000, 0x10000};

// (major << 16) | minor from a message's {u16 major, u16 minor}, and back.
u32 load_version(std::span<const u8> m, unsigned at);
void store_version(std::span<u8> m, unsigned at, u32 version);
// A service's periodic timer in its saved state: whether it is armed, and when.
void visit_timer(StateVisitor& v, ClockTimer& timer);
} // namespace ic

// The channel end of one integration service: its rings, the negotiation,
// the host's transaction numbers. A service derives from it, names the
// versions it offers, and sends requests once negotiated() is true.
class IcService : public VmbusServer::Device {
public:
    bool open(const VmbusServer::OpenRequest& request) override;
    void opened() override;
    void close() override;
    void signaled() override;

    bool is_open() const { return m_rings.has_value(); }
    // The guest has answered the negotiation: requests can go.
    bool negotiated() const { return m_rings && m_negotiated; }
    // Versions the guest chose ((major << 16) | minor), 0 before it has.
    u32 framework_version() const { return m_framework; }
    u32 service_version() const { return m_service; }

protected:
    // `service_versions`: the service's versions, newest first.
    IcService(GuestMemory memory, std::function<void()> signal_guest,
              std::vector<u32> service_versions);

    // A request with the framing filled in (pipe header, IC header with the
    // negotiated versions and the next transaction number) and `body` zero
    // bytes after it, for the caller to fill from ic::HEADER_END.
    std::vector<u8> request(u16 type, size_t body)
    {
        return frame(type, m_framework, m_service, body);
    }
    // Writes it to the guest; false when the channel is not open, the ring
    // is full or broken.
    bool send(std::span<const u8> message);

    // Hooks. The guest has chosen versions.
    virtual void on_negotiated() {}
    // A response of a type other than NEGOTIATE, after the negotiation; at
    // least ic::HEADER_END bytes.
    virtual void on_response(u16 /*type*/, std::span<const u8> /*message*/) {}
    // The channel opened (before the NEGOTIATE goes) or closed.
    virtual void on_open() {}
    virtual void on_close() {}
    // The guest signalled after reading: a request that found the ring full
    // (send false: the ring then asks the guest to signal when it has made
    // room) may go now.
    virtual void on_room() {}

    // The channel's state: rings, negotiation, transaction number (the
    // layout of the shutdown service's section, v1).
    void visit_channel_state(StateVisitor& v);

    GuestMemory m_memory;

private:
    std::vector<u8> frame(u16 type, u32 framework, u32 message_version, size_t body);
    void receive(const vmbus::Packet& packet);

    std::function<void()> m_signal_guest;
    std::vector<u32> m_service_versions;
    std::optional<vmbus::RingPair> m_rings;
    bool m_negotiated = false;
    u32 m_framework = 0, m_service = 0;
    u8 m_transaction = 0;
};
