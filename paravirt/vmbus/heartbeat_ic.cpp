#include "paravirt/vmbus/heartbeat_ic.h"

#include <utility>

using namespace vmbus;

// Linux 6.1 takes heartbeat 3.0, else 1.0 (hb_versions in hv_util.c).
HeartbeatIc::HeartbeatIc(GuestMemory memory, std::function<void()> signal_guest,
                         VirtualClock& clock)
    : IcService(memory, std::move(signal_guest), {0x30000, 0x10000}), m_clock(clock),
      m_timer(clock, [this] { beat(); })
{
}

HeartbeatIc::State HeartbeatIc::state() const
{
    if (!is_open())
        return State::Closed;
    if (!negotiated())
        return State::Negotiating;
    if (m_missed_in_row > 0)
        return State::NoContact;
    return m_answered > 0 ? State::Ok : State::Waiting;
}

const char* HeartbeatIc::state_name(State state)
{
    switch (state) {
    case State::Closed:
        return "closed";
    case State::Negotiating:
        return "negotiating";
    case State::Waiting:
        return "waiting";
    case State::Ok:
        return "ok";
    case State::NoContact:
        return "no contact";
    }
    return "?";
}

void HeartbeatIc::beat()
{
    if (!negotiated())
        return;
    if (m_outstanding) {
        ++m_missed;
        ++m_missed_in_row;
    }
    std::vector<u8> m = request(ic::TYPE_HEARTBEAT, ic::HEARTBEAT_BODY);
    store_le64(m, ic::HEARTBEAT_SEQUENCE, m_sequence);
    // A full ring (a guest that stopped reading) is a missed beat next time.
    send(m);
    m_outstanding = true;
    m_timer.arm(m_clock.now_ns() + PERIOD_NS);
}

void HeartbeatIc::on_response(u16 type, std::span<const u8> m)
{
    if (type != ic::TYPE_HEARTBEAT)
        return;
    if (m.size() < ic::HEARTBEAT_SEQUENCE + 8 || !m_outstanding ||
        load_le64(m, ic::HEARTBEAT_SEQUENCE) != m_sequence + 1) {
        ++m_bad;
        return;
    }
    // The next request carries the guest's number, which it will bump again.
    m_sequence = load_le64(m, ic::HEARTBEAT_SEQUENCE);
    m_outstanding = false;
    m_missed_in_row = 0;
    ++m_answered;
}

void HeartbeatIc::on_close()
{
    m_timer.disarm();
    m_outstanding = false;
    m_missed_in_row = 0;
}

void HeartbeatIc::visit_state(StateVisitor& v)
{
    v.section("heartbeat-ic", 1);
    visit_channel_state(v);
    v.field("sequence", m_sequence);
    v.field("outstanding", m_outstanding);
    v.field("missed_in_row", m_missed_in_row);
    v.field("answered", m_answered);
    v.field("missed", m_missed);
    v.field("bad", m_bad);
    ic::visit_timer(v, m_timer);
}
