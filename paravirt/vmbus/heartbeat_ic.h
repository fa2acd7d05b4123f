// The heartbeat integration service (docs/vmbus.md "Integration services"):
// how a Hyper-V host knows its guest is alive (Hyper-V Manager's "OK" or
// "No Contact"). After the negotiation (ic_service.h) the host sends a
// HEARTBEAT request every period carrying a sequence number; Linux's
// hv_utils adds one and sends it back (heartbeat_onchannelcallback). A
// request still unanswered when the next one is due counts as missed.
#pragma once

#include "paravirt/vmbus/ic_service.h"

namespace ic {
inline constexpr const char* HEARTBEAT_CLASS_GUID = "57164f39-9115-4e78-ab55-382f3bd5422d";
// HEARTBEAT body (struct heartbeat_msg_data): u64 sequence number, 32
// reserved bytes (Linux reads only the sequence number).
constexpr unsigned HEARTBEAT_SEQUENCE = HEADER_END, HEARTBEAT_BODY = 8 + 32;
} // namespace ic

class HeartbeatIc final : public IcService {
public:
    // hv_util.c: "Every two seconds, Hyper-V send us a heartbeat request".
    static constexpr u64 PERIOD_NS = 2'000'000'000;

    enum class State {
        Closed,      // the guest has not opened the channel
        Negotiating, // opened, the versions not agreed yet
        Waiting,     // negotiated, the first request not answered yet
        Ok,          // the last request due was answered
        NoContact,   // requests go unanswered
    };

    HeartbeatIc(GuestMemory memory, std::function<void()> signal_guest, VirtualClock& clock);

    State state() const;
    // "closed", "negotiating", "waiting", "ok", "no contact".
    static const char* state_name(State state);
    // Requests answered with the right sequence number, requests that went
    // unanswered, and answers that did not add up (wrong number, too short).
    u64 answered() const { return m_answered; }
    u64 missed() const { return m_missed; }
    u64 bad_answers() const { return m_bad; }

    void visit_state(StateVisitor& v);

private:
    void on_negotiated() override { beat(); }
    void on_response(u16 type, std::span<const u8> message) override;
    void on_close() override;
    void beat();

    VirtualClock& m_clock;
    ClockTimer m_timer;
    u64 m_sequence = 0;         // the number the last request carried
    bool m_outstanding = false; // that request is not answered yet
    u32 m_missed_in_row = 0;
    u64 m_answered = 0, m_missed = 0, m_bad = 0;
};
