#include "platform/timers/i8254_pit.h"
#include "tests/state_patch.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

namespace {

u64 tick_ns(u64 tick)
{
    return (tick * 1000000000ull + I8254Pit::FREQUENCY_HZ - 1) / I8254Pit::FREQUENCY_HZ;
}

// A PIT on a deterministic clock whose time the test sets (1 ns per
// "instruction"), with IRQ 0's level changes recorded.
struct Bench {
    u64 ns = 0;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    I8254Pit pit{clock};
    std::vector<bool> irq;

    Bench()
    {
        clock.set_instruction_counter([this] { return ns; });
        pit.set_irq_line([this](bool level) { irq.push_back(level); });
    }
    // Advances to `tick`, firing each timer at its own deadline like a
    // machine whose run loop never overshoots.
    void run_to_tick(u64 tick)
    {
        const u64 target = tick_ns(tick);
        while (clock.next_deadline() <= target) {
            ns = std::max(ns, clock.next_deadline());
            clock.run_due();
        }
        ns = std::max(ns, target);
        clock.run_due();
    }
    void out(u16 port, u8 value)
    {
        if (port == I8254Pit::PORT_B)
            pit.port_b().io_write(0, 1, value);
        else
            pit.counter_ports().io_write(port - I8254Pit::BASE, 1, value);
    }
    u8 in(u16 port)
    {
        if (port == I8254Pit::PORT_B)
            return static_cast<u8>(pit.port_b().io_read(0, 1));
        return static_cast<u8>(pit.counter_ports().io_read(port - I8254Pit::BASE, 1));
    }
    void program(unsigned counter, u8 control, u16 count)
    {
        out(0x43, control);
        const unsigned access = (control >> 4) & 3;
        const u16 port = static_cast<u16>(0x40 + counter);
        if (access == 1 || access == 3)
            out(port, static_cast<u8>(count));
        if (access == 2 || access == 3)
            out(port, static_cast<u8>(count >> 8));
    }
    u16 read_word(unsigned counter)
    {
        u8 lo = in(static_cast<u16>(0x40 + counter));
        u8 hi = in(static_cast<u16>(0x40 + counter));
        return static_cast<u16>(lo | hi << 8);
    }
    bool out_at(unsigned counter, u64 tick)
    {
        run_to_tick(tick);
        return pit.output(counter);
    }
    size_t rising_edges() const
    {
        size_t n = 0;
        for (size_t i = 0; i < irq.size(); ++i)
            if (irq[i] && (i == 0 || !irq[i - 1]))
                ++n;
        return n;
    }
};

} // namespace

TEST_CASE("PIT counter 0 runs the BIOS 18.2 Hz square wave from power-on")
{
    Bench b;
    b.run_to_tick(32767);
    CHECK(b.irq.empty());
    b.run_to_tick(32768);
    CHECK(b.irq == std::vector<bool>{false});
    b.run_to_tick(65535);
    CHECK(b.irq == std::vector<bool>{false});
    b.run_to_tick(65536);
    CHECK(b.irq == std::vector<bool>{false, true});
}

TEST_CASE("PIT mode 0 raises OUT at terminal count and keeps it high")
{
    Bench b;
    b.program(0, 0x30, 100);
    CHECK_FALSE(b.out_at(0, 99));
    CHECK(b.out_at(0, 100));
    CHECK(b.out_at(0, 5000));
    CHECK(b.irq == std::vector<bool>{false, true});
}

TEST_CASE("PIT mode 0 counts on past zero and wraps")
{
    Bench b;
    b.program(0, 0x30, 100);
    b.run_to_tick(40);
    CHECK(b.read_word(0) == 60);
    b.run_to_tick(101);
    CHECK(b.read_word(0) == 0xFFFF);
}

TEST_CASE("PIT mode 0 stops counting and drops OUT on the first byte of a new count")
{
    Bench b;
    b.program(0, 0x30, 10);
    CHECK(b.out_at(0, 20));
    b.out(0x40, 50);
    CHECK_FALSE(b.pit.output(0));
    b.out(0x40, 0);
    CHECK_FALSE(b.out_at(0, 69));
    CHECK(b.out_at(0, 70));
}

TEST_CASE("PIT control word for mode 0 drops IRQ 0 at once")
{
    Bench b;
    b.run_to_tick(100); // counter 0 is in the high half of its BIOS square wave
    b.out(0x43, 0x30);
    CHECK(b.irq == std::vector<bool>{false});
}

TEST_CASE("PIT mode 1 is a one-shot started by the gate's rising edge")
{
    Bench b;
    b.program(2, 0xB2, 50);
    CHECK(b.out_at(2, 10)); // no trigger yet
    b.out(0x61, 0x01);      // gate 2 high
    CHECK_FALSE(b.out_at(2, 59));
    CHECK(b.out_at(2, 60));
    CHECK(b.out_at(2, 500));
}

TEST_CASE("PIT mode 1 restarts the one-shot on a new trigger")
{
    Bench b;
    b.program(2, 0xB2, 50);
    b.out(0x61, 0x01);
    b.run_to_tick(30);
    b.out(0x61, 0x00);
    b.out(0x61, 0x01); // retrigger at tick 30
    CHECK_FALSE(b.out_at(2, 79));
    CHECK(b.out_at(2, 80));
}

TEST_CASE("PIT mode 2 pulses OUT low for one clock before each reload")
{
    Bench b;
    b.program(0, 0x34, 1000);
    CHECK(b.out_at(0, 998));
    CHECK_FALSE(b.out_at(0, 999));
    CHECK(b.out_at(0, 1000));
    CHECK(b.out_at(0, 1998));
    CHECK_FALSE(b.out_at(0, 1999));
}

TEST_CASE("PIT mode 2 on counter 0 gives IRQ 0 one rising edge per period")
{
    Bench b;
    b.program(0, 0x34, 1000);
    b.irq.clear();
    b.run_to_tick(10000);
    CHECK(b.rising_edges() == 10);
}

TEST_CASE("PIT mode 2 count runs from the initial count down to one")
{
    Bench b;
    b.program(0, 0x34, 1000);
    b.run_to_tick(1);
    CHECK(b.read_word(0) == 999);
    b.run_to_tick(999);
    CHECK(b.read_word(0) == 1);
    b.run_to_tick(1000);
    CHECK(b.read_word(0) == 1000);
}

TEST_CASE("PIT mode 2 takes a new count at the end of the current period")
{
    Bench b;
    b.program(0, 0x34, 1000);
    b.run_to_tick(300);
    b.out(0x40, static_cast<u8>(500));
    b.out(0x40, static_cast<u8>(500 >> 8));
    CHECK(b.out_at(0, 998));
    CHECK_FALSE(b.out_at(0, 999));
    CHECK(b.out_at(0, 1000));
    CHECK_FALSE(b.out_at(0, 1499));
    CHECK(b.out_at(0, 1500));
}

TEST_CASE("PIT mode 2 gate low forces OUT high and the rising edge reloads the count")
{
    Bench b;
    b.out(0x61, 0x01);
    b.program(2, 0xB4, 100);
    b.run_to_tick(99);
    CHECK_FALSE(b.pit.output(2));
    b.out(0x61, 0x00);
    CHECK(b.pit.output(2));
    CHECK(b.out_at(2, 500)); // stopped
    b.out(0x61, 0x01);       // reload at tick 500
    CHECK_FALSE(b.out_at(2, 599));
    CHECK(b.out_at(2, 600));
}

TEST_CASE("PIT mode 3 square wave has a longer high half for odd counts")
{
    Bench b;
    b.program(0, 0x36, 5);
    std::vector<bool> wave;
    for (u64 t = 0; t < 10; ++t)
        wave.push_back(b.out_at(0, t));
    CHECK(wave ==
          std::vector<bool>{true, true, true, false, false, true, true, true, false, false});
}

TEST_CASE("PIT mode 3 counts down by two, twice per period")
{
    Bench b;
    b.program(0, 0x36, 8);
    std::vector<u16> counts;
    for (u64 t = 0; t < 8; ++t) {
        b.run_to_tick(t);
        counts.push_back(b.read_word(0));
    }
    CHECK(counts == std::vector<u16>{8, 6, 4, 2, 8, 6, 4, 2});
}

TEST_CASE("PIT mode 3 takes a new count at the end of the current half period")
{
    Bench b;
    b.program(0, 0x36, 100);
    b.run_to_tick(10);
    b.out(0x40, 40);
    b.out(0x40, 0);
    CHECK(b.out_at(0, 49));
    CHECK_FALSE(b.out_at(0, 50)); // old high half ends, new low half (20 clocks)
    CHECK_FALSE(b.out_at(0, 69));
    CHECK(b.out_at(0, 70));
    CHECK_FALSE(b.out_at(0, 90));
}

TEST_CASE("PIT mode 4 strobes OUT low for one clock at terminal count")
{
    Bench b;
    b.program(0, 0x38, 100);
    CHECK(b.out_at(0, 99));
    CHECK_FALSE(b.out_at(0, 100));
    CHECK(b.out_at(0, 101));
    CHECK(b.out_at(0, 70000)); // no reload: one strobe only
}

TEST_CASE("PIT mode 4 on counter 0 gives IRQ 0 one edge after the strobe")
{
    Bench b;
    b.program(0, 0x38, 100);
    b.irq.clear();
    b.run_to_tick(200000);
    CHECK(b.irq == std::vector<bool>{false, true});
}

TEST_CASE("PIT mode 5 strobe waits for the gate trigger")
{
    Bench b;
    b.program(2, 0xBA, 20);
    CHECK(b.out_at(2, 100));
    b.out(0x61, 0x01); // trigger at tick 100
    CHECK(b.out_at(2, 119));
    CHECK_FALSE(b.out_at(2, 120));
    CHECK(b.out_at(2, 121));
}

TEST_CASE("PIT mode 0 counting pauses while the gate is low")
{
    Bench b;
    b.out(0x61, 0x01);
    b.program(2, 0xB0, 1000);
    b.run_to_tick(100);
    b.out(0x61, 0x00);
    b.run_to_tick(200);
    CHECK(b.read_word(2) == 900);
    b.run_to_tick(300);
    b.out(0x61, 0x01);
    CHECK_FALSE(b.out_at(2, 1199));
    CHECK(b.out_at(2, 1200));
}

TEST_CASE("PIT counter latch freezes the count until both bytes are read")
{
    Bench b;
    b.program(0, 0x34, 1000);
    b.run_to_tick(10);
    b.out(0x43, 0x00);
    b.run_to_tick(500);
    CHECK(b.read_word(0) == 990);
    CHECK(b.read_word(0) == 500); // latch released
}

TEST_CASE("PIT second latch command before the read keeps the first latched value")
{
    Bench b;
    b.program(0, 0x34, 1000);
    b.run_to_tick(10);
    b.out(0x43, 0x00);
    b.run_to_tick(20);
    b.out(0x43, 0x00);
    CHECK(b.read_word(0) == 990);
}

TEST_CASE("PIT read-back status reports OUT, null count and the programmed mode")
{
    Bench b;
    b.out(0x43, 0x34);
    b.out(0x43, 0xE2); // status of counter 0
    CHECK(b.in(0x40) == (0x80 | 0x40 | 0x30 | 0x04));
    b.out(0x40, 0xE8);
    b.out(0x40, 0x03);
    b.run_to_tick(10);
    b.out(0x43, 0xE2);
    CHECK(b.in(0x40) == (0x80 | 0x30 | 0x04));
}

TEST_CASE("PIT read-back status keeps modes 6 and 7 as written")
{
    Bench b;
    b.program(0, 0x3E, 100); // mode 7 behaves as mode 3
    b.out(0x43, 0xE2);
    CHECK((b.in(0x40) & 0x0E) == 0x0E);
    CHECK_FALSE(b.out_at(0, 50));
}

TEST_CASE("PIT read-back with count and status gives the status byte first")
{
    Bench b;
    b.program(1, 0x74, 1000); // counter 1, mode 2
    b.run_to_tick(100);
    b.out(0x43, 0xC4); // count and status of counter 1
    b.run_to_tick(300);
    CHECK(b.in(0x41) == 0xB4);
    CHECK(b.read_word(1) == 900);
}

TEST_CASE("PIT read-back latches several counters at once")
{
    Bench b;
    b.program(0, 0x34, 1000);
    b.program(1, 0x74, 2000);
    b.run_to_tick(100);
    b.out(0x43, 0xD6); // count of counters 0 and 1
    b.run_to_tick(400);
    CHECK(b.read_word(0) == 900);
    CHECK(b.read_word(1) == 1900);
}

TEST_CASE("PIT BCD mode counts in decimal")
{
    Bench b;
    b.program(0, 0x31, 0x1000); // mode 0, 1000 decimal
    b.run_to_tick(1);
    CHECK(b.read_word(0) == 0x0999);
    CHECK_FALSE(b.out_at(0, 999));
    CHECK(b.out_at(0, 1000));
}

TEST_CASE("PIT BCD count of zero means ten thousand")
{
    Bench b;
    b.program(0, 0x35, 0); // mode 2, BCD
    CHECK_FALSE(b.out_at(0, 9999));
    CHECK(b.out_at(0, 10000));
}

TEST_CASE("PIT binary count of zero means 65536")
{
    Bench b;
    b.program(0, 0x34, 0);
    CHECK_FALSE(b.out_at(0, 65535));
    CHECK(b.out_at(0, 65536));
}

TEST_CASE("PIT LSB-only and MSB-only access load half the count")
{
    Bench b;
    b.program(0, 0x14, 100); // LSB only, mode 2
    CHECK_FALSE(b.out_at(0, 99));
    b.program(1, 0x64, 0x0200); // counter 1, MSB only, mode 2
    b.run_to_tick(150);
    CHECK(b.in(0x41) == 0x01); // MSB of 0x200 - 51 (loaded at tick 99)
    CHECK(b.read_word(0) == static_cast<u16>((100 - 50) | (100 - 50) << 8));
}

TEST_CASE("PIT port 0x61 reads OUT 2 in bit 5 and keeps bits 0 to 3")
{
    Bench b;
    b.program(2, 0xB6, 10); // mode 3, period 10
    b.out(0x61, 0x03);      // gate and speaker on
    b.run_to_tick(1);
    CHECK((b.in(0x61) & 0x2F) == 0x23);
    b.run_to_tick(6);
    CHECK((b.in(0x61) & 0x2F) == 0x03);
    CHECK(b.pit.speaker_data_enabled());
}

TEST_CASE("PIT port 0x61 bit 4 flips with each refresh period of counter 1")
{
    Bench b;
    b.run_to_tick(17);
    const u8 first = b.in(0x61) & 0x10;
    b.run_to_tick(18);
    CHECK((b.in(0x61) & 0x10) != first);
    b.run_to_tick(36);
    CHECK((b.in(0x61) & 0x10) == first);
}

TEST_CASE("PIT still raises IRQ 0 when its timer fires late")
{
    Bench b;
    b.program(0, 0x34, 1000);
    b.irq.clear();
    b.ns = tick_ns(1500); // the machine only gets back to the clock now
    b.clock.run_due();
    CHECK(b.irq == std::vector<bool>{false, true});
}

TEST_CASE("PIT state saves, loads and saves again to the same bytes")
{
    Bench b;
    b.program(0, 0x34, 1000);
    b.program(1, 0x7B, 0x0500); // mode 5, BCD
    b.program(2, 0xB0, 3000);
    b.out(0x61, 0x01);
    b.run_to_tick(1234);
    b.out(0x40, 0x00); // pending reload on counter 0
    b.out(0x40, 0x02);
    b.out(0x43, 0x80); // latch counter 2
    b.out(0x43, 0xE4); // status of counter 1

    StateVisitor save = StateVisitor::saver();
    b.pit.visit_state(save);

    Bench fresh;
    fresh.ns = b.ns;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.pit.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.pit.visit_state(again);
    CHECK(again.bytes() == save.bytes());

    CHECK(fresh.in(0x41) == b.in(0x41));
    CHECK(fresh.read_word(2) == b.read_word(2));
    CHECK(fresh.clock.next_deadline() == b.clock.next_deadline());
    b.irq.clear();
    b.run_to_tick(5000);
    fresh.run_to_tick(5000);
    CHECK(fresh.irq == b.irq);
}

TEST_CASE("PIT state with a counter mode, access, run state or count out of range is refused")
{
    Bench b;
    StateVisitor save = StateVisitor::saver();
    b.pit.visit_state(save);
    // Counter 0: mode, control_mode, access, bcd, gate, run, count_register, initial.
    const size_t c0 = section_bytes("i8254-pit");
    struct Bad {
        size_t offset;
        u32 value;
        size_t size;
    };
    const Bad cases[] = {
        {c0 + 0, 6, 1},        // mode (6 and 7 fold onto 2 and 3 when written)
        {c0 + 1, 8, 1},        // control_mode
        {c0 + 2, 0, 1},        // access
        {c0 + 5, 4, 1},        // run
        {c0 + 6, 0, 4},        // count_register
        {c0 + 10, 0x10001, 4}, // initial
    };
    for (const Bad& bad : cases) {
        CAPTURE(bad.offset);
        std::vector<u8> bytes = save.bytes();
        std::memcpy(bytes.data() + bad.offset, &bad.value, bad.size);
        Bench fresh;
        CHECK_FALSE(loads(fresh.pit, bytes));
    }
    Bench fresh;
    CHECK(loads(fresh.pit, save.bytes()));
}
