#include "platform/timers/cmos_rtc.h"
#include "tests/state_patch.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

namespace {

constexpr u64 SECOND = 1000000000ull;
constexpr u64 MS = 1000000ull;
constexpr i64 FRIDAY_2024_03_15_134530 = 1710510330;
constexpr i64 SUNDAY_2023_12_31_235959 = 1704067199;

// An RTC on a deterministic clock whose time (in ns) the test sets, created
// at virtual time 0 so that updates happen on whole seconds.
struct Bench {
    u64 ns = 0;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    Mc146818Rtc rtc;
    std::vector<bool> irq;

    // The clock reads 0 until the counter is set, which is the test's time 0.
    explicit Bench(i64 start = FRIDAY_2024_03_15_134530) : rtc(clock, start)
    {
        clock.set_instruction_counter([this] { return ns; });
        rtc.set_irq_line([this](bool level) { irq.push_back(level); });
    }
    void run_to(u64 target)
    {
        while (clock.next_deadline() <= target) {
            ns = std::max(ns, clock.next_deadline());
            clock.run_due();
        }
        ns = std::max(ns, target);
        clock.run_due();
    }
    u8 read(u8 index)
    {
        rtc.io_write(0, 1, index);
        return static_cast<u8>(rtc.io_read(1, 1));
    }
    void write(u8 index, u8 value)
    {
        rtc.io_write(0, 1, index);
        rtc.io_write(1, 1, value);
    }
    // Register C without PF: the periodic flag is set at 1024 Hz from power-on
    // (flags are set whether or not their interrupt is enabled).
    u8 flags_except_periodic() { return read(0x0C) & static_cast<u8>(~0x40); }
    size_t rising_edges() const
    {
        return static_cast<size_t>(std::count(irq.begin(), irq.end(), true));
    }
};

} // namespace

TEST_CASE("RTC shows the start time in BCD and 24-hour form")
{
    Bench b;
    CHECK(b.read(0x00) == 0x30);
    CHECK(b.read(0x02) == 0x45);
    CHECK(b.read(0x04) == 0x13);
    CHECK(b.read(0x06) == 0x06); // Friday (Sunday is 1)
    CHECK(b.read(0x07) == 0x15);
    CHECK(b.read(0x08) == 0x03);
    CHECK(b.read(0x09) == 0x24);
    CHECK(b.read(0x32) == 0x20);
}

TEST_CASE("RTC registers A to D start as a BIOS leaves them")
{
    Bench b;
    CHECK(b.read(0x0A) == 0x26);
    CHECK(b.read(0x0B) == 0x02);
    CHECK(b.flags_except_periodic() == 0x00);
    CHECK(b.read(0x0D) == 0x80);
}

TEST_CASE("RTC time advances one second per virtual second")
{
    Bench b;
    b.run_to(SECOND - 1);
    CHECK(b.read(0x00) == 0x30);
    b.run_to(SECOND);
    CHECK(b.read(0x00) == 0x31);
    b.run_to(31 * SECOND);
    CHECK(b.read(0x00) == 0x01);
    CHECK(b.read(0x02) == 0x46);
    CHECK(b.rtc.current_time() == FRIDAY_2024_03_15_134530 + 31);
}

TEST_CASE("RTC date rolls over into a new year, century register included")
{
    Bench b(SUNDAY_2023_12_31_235959);
    b.run_to(SECOND);
    CHECK(b.read(0x00) == 0x00);
    CHECK(b.read(0x04) == 0x00);
    CHECK(b.read(0x06) == 0x02); // Monday
    CHECK(b.read(0x07) == 0x01);
    CHECK(b.read(0x08) == 0x01);
    CHECK(b.read(0x09) == 0x24);
    CHECK(b.read(0x32) == 0x20);
}

TEST_CASE("RTC binary mode reports plain numbers")
{
    Bench b;
    b.write(0x0B, 0x06);
    CHECK(b.read(0x00) == 30);
    CHECK(b.read(0x02) == 45);
    CHECK(b.read(0x04) == 13);
    CHECK(b.read(0x09) == 24);
}

TEST_CASE("RTC 12-hour mode shows afternoon hours with bit 7 set")
{
    Bench b;
    b.write(0x0B, 0x00);
    CHECK(b.read(0x04) == 0x81);
    b.write(0x0B, 0x04); // binary, 12-hour
    CHECK(b.read(0x04) == 0x81);
}

TEST_CASE("RTC SET bit holds the time and a new time runs from when SET clears")
{
    Bench b;
    b.write(0x0B, 0x82);
    b.write(0x04, 0x08);
    b.write(0x02, 0x00);
    b.write(0x00, 0x00);
    b.run_to(5 * SECOND);
    CHECK(b.read(0x04) == 0x08);
    CHECK(b.read(0x00) == 0x00);
    b.write(0x0B, 0x02);
    b.run_to(7 * SECOND);
    CHECK(b.read(0x04) == 0x08);
    CHECK(b.read(0x00) == 0x02);
}

TEST_CASE("RTC setting SET clears the update-ended interrupt enable")
{
    Bench b;
    b.write(0x0B, 0x92);
    CHECK(b.read(0x0B) == 0x82);
}

TEST_CASE("RTC time register written while running moves the clock on from the new value")
{
    Bench b;
    b.run_to(SECOND / 2);
    b.write(0x02, 0x50);
    CHECK(b.read(0x02) == 0x50);
    b.run_to(SECOND);
    CHECK(b.read(0x00) == 0x31);
    CHECK(b.read(0x02) == 0x50);
}

TEST_CASE("RTC day-of-week register keeps the day the guest set")
{
    Bench b;
    b.write(0x0B, 0x82);
    b.write(0x06, 0x01);
    b.write(0x0B, 0x02);
    CHECK(b.read(0x06) == 0x01);
    b.run_to(86400 * SECOND);
    CHECK(b.read(0x06) == 0x02);
    CHECK(b.read(0x07) == 0x16);
}

TEST_CASE("RTC sets UIP in the 244 microseconds before each update")
{
    Bench b;
    b.run_to(SECOND - 300000);
    CHECK((b.read(0x0A) & 0x80) == 0);
    b.run_to(SECOND - 200000);
    CHECK((b.read(0x0A) & 0x80) == 0x80);
    CHECK(b.read(0x00) == 0x30); // the update has not happened yet
    b.run_to(SECOND + 1);
    CHECK((b.read(0x0A) & 0x80) == 0);
}

TEST_CASE("RTC UIP stays clear while SET holds the updates")
{
    Bench b;
    b.write(0x0B, 0x82);
    b.run_to(SECOND - 100000);
    CHECK((b.read(0x0A) & 0x80) == 0);
}

TEST_CASE("RTC update-ended interrupt raises IRQ 8 each second until register C is read")
{
    Bench b;
    b.write(0x0B, 0x12);
    b.run_to(SECOND - 1);
    CHECK(b.irq.empty());
    b.run_to(SECOND);
    CHECK(b.irq == std::vector<bool>{true});
    CHECK(b.flags_except_periodic() == 0x90);
    CHECK(b.irq == std::vector<bool>{true, false});
    CHECK(b.flags_except_periodic() == 0x00);
    b.run_to(2 * SECOND);
    CHECK(b.irq == std::vector<bool>{true, false, true});
}

TEST_CASE("RTC sets the update flag with its interrupt disabled, without IRQF")
{
    Bench b;
    b.run_to(SECOND);
    CHECK(b.flags_except_periodic() == 0x10);
    CHECK(b.irq.empty());
}

TEST_CASE("RTC enabling an interrupt whose flag is already set raises IRQ 8 at once")
{
    Bench b;
    b.run_to(SECOND);
    b.write(0x0B, 0x12);
    CHECK(b.irq == std::vector<bool>{true});
    CHECK(b.flags_except_periodic() == 0x90);
}

TEST_CASE("RTC periodic interrupt follows the rate in register A")
{
    Bench b;
    b.write(0x0B, 0x42); // 1024 Hz from register A's power-on value
    size_t handled = 0;
    b.rtc.set_irq_line([&](bool level) {
        if (level)
            ++handled;
    });
    // An interrupt handler that reads C each time.
    for (u64 t = 0; t <= SECOND; t += 100000) {
        b.run_to(t);
        b.read(0x0C);
    }
    CHECK(handled == 1024);
}

TEST_CASE("RTC periodic rates 1 and 2 run at 256 and 128 Hz")
{
    Bench b;
    b.write(0x0A, 0x21);
    b.run_to(SECOND / 256 - 1000);
    CHECK((b.read(0x0C) & 0x40) == 0);
    b.run_to(SECOND / 256 + 1000);
    CHECK((b.read(0x0C) & 0x40) == 0x40);
    b.write(0x0A, 0x22);
    b.run_to(SECOND / 128 + 1000);
    CHECK((b.read(0x0C) & 0x40) == 0x40);
    b.run_to(SECOND / 128 * 2 - 1000);
    CHECK((b.read(0x0C) & 0x40) == 0);
}

TEST_CASE("RTC rate 0 turns the periodic flag off")
{
    Bench b;
    b.write(0x0A, 0x20);
    b.run_to(SECOND / 2);
    CHECK((b.read(0x0C) & 0x40) == 0);
}

TEST_CASE("RTC alarm interrupt fires when the time reaches the alarm registers")
{
    Bench b;
    b.write(0x01, 0x35);
    b.write(0x03, 0x45);
    b.write(0x05, 0x13);
    b.write(0x0B, 0x22);
    b.run_to(5 * SECOND - 1);
    CHECK(b.irq.empty());
    b.run_to(5 * SECOND);
    CHECK(b.irq == std::vector<bool>{true});
    CHECK(b.flags_except_periodic() == 0xB0);
}

TEST_CASE("RTC alarm with don't-care bytes matches every second")
{
    Bench b;
    b.write(0x01, 0xFF);
    b.write(0x03, 0xC0);
    b.write(0x05, 0xC0);
    b.write(0x0B, 0x22);
    for (u64 s = 1; s <= 3; ++s) {
        b.run_to(s * SECOND);
        CHECK(b.flags_except_periodic() == 0xB0);
    }
    CHECK(b.rising_edges() == 3);
}

TEST_CASE("RTC alarm with a don't-care hour fires the next time minutes and seconds match")
{
    Bench b;
    b.write(0x01, 0x00);
    b.write(0x03, 0x00);
    b.write(0x05, 0xC0);
    b.write(0x0B, 0x22);
    const u64 to_14h = (14 * 3600 - (13 * 3600 + 45 * 60 + 30)) * SECOND;
    b.run_to(to_14h - SECOND);
    CHECK(b.irq.empty());
    b.run_to(to_14h);
    CHECK(b.irq == std::vector<bool>{true});
}

TEST_CASE("RTC alarm in 12-hour mode matches an afternoon hour")
{
    Bench b;
    b.write(0x0B, 0x00); // 12-hour BCD
    b.write(0x01, 0x40);
    b.write(0x03, 0x45);
    b.write(0x05, 0x81); // 1 PM
    b.write(0x0B, 0x20);
    b.run_to(10 * SECOND);
    CHECK(b.irq == std::vector<bool>{true});
}

TEST_CASE("RTC divider reset holds the time and the first update comes half a second after release")
{
    Bench b;
    b.run_to(SECOND / 4);
    b.write(0x0A, 0x76);
    b.run_to(3 * SECOND);
    CHECK(b.read(0x00) == 0x30);
    b.write(0x0A, 0x26);
    b.run_to(3 * SECOND + SECOND / 2 - 1);
    CHECK(b.read(0x00) == 0x30);
    b.run_to(3 * SECOND + SECOND / 2);
    CHECK(b.read(0x00) == 0x31);
}

TEST_CASE("RTC divider reset stops periodic interrupts")
{
    Bench b;
    b.write(0x0A, 0x66);
    b.write(0x0B, 0x42);
    b.run_to(SECOND);
    CHECK(b.irq.empty());
    CHECK(b.read(0x0C) == 0);
}

TEST_CASE("RTC register D always reports valid RAM and time, and ignores writes")
{
    Bench b;
    b.write(0x0D, 0x00);
    CHECK(b.read(0x0D) == 0x80);
}

TEST_CASE("RTC NVRAM bytes keep what is written")
{
    Bench b;
    b.write(0x40, 0x5A);
    b.write(0x7F, 0xA5);
    CHECK(b.read(0x40) == 0x5A);
    CHECK(b.read(0x7F) == 0xA5);
}

TEST_CASE("RTC index port bit 7 masks NMI and does not change the index")
{
    Bench b;
    b.rtc.io_write(0, 1, 0x80 | 0x40);
    CHECK(b.rtc.nmi_masked());
    b.rtc.io_write(1, 1, 0x11);
    b.rtc.io_write(0, 1, 0x40);
    CHECK_FALSE(b.rtc.nmi_masked());
    CHECK(b.rtc.io_read(1, 1) == 0x11);
    CHECK(b.rtc.io_read(0, 1) == 0xFF);
}

TEST_CASE("RTC memory size setter fills the BIOS memory bytes and the checksum")
{
    Bench b;
    b.rtc.set_memory_size(512ull << 20, 1ull << 30);
    CHECK(b.read(0x15) == 0x80);
    CHECK(b.read(0x16) == 0x02); // 640 KiB
    CHECK(b.read(0x17) == 0xFF);
    CHECK(b.read(0x18) == 0xFF); // capped at 65535 KiB
    CHECK(b.read(0x30) == 0xFF);
    CHECK(b.read(0x31) == 0xFF);
    CHECK(b.read(0x34) == 0x00);
    CHECK(b.read(0x35) == 0x1F); // 496 MiB in 64 KiB blocks
    CHECK(b.read(0x5B) == 0x00);
    CHECK(b.read(0x5C) == 0x40);
    CHECK(b.read(0x5D) == 0x00); // 1 GiB in 64 KiB blocks
    u16 sum = 0;
    for (u8 i = 0x10; i <= 0x2D; ++i)
        sum = static_cast<u16>(sum + b.read(i));
    CHECK(b.read(0x2E) == (sum >> 8));
    CHECK(b.read(0x2F) == (sum & 0xFF));
}

TEST_CASE("RTC small memory sizes fill the extended memory bytes exactly")
{
    Bench b;
    b.rtc.set_memory_size(32ull << 20, 0);
    CHECK(b.read(0x17) == 0x00);
    CHECK(b.read(0x18) == 0x7C); // 31 MiB = 0x7C00 KiB
    CHECK(b.read(0x34) == 0x00);
    CHECK(b.read(0x35) == 0x01); // 16 MiB = 256 blocks
}

TEST_CASE("RTC state saves, loads and saves again to the same bytes")
{
    Bench b;
    b.rtc.set_memory_size(256ull << 20, 0);
    b.write(0x01, 0xC0);
    b.write(0x0B, 0x62);
    b.write(0x0A, 0x2A);
    b.run_to(2 * SECOND + 123456);
    b.rtc.io_write(0, 1, 0x8F);

    StateVisitor save = StateVisitor::saver();
    b.rtc.visit_state(save);
    Bench fresh(0);
    fresh.ns = b.ns;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.rtc.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.rtc.visit_state(again);
    CHECK(again.bytes() == save.bytes());

    CHECK(fresh.rtc.nmi_masked());
    CHECK(fresh.clock.next_deadline() == b.clock.next_deadline());
    CHECK(fresh.read(0x00) == b.read(0x00));
    CHECK(fresh.read(0x0C) == b.read(0x0C));
    fresh.run_to(4 * SECOND);
    b.run_to(4 * SECOND);
    CHECK(fresh.read(0x0C) == b.read(0x0C));
}

TEST_CASE("RTC state with a register index, divider phase or weekday out of range is refused")
{
    Bench b;
    StateVisitor save = StateVisitor::saver();
    b.rtc.visit_state(save);
    const size_t index = section_bytes("mc146818-rtc") + 128; // after the 128 bytes of RAM
    const size_t base_time = index + 2, phase = index + 10, weekday = index + 18;
    Bench good(0);
    CHECK(loads(good.rtc, patched<u8>(save.bytes(), index, 0x7F)));
    // Index 0x80 would read and write past the RTC's 128 bytes.
    Bench bad_index(0), bad_phase(0), bad_weekday(0), bad_time(0);
    CHECK_FALSE(loads(bad_index.rtc, patched<u8>(save.bytes(), index, 0x80)));
    CHECK_FALSE(loads(bad_phase.rtc, patched<u64>(save.bytes(), phase, 1'000'000'000)));
    CHECK_FALSE(loads(bad_weekday.rtc, patched<u8>(save.bytes(), weekday, 7)));
    CHECK_FALSE(loads(bad_time.rtc, patched<i64>(save.bytes(), base_time, INT64_MAX - 10)));
}
