#include "platform/chipset/acpi_pm.h"

#include "mmu/base/state_visitor.h"

#include <doctest/doctest.h>

#include <vector>

namespace {

struct Bench {
    u64 ns = 0;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    AcpiPm pm{clock};
    std::vector<bool> sci;
    std::vector<u8> sleeps;
    unsigned wakes = 0;

    Bench()
    {
        clock.set_instruction_counter([this] { return ns; });
        pm.set_sci_line([this](bool l) { sci.push_back(l); });
        pm.set_sleep_handler([this](u8 typ) { sleeps.push_back(typ); });
        pm.set_wake_handler([this] { ++wakes; });
    }
    // PM1_CNT <- SLP_TYP 1 (S3) | SLP_EN, as kvm-unit-tests' s3 writes it.
    void suspend() { out(4, 2, 0x2400); }
    u64 in(u64 off, unsigned size) { return pm.io_read(off, size); }
    void out(u64 off, unsigned size, u64 v) { pm.io_write(off, size, v); }
    void advance(u64 delta)
    {
        ns += delta;
        clock.run_due();
    }
};

} // namespace

TEST_CASE("ACPI PM timer counts at 3.579545 MHz from the virtual clock")
{
    Bench b;
    b.ns = 1'000'000'000;
    CHECK(b.in(8, 4) == 3'579'545);
    b.ns = 1'000'000;
    CHECK(b.in(8, 4) == 3579);
}

TEST_CASE("ACPI PM timer is 32 bits wide and wraps")
{
    Bench b;
    b.ns = (1ull << 32) * 1'000'000'000ull / AcpiPm::TIMER_HZ + 1000;
    CHECK(b.in(8, 4) < 10);
}

TEST_CASE("ACPI PM timer ignores writes")
{
    Bench b;
    b.ns = 5000;
    const u64 before = b.in(8, 4);
    b.out(8, 4, 0);
    CHECK(b.in(8, 4) == before);
}

TEST_CASE("ACPI PM SCI_EN is set from reset since there is no SMI command port")
{
    Bench b;
    CHECK((b.in(4, 2) & AcpiPm::SCI_EN) != 0);
}

TEST_CASE("ACPI PM power button sets PWRBTN_STS and raises the SCI when enabled")
{
    Bench b;
    b.pm.press_power_button();
    CHECK((b.in(0, 2) & AcpiPm::PWRBTN_STS) != 0);
    CHECK(b.sci.empty());
    b.out(2, 2, AcpiPm::PWRBTN_EN);
    CHECK(b.sci == std::vector<bool>{true});
    b.out(0, 2, AcpiPm::PWRBTN_STS); // write 1 to clear
    CHECK((b.in(0, 2) & AcpiPm::PWRBTN_STS) == 0);
    CHECK(b.sci == std::vector<bool>{true, false});
}

TEST_CASE("ACPI PM status bits ignore writes of 0")
{
    Bench b;
    b.pm.press_power_button();
    b.out(0, 2, 0);
    CHECK((b.in(0, 2) & AcpiPm::PWRBTN_STS) != 0);
}

TEST_CASE("ACPI PM no SCI while SCI_EN is clear")
{
    Bench b;
    b.out(4, 2, 0);
    b.out(2, 2, AcpiPm::PWRBTN_EN);
    b.pm.press_power_button();
    CHECK(b.sci.empty());
}

TEST_CASE("ACPI PM TMR_STS sets when timer bit 31 toggles and raises the SCI with TMR_EN")
{
    Bench b;
    b.out(2, 2, AcpiPm::TMR_EN);
    const u64 toggle_ns = (1ull << 31) * 1'000'000'000ull / AcpiPm::TIMER_HZ + 1;
    b.advance(toggle_ns - 1000);
    CHECK((b.in(0, 2) & AcpiPm::TMR_STS) == 0);
    b.advance(1000);
    CHECK((b.in(0, 2) & AcpiPm::TMR_STS) != 0);
    CHECK(b.sci == std::vector<bool>{true});
    b.out(0, 2, AcpiPm::TMR_STS);
    CHECK(b.sci == std::vector<bool>{true, false});
    CHECK((b.in(0, 2) & AcpiPm::TMR_STS) == 0);
}

TEST_CASE("ACPI PM writing SLP_TYP with SLP_EN asks for that sleep state")
{
    Bench b;
    b.out(4, 2, (AcpiPm::SLP_TYP_S5 << 10) | AcpiPm::SCI_EN); // ACPICA writes the type first
    CHECK(b.sleeps.empty());
    b.out(4, 2, (AcpiPm::SLP_TYP_S5 << 10) | AcpiPm::SLP_EN | AcpiPm::SCI_EN);
    CHECK(b.sleeps == std::vector<u8>{AcpiPm::SLP_TYP_S5});
    CHECK((b.in(4, 2) & AcpiPm::SLP_EN) == 0); // write-only
    b.out(5, 1, (3u << 2) | (1u << 5));        // byte write: SLP_TYP 3, SLP_EN
    CHECK(b.sleeps.back() == 3);
}

TEST_CASE("ACPI PM enable register keeps only defined bits")
{
    Bench b;
    b.out(2, 2, 0xFFFF);
    CHECK(b.in(2, 2) == 0x4721);
}

TEST_CASE("ACPI PM wake sets WAK_STS")
{
    Bench b;
    b.pm.wake();
    CHECK((b.in(0, 2) & AcpiPm::WAK_STS) != 0);
}

TEST_CASE("ACPI PM S3 lasts until the RTC's interrupt with RTC_EN, which sets WAK_STS and RTC_STS")
{
    Bench b;
    b.out(2, 2, AcpiPm::RTC_EN);
    b.suspend();
    CHECK(b.sleeps == std::vector<u8>{AcpiPm::SLP_TYP_S3});
    CHECK(b.pm.sleeping());
    CHECK(b.wakes == 0);
    b.pm.set_rtc_irq(true);
    CHECK_FALSE(b.pm.sleeping());
    CHECK(b.wakes == 1);
    CHECK((b.in(0, 2) & (AcpiPm::WAK_STS | AcpiPm::RTC_STS)) == (AcpiPm::WAK_STS | AcpiPm::RTC_STS));
    b.pm.set_rtc_irq(true); // still high: no second edge, no second wake
    CHECK(b.wakes == 1);
}

TEST_CASE("ACPI PM the RTC's interrupt does not end S3 without RTC_EN, the power button does")
{
    Bench b;
    b.suspend();
    b.pm.set_rtc_irq(true);
    CHECK(b.pm.sleeping());
    CHECK((b.in(0, 2) & AcpiPm::RTC_STS) != 0);
    CHECK(b.wakes == 0);
    b.pm.press_power_button();
    CHECK_FALSE(b.pm.sleeping());
    CHECK(b.wakes == 1);
}

TEST_CASE("ACPI PM S5 is not a sleep that wakes")
{
    Bench b;
    b.out(2, 2, AcpiPm::RTC_EN);
    b.out(4, 2, 0x2000); // SLP_TYP 0 (S5) | SLP_EN
    CHECK(b.sleeps == std::vector<u8>{AcpiPm::SLP_TYP_S5});
    CHECK_FALSE(b.pm.sleeping());
    b.pm.set_rtc_irq(true);
    CHECK(b.wakes == 0);
}

TEST_CASE("ACPI PM state saves, loads and saves again to the same bytes")
{
    Bench b;
    b.out(2, 2, AcpiPm::TMR_EN | AcpiPm::PWRBTN_EN);
    b.pm.press_power_button();
    b.advance(12345);

    StateVisitor save = StateVisitor::saver();
    b.pm.visit_state(save);
    Bench fresh;
    fresh.ns = b.ns;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.pm.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.pm.visit_state(again);
    CHECK(again.bytes() == save.bytes());
    CHECK(fresh.in(0, 2) == b.in(0, 2));
    CHECK(fresh.pm.sci_level());
    CHECK(fresh.clock.next_deadline() == b.clock.next_deadline());
}
