#include "platform/interrupts/io_apic.h"

#include "mmu/base/state_visitor.h"
#include "platform/interrupts/local_apic.h"
#include "tests/state_patch.h"

#include <doctest/doctest.h>

#include <memory>
#include <vector>

namespace {

constexpr u64 EOI = 0xB0, SVR = 0xF0;
constexpr u32 LEVEL = 1u << 15, MASKED = 1u << 16, LOGICAL = 1u << 11, ACTIVE_LOW = 1u << 13;

struct Board {
    u64 ns = 0;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    ApicBus bus;
    std::vector<std::unique_ptr<LocalApic>> cpus;
    IoApic ioapic{bus};

    explicit Board(unsigned count = 1)
    {
        clock.set_instruction_counter([this] { return ns; });
        for (unsigned i = 0; i < count; ++i) {
            cpus.push_back(std::make_unique<LocalApic>(bus, clock, LocalApic::Config{i, i == 0}));
            cpus.back()->io_write(SVR, 4, 0x1FF);
        }
    }
    u32 reg(u8 index)
    {
        ioapic.io_write(0x00, 4, index);
        return static_cast<u32>(ioapic.io_read(0x10, 4));
    }
    void set_reg(u8 index, u32 value)
    {
        ioapic.io_write(0x00, 4, index);
        ioapic.io_write(0x10, 4, value);
    }
    void redirect(unsigned pin, u32 low, u8 dest = 0)
    {
        set_reg(static_cast<u8>(0x10 + 2 * pin + 1), u32(dest) << 24);
        set_reg(static_cast<u8>(0x10 + 2 * pin), low);
    }
    int take(unsigned cpu = 0)
    {
        if (!cpus[cpu]->interrupt_pending())
            return -1;
        return cpus[cpu]->acknowledge_interrupt();
    }
    void eoi(unsigned cpu = 0) { cpus[cpu]->io_write(EOI, 4, 0); }
};

} // namespace

TEST_CASE("IOAPIC version register reports 24 entries, version 0x11, and is read-only")
{
    Board b;
    CHECK(b.reg(1) == 0x00170011);
    b.set_reg(1, 0);
    CHECK(b.reg(1) == 0x00170011);
}

TEST_CASE("IOAPIC ID register has only bits 27:24 writable and arbitration follows it")
{
    Board b;
    b.set_reg(0, 0xFFFFFFFF);
    CHECK(b.reg(0) == 0x0F000000);
    CHECK(b.reg(2) == 0x0F000000);
    b.set_reg(2, 0);
    CHECK(b.reg(2) == 0x0F000000);
}

TEST_CASE("IOAPIC IOREGSEL reads back the selected index")
{
    Board b;
    b.ioapic.io_write(0, 4, 0x21);
    CHECK(b.ioapic.io_read(0, 4) == 0x21);
}

TEST_CASE("IOAPIC redirection entries start masked and keep read-only bits")
{
    Board b;
    CHECK(b.reg(0x10) == MASKED);
    CHECK(b.reg(0x10 + 2 * 23) == MASKED);
    b.redirect(3, 0xFFFFFFFF, 0xAB);
    // Delivery status (12) and remote IRR (14) are not writable.
    CHECK(b.reg(0x16) == 0x1AFFF);
    CHECK(b.reg(0x17) == 0xAB000000);
}

TEST_CASE("IOAPIC edge-triggered pin delivers once per rising edge")
{
    Board b;
    b.redirect(14, 0x76);
    b.ioapic.set_irq(14, true);
    CHECK(b.take() == 0x76);
    b.eoi();
    b.ioapic.set_irq(14, true); // no new edge
    CHECK(b.take() == -1);
    b.ioapic.set_irq(14, false);
    b.ioapic.set_irq(14, true);
    CHECK(b.take() == 0x76);
}

TEST_CASE("IOAPIC edge arriving while the pin is masked is lost")
{
    Board b;
    b.redirect(14, MASKED | 0x81);
    b.ioapic.set_irq(14, true);
    b.ioapic.set_irq(14, false);
    b.redirect(14, 0x81);
    CHECK(b.take() == -1);
    b.ioapic.set_irq(14, true);
    CHECK(b.take() == 0x81);
}

TEST_CASE("IOAPIC level-triggered pin sets remote IRR and the LAPIC TMR")
{
    Board b;
    b.redirect(14, LEVEL | 0x77);
    b.ioapic.set_irq(14, true);
    CHECK(b.ioapic.remote_irr(14));
    CHECK(b.cpus[0]->tmr_bit(0x77));
    CHECK(b.take() == 0x77);
    b.ioapic.set_irq(14, false);
    b.eoi();
    CHECK(!b.ioapic.remote_irr(14));
    CHECK(b.take() == -1);
}

TEST_CASE("IOAPIC level-triggered pin still asserted at EOI is delivered again")
{
    Board b;
    b.redirect(14, LEVEL | 0x9A);
    b.ioapic.set_irq(14, true);
    CHECK(b.take() == 0x9A);
    b.eoi();
    CHECK(b.take() == 0x9A);
    b.ioapic.set_irq(14, false);
    b.eoi();
    CHECK(b.take() == -1);
}

TEST_CASE("IOAPIC level pulses while remote IRR is set coalesce into one interrupt")
{
    Board b;
    b.redirect(14, LEVEL | 0x98);
    b.ioapic.set_irq(14, true);
    CHECK(b.take() == 0x98);
    b.ioapic.set_irq(14, false);
    b.ioapic.set_irq(14, true);
    b.ioapic.set_irq(14, false);
    b.eoi();
    CHECK(b.take() == -1);
}

TEST_CASE("IOAPIC masked level-triggered pin is delivered when unmasked")
{
    Board b;
    b.redirect(14, MASKED | LEVEL | 0x82);
    b.ioapic.set_irq(14, true);
    CHECK(b.take() == -1);
    b.redirect(14, LEVEL | 0x82);
    CHECK(b.take() == 0x82);
}

TEST_CASE("IOAPIC level pin masked in its handler is held until unmasked after EOI")
{
    Board b;
    b.redirect(14, LEVEL | 0x83);
    b.ioapic.set_irq(14, true);
    CHECK(b.take() == 0x83);
    b.redirect(14, MASKED | LEVEL | 0x83);
    b.eoi();
    CHECK(b.take() == -1);
    b.redirect(14, LEVEL | 0x83);
    CHECK(b.take() == 0x83);
}

TEST_CASE("IOAPIC EOI clears remote IRR by vector even after the destination changed")
{
    Board b(2);
    b.redirect(13, LEVEL | 0x64);
    b.redirect(14, LEVEL | 0x84);
    b.ioapic.set_irq(13, true);
    CHECK(b.take() == 0x64);
    b.ioapic.set_irq(14, true);
    b.ioapic.set_irq(14, false);
    b.ioapic.set_irq(13, false);
    b.set_reg(0x10 + 2 * 14 + 1, 1u << 24); // only the high half: destination 1
    b.set_reg(0x10 + 2 * 13 + 1, 1u << 24);
    CHECK(b.ioapic.remote_irr(14));
    b.eoi();
    CHECK(b.take() == 0x84);
    b.eoi();
    CHECK(!b.ioapic.remote_irr(13));
    CHECK(!b.ioapic.remote_irr(14));
}

TEST_CASE("IOAPIC physical destination selects one local APIC")
{
    Board b(2);
    b.redirect(5, 0x85, 1);
    b.ioapic.set_irq(5, true);
    CHECK(b.take(1) == 0x85);
    CHECK(b.take(0) == -1);
}

TEST_CASE("IOAPIC logical destination reaches every APIC whose logical ID matches")
{
    Board b(3);
    for (unsigned i = 0; i < 3; ++i)
        b.cpus[i]->io_write(0xD0, 4, (1u << i) << 24);
    b.redirect(5, LOGICAL | 0x86, 0x05);
    b.ioapic.set_irq(5, true);
    CHECK(b.take(0) == 0x86);
    CHECK(b.take(1) == -1);
    CHECK(b.take(2) == 0x86);
}

TEST_CASE("IOAPIC NMI delivery mode raises an NMI on the destination")
{
    Board b;
    b.redirect(7, 0x400);
    b.ioapic.set_irq(7, true);
    CHECK(b.cpus[0]->take_nmi());
}

TEST_CASE("IOAPIC level pin switched to edge drops its remote IRR")
{
    Board b;
    b.redirect(9, LEVEL | 0x70);
    b.ioapic.set_irq(9, true);
    CHECK(b.ioapic.remote_irr(9));
    b.redirect(9, 0x70);
    CHECK(!b.ioapic.remote_irr(9));
}

TEST_CASE("IOAPIC polarity bit is stored but inputs are logical levels")
{
    Board b;
    b.redirect(16, LEVEL | ACTIVE_LOW | 0x90);
    CHECK((b.reg(0x10 + 32) & ACTIVE_LOW) != 0);
    b.ioapic.set_irq(16, true);
    CHECK(b.take() == 0x90);
}

TEST_CASE("IOAPIC state saves, loads and saves again to the same bytes")
{
    Board b;
    b.set_reg(0, 0x03000000);
    b.redirect(14, LEVEL | 0x77);
    b.redirect(3, 0x41, 2);
    b.ioapic.set_irq(14, true);
    b.ioapic.io_write(0, 4, 0x17);

    StateVisitor save = StateVisitor::saver();
    b.ioapic.visit_state(save);
    Board fresh;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.ioapic.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.ioapic.visit_state(again);
    CHECK(again.bytes() == save.bytes());
    CHECK(fresh.ioapic.remote_irr(14));
    CHECK(fresh.reg(0) == 0x03000000);
    fresh.eoi();
    fresh.ioapic.eoi(0x77); // line still asserted: delivered again
    CHECK(fresh.take() == 0x77);
}

TEST_CASE("IOAPIC state with an ID wider than four bits is refused")
{
    Board b;
    StateVisitor save = StateVisitor::saver();
    b.ioapic.visit_state(save);
    Board good, bad;
    CHECK(loads(good.ioapic, patched<u8>(save.bytes(), section_bytes("io_apic"), 0x0F)));
    CHECK_FALSE(loads(bad.ioapic, patched<u8>(save.bytes(), section_bytes("io_apic"), 0x10)));
}
