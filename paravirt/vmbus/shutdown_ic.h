// The shutdown integration service (docs/vmbus.md "Integration services"),
// which Linux's hv_utils binds to: how a Hyper-V host asks its guest to shut
// down cleanly (Stop-VM), which QMP system_powerdown uses once the guest has
// opened it. After the negotiation (ic_service.h) the host sends a SHUTDOWN
// request, which the guest acknowledges before powering off.
#pragma once

#include "paravirt/vmbus/ic_service.h"

namespace ic {
// SHUTDOWN body: reason code, timeout in seconds, flags (0 shut down, 2
// reboot, 4 hibernate; | 1 forced), a 2048-byte message.
constexpr unsigned SHUTDOWN_FLAGS = HEADER_END + 8, SHUTDOWN_BODY = 12 + 2048;
inline constexpr const char* SHUTDOWN_CLASS_GUID = "0e0b6031-5213-4934-818b-38d90ced39db";
} // namespace ic

class ShutdownIc final : public IcService {
public:
    ShutdownIc(GuestMemory memory, std::function<void()> signal_guest);

    // The guest has answered the negotiation: a shutdown request can go.
    bool ready() const { return negotiated(); }
    // Asks the guest to shut down (gracefully); false when it is not ready
    // or the ring is full.
    bool request_shutdown();
    // The guest's answer to the last shutdown request: its status (0 = it
    // will shut down), if it has answered.
    std::optional<u32> shutdown_status() const { return m_shutdown_status; }

    void visit_state(StateVisitor& v);

private:
    void on_open() override { m_shutdown_status.reset(); }
    void on_response(u16 type, std::span<const u8> message) override;

    std::optional<u32> m_shutdown_status;
};
