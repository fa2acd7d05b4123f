#include "paravirt/vmbus/vss_ic.h"

#include <utility>

// Linux 6.1 takes VSS 5.0 only (vss_versions in hv_snapshot.c); FREEZE and
// THAW exist from 5.0 on.
VssIc::VssIc(GuestMemory memory, std::function<void()> signal_guest)
    : IcService(memory, std::move(signal_guest), {0x50000})
{
}

const char* VssIc::state_name(State state)
{
    switch (state) {
    case State::Thawed: return "thawed";
    case State::Freezing: return "freezing";
    case State::Frozen: return "frozen";
    case State::Thawing: return "thawing";
    case State::Failed: return "failed";
    }
    return "thawed";
}

bool VssIc::freeze() { return ask(vss::FREEZE, State::Freezing); }

bool VssIc::thaw() { return ask(vss::THAW, State::Thawing); }

bool VssIc::ask(u8 operation, State next)
{
    if (!negotiated() || m_in_flight)
        return false;
    std::vector<u8> m = request(ic::TYPE_VSS, vss::MESSAGE_SIZE);
    m[ic::HEADER_END + vss::OPERATION] = operation;
    if (!send(m))
        return false;
    m_in_flight = operation;
    m_in_flight_transaction = m[ic::TRANSACTION];
    m_state = next;
    return true;
}

void VssIc::on_response(u16 type, std::span<const u8> m)
{
    // hv_snapshot.c answers in the request's own buffer.
    if (type != ic::TYPE_VSS || !m_in_flight || m.size() < ic::HEADER_END + vss::MESSAGE_SIZE ||
        m[ic::TRANSACTION] != m_in_flight_transaction || m[ic::HEADER_END + vss::OPERATION] != *m_in_flight)
        return;
    m_last_status = load_le32(m, ic::STATUS);
    const bool froze = *m_in_flight == vss::FREEZE;
    m_in_flight.reset();
    m_state = m_last_status != 0 ? State::Failed : froze ? State::Frozen : State::Thawed;
}

void VssIc::on_close()
{
    // A closed channel answers nothing: a request under way is lost.
    m_in_flight.reset();
    if (m_state == State::Freezing || m_state == State::Thawing)
        m_state = State::Failed;
}

void VssIc::visit_state(StateVisitor& v)
{
    v.section("vss-ic", 1);
    visit_channel_state(v);
    v.field("state", m_state);
    if (v.loading() && static_cast<u8>(m_state) > static_cast<u8>(State::Failed))
        return v.fail("vss-ic: bad state");
    bool in_flight = m_in_flight.has_value();
    u8 operation = m_in_flight.value_or(0);
    v.field("in_flight", in_flight);
    v.field("operation", operation);
    if (v.loading())
        m_in_flight = in_flight ? std::optional<u8>(operation) : std::nullopt;
    v.field("in_flight_transaction", m_in_flight_transaction);
    v.field("last_status", m_last_status);
}
