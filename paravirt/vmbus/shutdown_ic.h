// The shutdown integration service (docs/vmbus.md "Integration services"),
// which Linux's hv_utils binds to: how a Hyper-V host asks its guest to shut
// down cleanly (Stop-VM), which QMP system_powerdown uses once the guest has
// opened it. Its channel carries the integration-component framing every
// such service shares: a pipe header {flags, size}, an IC message header
// {framework version, type, message version, size, status, transaction,
// flags}, the body. The host speaks first: a NEGOTIATE offering framework
// and service versions, which the guest answers with its choice; then a
// SHUTDOWN request, which the guest acknowledges before powering off.
#pragma once

#include "mmu/base/state_visitor.h"
#include "paravirt/vmbus/vmbus_ring.h"
#include "paravirt/vmbus/vmbus_server.h"

#include <functional>
#include <optional>

namespace ic {
// Offsets in a message: the pipe header, then the IC header.
constexpr unsigned PIPE_FLAGS = 0, PIPE_SIZE = 4, PIPE_HEADER = 8;
constexpr unsigned FRAMEWORK_VERSION = 8, TYPE = 12, MESSAGE_VERSION = 14, SIZE = 18, STATUS = 20,
                   TRANSACTION = 24, FLAGS = 25, HEADER_END = 28;
constexpr u16 TYPE_NEGOTIATE = 0, TYPE_SHUTDOWN = 3;
constexpr u8 FLAG_TRANSACTION = 1, FLAG_REQUEST = 2, FLAG_RESPONSE = 4;
// NEGOTIATE body: u16 framework count, u16 message count, u32 reserved,
// then {u16 major, u16 minor} per version, frameworks first.
constexpr unsigned NEGOTIATE_FRAMEWORK_COUNT = HEADER_END, NEGOTIATE_MESSAGE_COUNT = HEADER_END + 2,
                   NEGOTIATE_VERSIONS = HEADER_END + 8;
// SHUTDOWN body: reason code, timeout in seconds, flags (0 shut down, 2
// reboot, 4 hibernate; | 1 forced), a 2048-byte message.
constexpr unsigned SHUTDOWN_FLAGS = HEADER_END + 8, SHUTDOWN_BODY = 12 + 2048;
inline constexpr const char* SHUTDOWN_CLASS_GUID = "0e0b6031-5213-4934-818b-38d90ced39db";
} // namespace ic

class ShutdownIc final : public VmbusServer::Device {
public:
    ShutdownIc(GuestMemory memory, std::function<void()> signal_guest);

    bool open(const VmbusServer::OpenRequest& request) override;
    void opened() override;
    void close() override;
    void signaled() override;

    // The guest has answered the negotiation: a shutdown request can go.
    bool ready() const { return m_rings && m_negotiated; }
    // Asks the guest to shut down (gracefully); false when it is not ready
    // or the ring is full.
    bool request_shutdown();
    // Versions the guest chose ((major << 16) | minor), 0 before it has.
    u32 framework_version() const { return m_framework; }
    u32 service_version() const { return m_service; }
    // The guest's answer to the last shutdown request: its status (0 = it
    // will shut down), if it has answered.
    std::optional<u32> shutdown_status() const { return m_shutdown_status; }

    void visit_state(StateVisitor& v);

private:
    bool send(std::span<const u8> message);
    void receive(const vmbus::Packet& packet);

    GuestMemory m_memory;
    std::function<void()> m_signal_guest;
    std::optional<vmbus::RingPair> m_rings;
    bool m_negotiated = false;
    u32 m_framework = 0, m_service = 0;
    u8 m_transaction = 0;
    std::optional<u32> m_shutdown_status;
};
