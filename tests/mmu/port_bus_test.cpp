#include "mmu/bus/port_bus.h"

#include <doctest/doctest.h>

namespace {
class Latch : public IoDevice {
public:
    u64 io_read(u64, unsigned) override { return value; }
    void io_write(u64, unsigned, u64 v) override { value = v; }
    u64 value = 0;
};
} // namespace

TEST_CASE("The port bus counts every read and write, claimed ports or not")
{
    PortBus bus;
    Latch latch;
    bus.map(0x1F0, 8, &latch);
    CHECK(bus.accesses() == 0);
    bus.write(0x1F0, 2, 0x1234);
    CHECK(bus.read(0x1F0, 2) == 0x1234);
    CHECK(bus.read(0x80, 1) == 0xFF); // unclaimed: all ones, still an exit
    bus.write(0x80, 1, 0);
    CHECK(bus.accesses() == 4);
}
