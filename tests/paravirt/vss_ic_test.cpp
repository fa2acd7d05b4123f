// The backup service against the guest's side as Linux's hv_snapshot.c
// answers: 5.0 negotiated, FREEZE and THAW answered in the request's own
// buffer with the daemon's status.
#include "paravirt/vmbus/vss_ic.h"
#include "tests/paravirt/ic_guest.h"

using namespace vmbus;

namespace {

// The next request's operation, answered with `status` as hv_snapshot.c
// does (its buffer back, the status in the IC header).
u8 answer_next(IcGuest& g, VssIc& vss, u32 status)
{
    auto [transaction, m] = g.next();
    REQUIRE(load_le16(m, ic::TYPE) == ic::TYPE_VSS);
    REQUIRE(m.size() == ic::HEADER_END + vss::MESSAGE_SIZE);
    store_le32(m, ic::STATUS, status);
    g.answer(vss, transaction, m);
    return m[ic::HEADER_END + vss::OPERATION];
}

} // namespace

TEST_CASE("VSS service: freeze and thaw go to the guest and its answers set the state")
{
    IcGuest g;
    VssIc vss(g.memory, g.signal);
    CHECK_FALSE(vss.freeze()); // not open
    g.open(vss);
    g.negotiate(vss, LINUX_FRAMEWORKS, {0x50000});
    CHECK(vss.service_version() == 0x50000);
    REQUIRE(vss.freeze());
    CHECK(vss.state() == VssIc::State::Freezing);
    CHECK_FALSE(vss.thaw()); // one request at a time
    CHECK(answer_next(g, vss, 0) == vss::FREEZE);
    CHECK(vss.state() == VssIc::State::Frozen);
    REQUIRE(vss.thaw());
    CHECK(answer_next(g, vss, 0) == vss::THAW);
    CHECK(vss.state() == VssIc::State::Thawed);
    // Without its daemon the guest's kernel answers HV_E_FAIL.
    REQUIRE(vss.freeze());
    CHECK(answer_next(g, vss, 0x80004005) == vss::FREEZE);
    CHECK(vss.state() == VssIc::State::Failed);
    CHECK(vss.last_status() == 0x80004005);
    CHECK(std::string(VssIc::state_name(vss.state())) == "failed");
}

TEST_CASE("VSS service: an answer that is not the request's is ignored")
{
    IcGuest g;
    VssIc vss(g.memory, g.signal);
    g.open(vss);
    g.negotiate(vss, LINUX_FRAMEWORKS, {0x50000});
    REQUIRE(vss.freeze());
    auto [transaction, m] = g.next();
    std::vector<u8> wrong = m;
    wrong[ic::TRANSACTION] ^= 1;
    g.answer(vss, transaction, wrong);
    wrong = m;
    wrong[ic::HEADER_END + vss::OPERATION] = vss::THAW;
    g.answer(vss, transaction, wrong);
    wrong = m;
    wrong.resize(ic::HEADER_END + 4);
    g.answer(vss, transaction, wrong);
    CHECK(vss.state() == VssIc::State::Freezing);
    g.answer(vss, transaction, m);
    CHECK(vss.state() == VssIc::State::Frozen);
}

TEST_CASE("VSS service: save and load give the same bytes with a request under way")
{
    IcGuest g;
    VssIc vss(g.memory, g.signal);
    g.open(vss);
    g.negotiate(vss, LINUX_FRAMEWORKS, {0x50000});
    REQUIRE(vss.freeze());
    VssIc copy(g.memory, g.signal);
    check_round_trip(vss, copy);
    CHECK(copy.state() == VssIc::State::Freezing);
    CHECK(answer_next(g, copy, 0) == vss::FREEZE);
    CHECK(copy.state() == VssIc::State::Frozen);
    // A closed channel loses the request under way.
    REQUIRE(copy.thaw());
    copy.close();
    CHECK(copy.state() == VssIc::State::Failed);
}
