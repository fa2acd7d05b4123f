// The heartbeat integration service against hv_utils' answer
// (heartbeat_onchannelcallback: the sequence number plus one), on a
// deterministic clock the test moves.
#include "paravirt/vmbus/heartbeat_ic.h"
#include "tests/paravirt/ic_guest.h"

using namespace vmbus;

namespace {

struct Harness : IcGuest, IcClock {
    HeartbeatIc heartbeat{memory, signal, clock};
    Harness() { open(heartbeat); }
    // A heartbeat request; answered with `plus` added to its number when set.
    u64 take_beat(std::optional<u64> plus = 1)
    {
        auto [transaction, m] = next();
        REQUIRE(load_le16(m, ic::TYPE) == ic::TYPE_HEARTBEAT);
        REQUIRE(m.size() >= ic::HEADER_END + ic::HEARTBEAT_BODY);
        const u64 sequence = load_le64(m, ic::HEARTBEAT_SEQUENCE);
        if (plus) {
            store_le64(m, ic::HEARTBEAT_SEQUENCE, sequence + *plus);
            answer(heartbeat, transaction, m);
        }
        return sequence;
    }
};

} // namespace

TEST_CASE("heartbeat: a request goes at once after the negotiation and every two seconds; answers "
          "make it ok")
{
    Harness h;
    CHECK(h.heartbeat.state() == HeartbeatIc::State::Negotiating);
    h.negotiate(h.heartbeat, LINUX_FRAMEWORKS, {0x30000, 0x10000});
    CHECK(h.heartbeat.service_version() == 0x30000);
    CHECK(h.heartbeat.state() == HeartbeatIc::State::Waiting);
    const u64 first = h.take_beat();
    CHECK(h.heartbeat.state() == HeartbeatIc::State::Ok);
    h.advance(HeartbeatIc::PERIOD_NS - 1);
    CHECK(h.empty());
    h.advance(1);
    // The next request carries the guest's number.
    CHECK(h.take_beat() == first + 1);
    h.advance(HeartbeatIc::PERIOD_NS);
    CHECK(h.take_beat() == first + 2);
    CHECK(h.heartbeat.answered() == 3);
    CHECK(h.heartbeat.missed() == 0);
    CHECK(h.heartbeat.state() == HeartbeatIc::State::Ok);
    CHECK(std::string(HeartbeatIc::state_name(h.heartbeat.state())) == "ok");
}

TEST_CASE("heartbeat: a guest that stops answering is no contact until it answers again")
{
    Harness h;
    h.negotiate(h.heartbeat, LINUX_FRAMEWORKS, {0x30000});
    h.take_beat();
    h.advance(HeartbeatIc::PERIOD_NS);
    h.take_beat(std::nullopt);
    CHECK(h.heartbeat.state() == HeartbeatIc::State::Ok); // not late yet
    h.advance(HeartbeatIc::PERIOD_NS);
    CHECK(h.heartbeat.state() == HeartbeatIc::State::NoContact);
    CHECK(h.heartbeat.missed() == 1);
    h.take_beat();
    CHECK(h.heartbeat.state() == HeartbeatIc::State::Ok);
}

TEST_CASE("heartbeat: a wrong or short answer is counted and not taken")
{
    Harness h;
    h.negotiate(h.heartbeat, LINUX_FRAMEWORKS, {0x30000});
    auto [transaction, m] = h.next();
    const u64 sequence = load_le64(m, ic::HEARTBEAT_SEQUENCE);
    std::vector<u8> same = m; // not incremented
    h.answer(h.heartbeat, transaction, same);
    std::vector<u8> short_answer(m.begin(), m.begin() + ic::HEADER_END + 4);
    h.answer(h.heartbeat, transaction, short_answer);
    CHECK(h.heartbeat.bad_answers() == 2);
    CHECK(h.heartbeat.state() == HeartbeatIc::State::Waiting);
    store_le64(m, ic::HEARTBEAT_SEQUENCE, sequence + 1);
    h.answer(h.heartbeat, transaction, m);
    CHECK(h.heartbeat.state() == HeartbeatIc::State::Ok);
    // An answer to nothing outstanding.
    h.answer(h.heartbeat, transaction, m);
    CHECK(h.heartbeat.bad_answers() == 3);
    CHECK(h.heartbeat.answered() == 1);
}

TEST_CASE("heartbeat: a closed channel sends nothing and says so")
{
    Harness h;
    h.negotiate(h.heartbeat, LINUX_FRAMEWORKS, {0x30000});
    h.take_beat();
    h.heartbeat.close();
    CHECK(h.heartbeat.state() == HeartbeatIc::State::Closed);
    h.advance(10 * HeartbeatIc::PERIOD_NS);
    CHECK(h.empty());
    CHECK(h.heartbeat.missed() == 0);
}

TEST_CASE("heartbeat: save and load give the same bytes and the same next beat")
{
    Harness h;
    h.negotiate(h.heartbeat, LINUX_FRAMEWORKS, {0x30000});
    const u64 first = h.take_beat();
    h.advance(HeartbeatIc::PERIOD_NS / 2);
    HeartbeatIc copy(h.memory, h.signal, h.clock);
    check_round_trip(h.heartbeat, copy);
    h.heartbeat.close(); // only the copy's timer runs from here
    CHECK(copy.state() == HeartbeatIc::State::Ok);
    h.advance(HeartbeatIc::PERIOD_NS / 2);
    auto [transaction, m] = h.next();
    CHECK(load_le64(m, ic::HEARTBEAT_SEQUENCE) == first + 1);
}
