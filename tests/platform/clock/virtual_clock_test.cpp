#include "platform/clock/virtual_clock.h"

#include <doctest/doctest.h>

namespace {

// A host-mode clock on a fake host time and instruction count.
struct HostClock {
    VirtualClock clock{VirtualClock::Mode::Host};
    u64 host = 1'000'000;
    u64 instructions = 0;
    HostClock()
    {
        clock.set_host_time_source([this] { return host; });
        clock.set_instruction_counter([this] { return instructions; });
    }
    u64 now() { return clock.now_ns(); }
};

} // namespace

TEST_CASE("host clock follows host time while the vCPUs make progress")
{
    HostClock c;
    CHECK(c.now() == 0);
    c.host += 1'000'000; // 1 ms for 100,000 instructions: 10 ns each
    c.instructions += 100'000;
    CHECK(c.now() == 1'000'000);
    c.host += 5'000;
    c.instructions += 10;
    CHECK(c.now() == 1'005'000); // within the fixed allowance
}

TEST_CASE("host clock hides a preemption: a gap far beyond the instructions retired")
{
    HostClock c;
    c.now();
    c.host += 30'000'000; // 30 ms pass while only 5 instructions retire
    c.instructions += 5;
    const u64 allowed =
        VirtualClock::MAX_RUNNING_GAP_NS + 5 * VirtualClock::MAX_NS_PER_RUNNING_INSTRUCTION;
    CHECK(c.now() == allowed);
    // Later readings continue from there at host speed.
    c.host += 1'000;
    c.instructions += 100;
    CHECK(c.now() == allowed + 1'000);
}

TEST_CASE("host clock lets idle waits pass in full")
{
    HostClock c;
    c.now();
    c.host += 30'000'000;
    c.clock.note_idle_wait();
    CHECK(c.now() == 30'000'000);
    // Only the next reading: a later gap is judged again.
    c.host += 30'000'000;
    CHECK(c.now() == 30'000'000 + VirtualClock::MAX_RUNNING_GAP_NS);
}

TEST_CASE("host clock never goes backwards")
{
    HostClock c;
    c.host += 10'000;
    c.instructions += 1000;
    const u64 first = c.now();
    c.host -= 5'000; // a host clock step back must not show
    CHECK(c.now() == first);
}

TEST_CASE("deterministic clock counts instructions and skipped idle time")
{
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    u64 instructions = 500;
    clock.set_instruction_counter([&instructions] { return instructions; });
    CHECK(clock.now_ns() == 500 * VirtualClock::NS_PER_INSTRUCTION);
    clock.skip_to(10'000);
    CHECK(clock.now_ns() == 10'000);
    instructions += 7;
    CHECK(clock.now_ns() == 10'007);
}

TEST_CASE("instructions until the next deadline: none armed, exact when deterministic, due")
{
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    u64 instructions = 1000;
    clock.set_instruction_counter([&] { return instructions; });
    CHECK(clock.instructions_until_next_deadline() == ~0ull);
    ClockTimer far{clock, [] {}}, near{clock, [] {}};
    far.arm(50'000);
    near.arm(3'500);
    CHECK(clock.instructions_until_next_deadline() == 2'500);
    instructions = 3'500;
    CHECK(clock.instructions_until_next_deadline() == 0);
    near.disarm();
    CHECK(clock.instructions_until_next_deadline() == 46'500);
}

TEST_CASE("host clock: instructions until the next deadline never exceed its nanoseconds")
{
    HostClock c;
    ClockTimer timer{c.clock, [] {}};
    timer.arm(c.now() + 10'000);
    CHECK(c.clock.instructions_until_next_deadline() <= 10'000);
}
