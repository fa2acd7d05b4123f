#include "platform/testdev/pc_testdev.h"

#include <doctest/doctest.h>

namespace {

struct Bench {
    PortBus ports;
    PhysicalMemory memory{16 << 20};
    std::vector<std::pair<unsigned, bool>> edges;
    PcTestdev dev{[this](unsigned irq) {
        return IrqLine([this, irq](bool level) { edges.emplace_back(irq, level); });
    }};
    Bench() { dev.attach(ports, memory); }
};

} // namespace

TEST_CASE("pc-testdev data register: byte lanes at 0xE0 and 0xE8, widths 1 to 4")
{
    Bench b;
    b.ports.write(0xE0, 4, 0x11223344);
    CHECK(b.ports.read(0xE0, 4) == 0x11223344);
    CHECK(b.ports.read(0xE2, 2) == 0x1122);
    CHECK(b.ports.read(0xEB, 1) == 0x11);
    b.ports.write(0xE9, 1, 0xAA);
    CHECK(b.dev.data() == 0x1122AA44);
    b.ports.write(0xE3, 4, 0xFFFFFF55); // only lane 3 exists from there
    CHECK(b.dev.data() == 0x5522AA44);
    CHECK(b.ports.read(0xE3, 2) == 0x55);
    b.ports.write(0xE4, 4, 0x1000); // flush page: no effect on the register
    CHECK(b.dev.data() == 0x5522AA44);
}

TEST_CASE("pc-testdev IRQ ports set ISA line levels, driving only changes")
{
    Bench b;
    b.ports.write(0x200E, 1, 1);
    b.ports.write(0x200E, 1, 1);
    b.ports.write(0x200E, 1, 0);
    b.ports.write(0x200F, 1, 7);
    b.ports.write(0x2014, 1, 1); // line 20: no ISA line there
    REQUIRE(b.edges.size() == 3);
    CHECK(b.edges[0] == std::pair<unsigned, bool>{14, true});
    CHECK(b.edges[1] == std::pair<unsigned, bool>{14, false});
    CHECK(b.edges[2] == std::pair<unsigned, bool>{15, true});
}

TEST_CASE("pc-testdev MMIO at 0xFF000000 keeps what is written, up to its 64 KiB end")
{
    Bench b;
    b.memory.write(0xFF000010, 8, 0x0123456789ABCDEFull);
    CHECK(b.memory.read(0xFF000010, 8) == 0x0123456789ABCDEFull);
    CHECK(b.memory.read(0xFF000012, 2) == 0x89AB);
    b.memory.write(0xFF00FFFF, 1, 0x5A);
    CHECK(b.memory.read(0xFF00FFFF, 1) == 0x5A);
    CHECK(b.memory.ram_page(0xFF000000) == nullptr); // not RAM: every access reaches the device
}
