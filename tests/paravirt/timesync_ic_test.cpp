// The time synchronization integration service against hv_utils'
// timesync_onchannelcallback: a SYNC after the negotiation, SAMPLEs every
// period, host time in 100 ns units since 1601, and from 4.0 the reference
// time it was taken at.
#include "paravirt/vmbus/timesync_ic.h"
#include "tests/paravirt/ic_guest.h"

using namespace vmbus;

namespace {

constexpr u64 UNIX_START_NS = 1767225600ull * 1'000'000'000; // 2026-01-01

struct Harness : IcGuest, IcClock {
    TimesyncIc timesync{memory, signal, clock, [this] { return UNIX_START_NS + clock.now_ns(); },
                        [this] { return 1000 + clock.now_ns() / 100; }};
    Harness() { open(timesync); }
};

} // namespace

TEST_CASE("time sync: 4.0 sends a SYNC at once with the host time since 1601 and the reference "
          "time, then SAMPLEs")
{
    Harness h;
    h.advance(123'400);
    h.negotiate(h.timesync, LINUX_FRAMEWORKS, {0x40000, 0x30000, 0x10000});
    CHECK(h.timesync.service_version() == 0x40000);
    auto [transaction, m] = h.next();
    CHECK(load_le16(m, ic::TYPE) == ic::TYPE_TIMESYNC);
    REQUIRE(m.size() >= ic::HEADER_END + ic::TIMESYNC_V4_BODY);
    // 2026-01-01 00:00:00 UTC in Windows' count, plus 123.4 us.
    CHECK(load_le64(m, ic::TIMESYNC_PARENT_TIME) == 134'116'992'000'000'000ull + 1234);
    CHECK(load_le64(m, ic::TIMESYNC_REFERENCE_TIME) == 1000 + 1234);
    CHECK(m[ic::TIMESYNC_V4_FLAGS] == ic::TIMESYNC_FLAG_SYNC);
    h.answer(h.timesync, transaction, m);
    CHECK(h.timesync.answers() == 1);

    h.advance(TimesyncIc::SAMPLE_PERIOD_NS - 1);
    CHECK(h.empty());
    h.advance(1);
    auto [t2, sample] = h.next();
    CHECK(sample[ic::TIMESYNC_V4_FLAGS] == ic::TIMESYNC_FLAG_SAMPLE);
    CHECK(load_le64(sample, ic::TIMESYNC_PARENT_TIME) ==
          134'116'992'000'000'000ull + 1234 + TimesyncIc::SAMPLE_PERIOD_NS / 100);
    CHECK(h.timesync.syncs_sent() == 1);
    CHECK(h.timesync.samples_sent() == 1);
}

TEST_CASE("time sync: a guest that takes 3.0 gets the older layout, flags after three times")
{
    Harness h;
    h.negotiate(h.timesync, LINUX_FRAMEWORKS, {0x30000});
    auto [transaction, m] = h.next();
    REQUIRE(m.size() >= ic::HEADER_END + ic::TIMESYNC_V3_BODY);
    CHECK(ic::load_version(m, ic::MESSAGE_VERSION) == 0x30000);
    CHECK(load_le64(m, ic::TIMESYNC_PARENT_TIME) == 134'116'992'000'000'000ull);
    CHECK(m[ic::TIMESYNC_V3_FLAGS] == ic::TIMESYNC_FLAG_SYNC);
}

TEST_CASE("time sync: sync_soon sends a SYNC at the next timer run, then SAMPLEs again")
{
    Harness h;
    h.timesync.sync_soon(); // before the negotiation: nothing to do
    h.advance(1);
    h.negotiate(h.timesync, LINUX_FRAMEWORKS, {0x40000});
    h.next(); // the first SYNC
    h.advance(1000);
    h.timesync.sync_soon();
    CHECK(h.empty());
    h.advance(0);
    auto [transaction, m] = h.next();
    CHECK(m[ic::TIMESYNC_V4_FLAGS] == ic::TIMESYNC_FLAG_SYNC);
    CHECK(h.timesync.syncs_sent() == 2);
    h.advance(TimesyncIc::SAMPLE_PERIOD_NS);
    auto [t2, sample] = h.next();
    CHECK(sample[ic::TIMESYNC_V4_FLAGS] == ic::TIMESYNC_FLAG_SAMPLE);
}

TEST_CASE("time sync: a SYNC that finds the ring full goes with the next message instead")
{
    Harness h;
    h.negotiate(h.timesync, LINUX_FRAMEWORKS, {0x40000});
    // The guest reads nothing: samples fill its ring.
    u64 sent = 0;
    for (; sent < 1000 && h.timesync.samples_sent() == sent; ++sent)
        h.advance(TimesyncIc::SAMPLE_PERIOD_NS);
    REQUIRE(h.timesync.samples_sent() < 1000);
    h.timesync.sync_soon();
    h.advance(0);
    CHECK(h.timesync.syncs_sent() == 1); // only the first
    while (h.guest_read()) {
    }
    h.advance(TimesyncIc::SAMPLE_PERIOD_NS);
    CHECK(h.timesync.syncs_sent() == 2);
    auto [transaction, m] = h.next();
    CHECK(m[ic::TIMESYNC_V4_FLAGS] == ic::TIMESYNC_FLAG_SYNC);
}

TEST_CASE(
    "time sync: answers of other types or sizes are ignored, and a closed channel sends nothing")
{
    Harness h;
    h.negotiate(h.timesync, LINUX_FRAMEWORKS, {0x40000});
    auto [transaction, m] = h.next();
    std::vector<u8> other = m;
    store_le16(other, ic::TYPE, 77);
    h.answer(h.timesync, transaction, other);
    std::vector<u8> header_only(m.begin(), m.begin() + ic::HEADER_END);
    h.answer(h.timesync, transaction, header_only); // counted: only the type matters
    CHECK(h.timesync.answers() == 1);
    h.timesync.close();
    h.advance(10 * TimesyncIc::SAMPLE_PERIOD_NS);
    CHECK(h.empty());
}

TEST_CASE("time sync: save and load give the same bytes")
{
    Harness h;
    h.negotiate(h.timesync, LINUX_FRAMEWORKS, {0x40000});
    h.next();
    TimesyncIc copy(
        h.memory, h.signal, h.clock, [] { return u64{0}; }, [] { return u64{0}; });
    check_round_trip(h.timesync, copy);
    CHECK(copy.syncs_sent() == 1);
}
