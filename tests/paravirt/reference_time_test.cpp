#include "paravirt/reference_time.h"

#include "platform/clock/virtual_clock.h"

#include <doctest/doctest.h>

namespace {
struct Clock {
    u64 ns = 0;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    Clock()
    {
        clock.set_instruction_counter([this] { return ns; });
    }
};
} // namespace

TEST_CASE("Reference time counts 100 ns ticks of the virtual clock at a 1 GHz TSC")
{
    Clock c;
    ReferenceTime t(c.clock, 1'000'000'000);
    CHECK(t.scale() == 0x028F5C28F5C28F5Dull); // ceil(2^64 / 100)
    CHECK(t.offset() == 0);
    CHECK(t.now() == 0);
    c.ns = 1'000'000'001; // one second and a bit
    CHECK(t.tsc_now() == 1'000'000'001);
    CHECK(t.now() == 10'000'000);
    // Exactly one tick per 100 ns, on the boundaries too.
    for (u64 ns : {99ull, 100ull, 199ull, 200ull, 86'400'000'000'000ull, 86'400'000'000'099ull}) {
        c.ns = ns;
        CHECK(t.now() == ns / 100);
    }
}

TEST_CASE("Reference time follows the TSC page formula for other TSC rates")
{
    Clock c;
    ReferenceTime t(c.clock, 2'500'000'000);
    c.ns = 4'000'000'000;
    CHECK(t.tsc_now() == 10'000'000'000);
    const unsigned __int128 product = (unsigned __int128)t.tsc_now() * t.scale();
    CHECK(t.now() == static_cast<u64>(product >> 64));
    CHECK(t.now() >= 40'000'000 - 1);
    CHECK(t.now() <= 40'000'000);
}

TEST_CASE("Reference time deadline is the first clock instant that reaches it")
{
    Clock c;
    for (u64 hz : {1'000'000'000ull, 2'500'000'000ull, 20'000'000ull, 3'192'000'123ull}) {
        ReferenceTime t(c.clock, hz);
        for (u64 reference : {1ull, 7ull, 100ull, 123'456ull, 10'000'000'000ull}) {
            const u64 ns = t.clock_ns_when(reference);
            CHECK(t.from_tsc(t.tsc_at(ns)) >= reference);
            CHECK(t.from_tsc(t.tsc_at(ns - 1)) < reference);
        }
    }
}
