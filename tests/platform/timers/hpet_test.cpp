#include "platform/timers/hpet.h"

#include "mmu/base/state_visitor.h"
#include "platform/interrupts/io_apic.h"
#include "platform/interrupts/local_apic.h"
#include "tests/state_patch.h"

#include <doctest/doctest.h>

#include <vector>

namespace {

constexpr u64 CAP = 0x000, CONFIG = 0x010, STATUS = 0x020, COUNTER = 0x0F0;
constexpr u64 timer_config(unsigned n)
{
    return 0x100 + 0x20 * n;
}
constexpr u64 timer_cmp(unsigned n)
{
    return 0x108 + 0x20 * n;
}

constexpr u64 ENABLE = 1, LEGACY = 2;
constexpr u64 TN_LEVEL = 1 << 1, TN_ENABLE = 1 << 2, TN_PERIODIC = 1 << 3, TN_VAL_SET = 1 << 6,
              TN_32BIT = 1 << 8;
constexpr u64 route(unsigned gsi)
{
    return u64(gsi) << 9;
}

struct Event {
    u32 gsi;
    bool level;
    bool operator==(const Event&) const = default;
};

struct Bench {
    u64 ns = 0;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    Hpet hpet{clock};
    std::vector<Event> events;
    std::vector<bool> legacy;

    Bench()
    {
        clock.set_instruction_counter([this] { return ns; });
        hpet.set_irq_line([this](u32 gsi, bool level) { events.push_back({gsi, level}); });
        hpet.set_legacy_handler([this](bool on) { legacy.push_back(on); });
    }
    u64 rd(u64 reg) { return hpet.io_read(reg, 8); }
    u32 rd32(u64 reg) { return static_cast<u32>(hpet.io_read(reg, 4)); }
    void wr(u64 reg, u64 v) { hpet.io_write(reg, 8, v); }
    void wr32(u64 reg, u32 v) { hpet.io_write(reg, 4, v); }
    void advance(u64 delta)
    {
        ns += delta;
        clock.run_due();
    }
    // Pulses (raise then lower) seen on gsi.
    int pulses(u32 gsi) const
    {
        int n = 0;
        for (size_t i = 0; i + 1 < events.size(); ++i)
            if (events[i] == Event{gsi, true} && events[i + 1] == Event{gsi, false})
                ++n;
        return n;
    }
};

} // namespace

TEST_CASE("HPET capabilities report 10 ns period, 3 timers, 64-bit and legacy routing")
{
    Bench b;
    const u64 cap = b.rd(CAP);
    CHECK((cap >> 32) == 10'000'000);
    CHECK(((cap >> 8) & 0x1F) == 2);
    CHECK((cap & (1 << 13)) != 0);
    CHECK((cap & (1 << 15)) != 0);
    CHECK((cap & 0xFF) == 1);
    CHECK((cap >> 16 & 0xFFFF) == 0x8086);
    CHECK(b.rd32(CAP + 4) == 10'000'000);
}

TEST_CASE("HPET timer capabilities: periodic only on timer 0, route capability GSI 20-23")
{
    Bench b;
    CHECK((b.rd(timer_config(0)) & (1 << 4)) != 0);
    CHECK((b.rd(timer_config(1)) & (1 << 4)) == 0);
    CHECK((b.rd(timer_config(2)) & (1 << 5)) != 0); // 64-bit capable
    CHECK((b.rd(timer_config(1)) >> 32) == 0x00F00000);
    CHECK((b.rd(timer_config(1)) & (1 << 15)) == 0); // no FSB delivery
}

TEST_CASE("HPET main counter runs at 100 MHz only while enabled")
{
    Bench b;
    b.advance(1000);
    CHECK(b.rd(COUNTER) == 0);
    b.wr(CONFIG, ENABLE);
    b.advance(1000);
    CHECK(b.rd(COUNTER) == 100);
    b.wr(CONFIG, 0);
    b.advance(1000);
    CHECK(b.rd(COUNTER) == 100);
    b.wr(CONFIG, ENABLE);
    b.advance(50);
    CHECK(b.rd(COUNTER) == 105);
}

TEST_CASE("HPET main counter can be written while halted, a dword at a time")
{
    Bench b;
    b.wr32(COUNTER + 4, 0x1);
    b.wr32(COUNTER, 0xFFFFFFF0);
    CHECK(b.rd(COUNTER) == 0x1FFFFFFF0ull);
    b.wr(CONFIG, ENABLE);
    b.advance(200);
    CHECK(b.rd32(COUNTER) == 0x4);
    CHECK(b.rd32(COUNTER + 4) == 0x2);
}

TEST_CASE("HPET one-shot edge timer interrupts once when the counter reaches the comparator")
{
    Bench b;
    b.wr(timer_config(2), TN_ENABLE | route(21));
    b.wr(timer_cmp(2), 500);
    b.wr(CONFIG, ENABLE);
    b.advance(4990);
    CHECK(b.events.empty());
    b.advance(10);
    CHECK(b.pulses(21) == 1);
    b.advance(100000);
    CHECK(b.pulses(21) == 1);
    CHECK(b.rd(STATUS) == 0); // edge mode leaves status alone
}

TEST_CASE("HPET 64-bit comparator already passed does not fire")
{
    Bench b;
    b.wr(CONFIG, ENABLE);
    b.advance(10000);
    b.wr(timer_config(2), TN_ENABLE | route(21));
    b.wr(timer_cmp(2), 500);
    b.advance(100000);
    CHECK(b.events.empty());
}

TEST_CASE("HPET periodic timer adds the period written after Tn_VAL_SET at every match")
{
    Bench b;
    // Linux's sequence: config with VAL_SET, comparator = start, then = period.
    b.wr(timer_config(0), TN_ENABLE | TN_PERIODIC | TN_VAL_SET | route(20));
    b.wr(timer_cmp(0), 100);
    b.wr(timer_cmp(0), 100);
    CHECK((b.rd(timer_config(0)) & TN_VAL_SET) == 0);
    b.wr(CONFIG, ENABLE);
    for (int i = 1; i <= 3; ++i) {
        b.advance(1000);
        CHECK(b.pulses(20) == i);
    }
    CHECK(b.rd(timer_cmp(0)) == 400);
}

TEST_CASE("HPET periodic mode cannot be set on a timer without the capability")
{
    Bench b;
    b.wr(timer_config(1), TN_PERIODIC);
    CHECK((b.rd(timer_config(1)) & TN_PERIODIC) == 0);
}

TEST_CASE("HPET level-triggered timer sets its status bit and holds the line until cleared")
{
    Bench b;
    b.wr(timer_config(1), TN_ENABLE | TN_LEVEL | route(22));
    b.wr(timer_cmp(1), 10);
    b.wr(CONFIG, ENABLE);
    b.advance(100);
    CHECK(b.rd(STATUS) == 2);
    CHECK(b.events == std::vector<Event>{{22, true}});
    b.wr(STATUS, 1); // other bits: no effect
    CHECK(b.rd(STATUS) == 2);
    b.wr(STATUS, 2);
    CHECK(b.rd(STATUS) == 0);
    CHECK(b.events == std::vector<Event>{{22, true}, {22, false}});
}

TEST_CASE("HPET legacy replacement routes timer 0 to GSI 2 and timer 1 to GSI 8")
{
    Bench b;
    b.wr(timer_config(0), TN_ENABLE | route(20));
    b.wr(timer_config(1), TN_ENABLE | route(21));
    b.wr(timer_cmp(0), 10);
    b.wr(timer_cmp(1), 20);
    b.wr(CONFIG, ENABLE | LEGACY);
    CHECK(b.legacy == std::vector<bool>{true});
    b.advance(300);
    CHECK(b.pulses(2) == 1);
    CHECK(b.pulses(8) == 1);
    CHECK(b.pulses(20) == 0);
    b.wr(CONFIG, ENABLE);
    CHECK(b.legacy == std::vector<bool>{true, false});
}

TEST_CASE("HPET 32-bit mode compares the low half and also fires when it wraps")
{
    Bench b;
    b.wr(COUNTER, 0xFFFFFF00ull);
    b.wr(timer_config(2), TN_ENABLE | TN_32BIT | route(23));
    b.wr(timer_cmp(2), 0x1'0000'0080ull); // the high half is dropped
    CHECK(b.rd(timer_cmp(2)) == 0x80);
    b.wr(CONFIG, ENABLE);
    b.advance(0x100 * 10); // the low half wraps to 0
    CHECK(b.pulses(23) == 1);
    b.advance(0x80 * 10); // and then matches
    CHECK(b.pulses(23) == 2);
}

TEST_CASE("HPET disabling the counter stops timers and drops level lines")
{
    Bench b;
    b.wr(timer_config(1), TN_ENABLE | TN_LEVEL | route(22));
    b.wr(timer_cmp(1), 10);
    b.wr(CONFIG, ENABLE);
    b.advance(100);
    b.wr(CONFIG, 0);
    CHECK(b.events.back() == Event{22, false});
    b.wr(timer_config(2), TN_ENABLE | route(23));
    b.wr(timer_cmp(2), 50);
    b.advance(100000);
    CHECK(b.pulses(23) == 0);
}

TEST_CASE("HPET timer with interrupts disabled raises nothing")
{
    Bench b;
    b.wr(timer_config(2), route(21));
    b.wr(timer_cmp(2), 10);
    b.wr(CONFIG, ENABLE);
    b.advance(1000);
    CHECK(b.events.empty());
}

TEST_CASE("HPET byte and dword accesses reach the right register bytes")
{
    Bench b;
    CHECK(b.hpet.io_read(CAP + 2, 2) == 0x8086);
    b.hpet.io_write(timer_cmp(2) + 4, 4, 0x12);
    b.hpet.io_write(timer_cmp(2), 1, 0x34);
    CHECK(b.rd(timer_cmp(2)) == 0x12FFFFFF34ull);
}

TEST_CASE("HPET state saves, loads and saves again to the same bytes")
{
    Bench b;
    b.wr(timer_config(0), TN_ENABLE | TN_PERIODIC | TN_VAL_SET);
    b.wr(timer_cmp(0), 300);
    b.wr(timer_cmp(0), 300);
    b.wr(timer_config(1), TN_ENABLE | TN_LEVEL);
    b.wr(timer_cmp(1), 50);
    b.wr(CONFIG, ENABLE | LEGACY);
    b.advance(1234);

    StateVisitor save = StateVisitor::saver();
    b.hpet.visit_state(save);
    Bench fresh;
    fresh.ns = b.ns;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.hpet.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.hpet.visit_state(again);
    CHECK(again.bytes() == save.bytes());

    CHECK(fresh.rd(COUNTER) == b.rd(COUNTER));
    CHECK(fresh.rd(STATUS) == 2);
    CHECK(fresh.clock.next_deadline() == b.clock.next_deadline());
    b.events.clear();
    b.advance(5000);
    fresh.advance(5000);
    CHECK(fresh.events == b.events);
}

TEST_CASE("HPET legacy timer 0 reaches a CPU through I/O APIC pin 2 and the local APIC")
{
    Bench b;
    ApicBus bus;
    LocalApic cpu(bus, b.clock, LocalApic::Config{0, true});
    IoApic ioapic(bus);
    b.hpet.set_irq_line([&](u32 gsi, bool level) { ioapic.set_irq(gsi, level); });
    cpu.io_write(0xF0, 4, 0x1FF);
    ioapic.io_write(0x00, 4, 0x14); // pin 2, low half: vector 0x30, edge, unmasked
    ioapic.io_write(0x10, 4, 0x30);
    b.wr(timer_config(0), TN_ENABLE);
    b.wr(timer_cmp(0), 100);
    b.wr(CONFIG, ENABLE | LEGACY);
    b.advance(1000);
    REQUIRE(cpu.interrupt_pending());
    CHECK(cpu.acknowledge_interrupt() == 0x30);
}

TEST_CASE("HPET state with bits its registers cannot hold is refused")
{
    Bench b;
    StateVisitor save = StateVisitor::saver();
    b.hpet.visit_state(save);
    // config, status, counter_base, base_ns; then timer 0: config, comparator, period.
    const size_t config = section_bytes("hpet"), status = config + 8, t0 = config + 32;
    const u64 timer0 = b.rd(timer_config(0));
    Bench good, bad_config, bad_status, capability, wide_period;
    CHECK(loads(good.hpet, save.bytes()));
    CHECK_FALSE(loads(bad_config.hpet, patched<u64>(save.bytes(), config, 4)));
    CHECK_FALSE(loads(bad_status.hpet, patched<u64>(save.bytes(), status, 1ull << 3)));
    CHECK_FALSE(loads(capability.hpet, patched<u64>(save.bytes(), t0, timer0 ^ (1ull << 32))));
    // A 32-bit periodic timer whose period's low half is zero divided by zero at its next match.
    std::vector<u8> bytes = patched<u64>(save.bytes(), t0, timer0 | TN_ENABLE | TN_PERIODIC | TN_32BIT);
    CHECK_FALSE(loads(wide_period.hpet, patched<u64>(bytes, t0 + 16, 1ull << 32)));
}
