// The key-value pair exchange integration service (docs/vmbus.md
// "Integration services"; Hyper-V's "Data Exchange"). Only the channel and
// the negotiation (ic_service.h) are here. Linux's hv_utils does not read
// the channel until a user-space daemon (hv_kvp_daemon, Debian's
// hyperv-daemons) has registered on /dev/vmbus/hv_kvp (hv_kvp.c defers the
// negotiation until then), and the pools it would answer from are that
// daemon's: without it the host's NEGOTIATE waits in the ring and the
// service stays "negotiating", with no error on either side; with it the
// guest picks 4.0. The host's
// pool and queries of the guest's pools (KVPEXCHANGE requests) are not
// implemented; an answer to one is counted and otherwise ignored.
#pragma once

#include "paravirt/vmbus/ic_service.h"

namespace ic {
inline constexpr const char* KVP_CLASS_GUID = "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6";
} // namespace ic

class KvpIc final : public IcService {
public:
    KvpIc(GuestMemory memory, std::function<void()> signal_guest);

    // KVPEXCHANGE answers the guest sent (none are asked for yet).
    u64 exchanges() const { return m_exchanges; }

    void visit_state(StateVisitor& v);

private:
    void on_response(u16 type, std::span<const u8> message) override;

    u64 m_exchanges = 0;
};
