#include "platform/chipset/piix_isa_bridge.h"

#include "mmu/base/state_visitor.h"
#include "platform/chipset/pci_host.h"

#include <doctest/doctest.h>

#include <vector>

namespace {

struct Bench {
    PciHost host;
    PiixIsaBridge piix;
    std::vector<std::pair<unsigned, bool>> isa;
    std::vector<bool> resets;

    Bench()
    {
        host.attach(1, 0, piix);
        host.set_reset_control(&piix.reset_control());
        host.set_pirq_line([this](unsigned p, bool l) { piix.set_pirq(p, l); });
        piix.set_isa_irq_line([this](unsigned irq, bool l) { isa.emplace_back(irq, l); });
        piix.set_reset_handler([this](bool hard) { resets.push_back(hard); });
    }
    u32 cfg_read(u8 reg, unsigned size = 1)
    {
        host.config_ports().io_write(0, 4, 0x80000800u | (reg & 0xFC));
        return static_cast<u32>(host.config_ports().io_read(4 + (reg & 3), size));
    }
    void cfg_write(u8 reg, u32 value, unsigned size = 1)
    {
        host.config_ports().io_write(0, 4, 0x80000800u | (reg & 0xFC));
        host.config_ports().io_write(4 + (reg & 3), size, value);
    }
};

} // namespace

TEST_CASE("PIIX3 ISA bridge identifies as 8086:7000, class ISA bridge, multi-function")
{
    Bench b;
    CHECK(b.cfg_read(0x00, 4) == 0x70008086);
    CHECK(b.cfg_read(0x0B) == 0x06);
    CHECK(b.cfg_read(0x0A) == 0x01);
    CHECK(b.cfg_read(0x0E) == 0x80);
}

TEST_CASE("PIIX3 PIRQ route registers reset to disabled")
{
    Bench b;
    CHECK(b.cfg_read(0x60, 4) == 0x80808080);
    for (unsigned p = 0; p < 4; ++p)
        CHECK(!b.piix.pirq_route(p));
}

TEST_CASE("PIIX3 routes an asserted PIRQ to the ISA IRQ its register names")
{
    Bench b;
    b.cfg_write(0x61, 0x0B); // PIRQB -> IRQ11
    b.piix.set_pirq(1, true);
    CHECK(b.isa == std::vector<std::pair<unsigned, bool>>{{11, true}});
    b.piix.set_pirq(1, false);
    CHECK(b.isa.back() == std::pair<unsigned, bool>{11, false});
}

TEST_CASE("PIIX3 re-routing a held PIRQ moves the level to the new IRQ")
{
    Bench b;
    b.cfg_write(0x60, 0x0A);
    b.piix.set_pirq(0, true);
    b.cfg_write(0x60, 0x05);
    CHECK(b.isa == std::vector<std::pair<unsigned, bool>>{{10, true}, {5, true}, {10, false}});
}

TEST_CASE("PIIX3 ignores routes to IRQs a PIRQ cannot use and disabled routes")
{
    Bench b;
    b.cfg_write(0x60, 0x08); // IRQ8: reserved for the RTC
    b.cfg_write(0x61, 0x8A); // disabled
    b.piix.set_pirq(0, true);
    b.piix.set_pirq(1, true);
    CHECK(b.isa.empty());
}

TEST_CASE("PIIX3 firmware routing programs 10, 10, 11, 11 and asks for ELCR bits 10 and 11")
{
    Bench b;
    CHECK(b.piix.firmware_routing() == 0x0C00);
    CHECK(b.cfg_read(0x60, 4) == 0x0B0B0A0A);
}

TEST_CASE("PIIX3 two PIRQs sharing an IRQ keep it asserted until both drop")
{
    Bench b;
    b.piix.firmware_routing();
    b.piix.set_pirq(0, true);
    b.piix.set_pirq(1, true);
    b.piix.set_pirq(0, false);
    CHECK(b.isa == std::vector<std::pair<unsigned, bool>>{{10, true}});
    b.piix.set_pirq(1, false);
    CHECK(b.isa.back() == std::pair<unsigned, bool>{10, false});
}

TEST_CASE("PIIX3 reset control at 0xCF9: 0x06 asks for a hard reset, 0x04 for a soft one")
{
    Bench b;
    b.host.config_ports().io_write(1, 1, 0x02);
    CHECK(b.resets.empty());
    CHECK(b.host.config_ports().io_read(1, 1) == 0x02);
    b.host.config_ports().io_write(1, 1, 0x06);
    b.host.config_ports().io_write(1, 1, 0x04);
    CHECK(b.resets == std::vector<bool>{true, false});
}

TEST_CASE("PIIX3 state saves, loads and saves again to the same bytes")
{
    Bench b;
    b.piix.firmware_routing();
    b.piix.set_pirq(2, true);
    b.cfg_write(0x4C, 0x55);
    b.host.config_ports().io_write(1, 1, 0x02);

    StateVisitor save = StateVisitor::saver();
    b.piix.visit_state(save);
    Bench fresh;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.piix.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.piix.visit_state(again);
    CHECK(again.bytes() == save.bytes());
    CHECK(fresh.cfg_read(0x4C) == 0x55);
    CHECK(fresh.piix.pirq_route(2) == 11);
}
