// The backup (volume shadow copy) integration service (docs/vmbus.md
// "Integration services"; Hyper-V's "Backup (volume shadow copy)"), which
// Linux's hv_utils binds to (hv_snapshot.c): how a host asks its guest to
// freeze its filesystems before it copies the disks, and to thaw them
// after. The guest's kernel passes FREEZE and THAW to a user-space daemon
// (hv_vss_daemon, Debian's hyperv-daemons, in the default guest), which
// freezes every mounted block-device filesystem (FIFREEZE) and answers;
// without the daemon the kernel answers HV_E_FAIL at once.
#pragma once

#include "paravirt/vmbus/ic_service.h"

#include <optional>

namespace ic {
inline constexpr const char* VSS_CLASS_GUID = "35fa2e29-ea23-4236-96ae-3a6ebacba440";
constexpr u16 TYPE_VSS = 5;
} // namespace ic

namespace vss {
// struct hv_vss_msg (include/uapi/linux/hyperv.h) after the IC header:
// {u8 operation, u8 reserved[7]}, then a u32 of flags; hv_snapshot.c
// refuses a message shorter than these 12 bytes.
constexpr unsigned OPERATION = 0, FLAGS = 8, MESSAGE_SIZE = 12;
enum Operation : u8 { HOT_BACKUP = 2, GET_DM_INFO = 3, FREEZE = 5, THAW = 6 };
} // namespace vss

class VssIc final : public IcService {
public:
    // Thawed: nothing asked, or the last thaw done. Failed: the guest
    // refused the last request (no daemon, a filesystem it could not
    // freeze); its filesystems are not frozen (the daemon thaws what it
    // froze when a freeze fails).
    enum class State : u8 { Thawed, Freezing, Frozen, Thawing, Failed };
    static const char* state_name(State state);

    VssIc(GuestMemory memory, std::function<void()> signal_guest);

    // Ask the guest to freeze or thaw; false (and nothing sent) before the
    // negotiation or while a request is answered.
    bool freeze();
    bool thaw();
    State state() const { return m_state; }
    // The guest's status for the last request it answered (0: done).
    u32 last_status() const { return m_last_status; }

    void visit_state(StateVisitor& v);

private:
    bool ask(u8 operation, State next);
    void on_response(u16 type, std::span<const u8> message) override;
    void on_close() override;

    State m_state = State::Thawed;
    std::optional<u8> m_in_flight; // the operation asked, until answered
    u8 m_in_flight_transaction = 0;
    u32 m_last_status = 0;
};
