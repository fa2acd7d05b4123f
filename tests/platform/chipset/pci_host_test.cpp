#include "platform/chipset/pci_host.h"

#include "mmu/base/state_visitor.h"
#include "tests/state_patch.h"

#include <doctest/doctest.h>

#include <vector>

namespace {

struct NullDevice : IoDevice {
    u64 io_read(u64, unsigned) override { return 0; }
    void io_write(u64, unsigned, u64) override {}
};

// A device with one BAR of each kind and INTA#.
struct TestDevice : PciDevice {
    NullDevice io, mmio, mmio64;
    TestDevice() : PciDevice(0x1234, 0x5678, 0x020000, 0x03)
    {
        define_bar(0, PciBarKind::Io, 0x20, &io);
        define_bar(1, PciBarKind::Memory32, 0x1000, &mmio);
        define_bar(2, PciBarKind::Memory64, 0x100000, &mmio64, true);
        set_interrupt_pin(1);
    }
};

struct Moved {
    unsigned bar;
    std::optional<u64> from, to;
    bool operator==(const Moved&) const = default;
};

struct Bench {
    PciHost host;
    TestDevice dev;
    std::vector<Moved> moves;
    std::vector<std::pair<unsigned, bool>> pirqs;

    Bench()
    {
        host.attach(3, 0, dev);
        host.set_bar_listener(
            [this](PciDevice&, unsigned bar, std::optional<u64> from, std::optional<u64> to) {
                moves.push_back({bar, from, to});
            });
        host.set_pirq_line([this](unsigned p, bool l) { pirqs.emplace_back(p, l); });
    }
    static u32 address(u8 bus, u8 slot, u8 fn, u8 reg)
    {
        return 0x80000000u | (u32(bus) << 16) | (u32(slot) << 11) | (u32(fn) << 8) | reg;
    }
    u32 cfg_read(u8 slot, u8 reg, unsigned size = 4, u8 fn = 0, u8 bus = 0)
    {
        host.config_ports().io_write(0, 4, address(bus, slot, fn, reg & 0xFC));
        return static_cast<u32>(host.config_ports().io_read(4 + (reg & 3), size));
    }
    void cfg_write(u8 slot, u8 reg, u32 value, unsigned size = 4)
    {
        host.config_ports().io_write(0, 4, address(0, slot, 0, reg & 0xFC));
        host.config_ports().io_write(4 + (reg & 3), size, value);
    }
};

} // namespace

TEST_CASE("PCI config address register keeps enable, bus, device, function and dword index")
{
    Bench b;
    b.host.config_ports().io_write(0, 4, 0xFFFFFFFF);
    CHECK(b.host.config_ports().io_read(0, 4) == 0x80FFFFFC);
}

TEST_CASE("PCI host bridge at 00:00.0 identifies as an i440FX")
{
    Bench b;
    CHECK(b.cfg_read(0, 0x00) == 0x12378086);
    CHECK(b.cfg_read(0, 0x08) == 0x06000002);
    CHECK(b.cfg_read(0, 0x0E, 1) == 0x00);
}

TEST_CASE("PCI config data port reads any byte or word offset of the dword")
{
    Bench b;
    CHECK(b.cfg_read(3, 0x00, 2) == 0x1234);
    CHECK(b.cfg_read(3, 0x02, 2) == 0x5678);
    CHECK(b.cfg_read(3, 0x03, 1) == 0x56);
    CHECK(b.cfg_read(3, 0x0B, 1) == 0x02); // class code base
}

TEST_CASE("PCI absent device or disabled config cycle reads all ones")
{
    Bench b;
    CHECK(b.cfg_read(7, 0x00) == 0xFFFFFFFF);
    CHECK(b.cfg_read(3, 0x00, 4, 0, 1) == 0xFFFFFFFF); // bus 1
    CHECK(b.cfg_read(3, 0x00, 4, 1) == 0xFFFFFFFF);    // function 1 of a single-function device
    b.host.config_ports().io_write(0, 4, 0x00001800);  // enable bit clear
    CHECK(b.host.config_ports().io_read(4, 4) == 0xFFFFFFFF);
}

TEST_CASE("PCI ECAM reaches the same config space, extended registers included")
{
    Bench b;
    IoDevice& ecam = b.host.ecam();
    const u64 fn = (3ull << 15);
    CHECK(ecam.io_read(fn, 4) == 0x56781234);
    CHECK(ecam.io_read(fn + 0x100, 4) == 0); // extended space of a conventional device
    CHECK(ecam.io_read((1ull << 20) + fn, 4) == 0xFFFFFFFF);
    CHECK(b.host.ecam_size() == 256ull << 20);
    ecam.io_write(fn + 0x3C, 1, 0x0B);
    CHECK(b.cfg_read(3, 0x3C, 1) == 0x0B);
}

TEST_CASE("PCI BAR sizing: writing all ones reads back the size mask and type bits")
{
    Bench b;
    b.cfg_write(3, 0x10, 0xFFFFFFFF);
    CHECK(b.cfg_read(3, 0x10) == 0xFFFFFFE1); // 32-byte I/O
    b.cfg_write(3, 0x14, 0xFFFFFFFF);
    CHECK(b.cfg_read(3, 0x14) == 0xFFFFF000); // 4 KiB memory
    b.cfg_write(3, 0x18, 0xFFFFFFFF);
    b.cfg_write(3, 0x1C, 0xFFFFFFFF);
    CHECK(b.cfg_read(3, 0x18) == 0xFFF0000C); // 1 MiB, 64-bit, prefetchable
    CHECK(b.cfg_read(3, 0x1C) == 0xFFFFFFFF);
    CHECK(b.moves.empty()); // decoding is off: nothing moved
}

TEST_CASE("PCI BAR listener hears a move when decoding is enabled and when the BAR changes")
{
    Bench b;
    b.cfg_write(3, 0x10, 0xC000);
    b.cfg_write(3, 0x14, 0xFEB00000);
    CHECK(b.moves.empty());
    b.cfg_write(3, 0x04, 0x0003, 2); // I/O and memory decoding on
    CHECK(b.moves == std::vector<Moved>{{0, std::nullopt, 0xC000}, {1, std::nullopt, 0xFEB00000}});
    b.moves.clear();
    b.cfg_write(3, 0x14, 0xFEB01000);
    CHECK(b.moves == std::vector<Moved>{{1, 0xFEB00000, 0xFEB01000}});
    b.moves.clear();
    b.cfg_write(3, 0x04, 0x0000, 2);
    CHECK(b.moves == std::vector<Moved>{{0, 0xC000, std::nullopt}, {1, 0xFEB01000, std::nullopt}});
}

TEST_CASE("PCI 64-bit BAR combines both dwords into one address")
{
    Bench b;
    b.cfg_write(3, 0x18, 0x00000000);
    b.cfg_write(3, 0x1C, 0x00000008);
    b.cfg_write(3, 0x04, 0x0002, 2);
    CHECK(b.dev.bar_address(2) == 0x800000000ull);
}

TEST_CASE("PCI device INTA on slot 3 drives PIRQ (3 + 1 - 1) mod 4 = PIRQD")
{
    Bench b;
    b.dev.set_irq(true);
    CHECK(b.pirqs == std::vector<std::pair<unsigned, bool>>{{3, true}});
    CHECK((b.cfg_read(3, 0x06, 2) & 0x8) != 0); // interrupt status
    b.dev.set_irq(false);
    CHECK(b.pirqs.back() == std::pair<unsigned, bool>{3, false});
}

TEST_CASE("PCI INTx disable in COMMAND gates the interrupt line")
{
    Bench b;
    b.dev.set_irq(true);
    b.cfg_write(3, 0x04, 0x0400, 2);
    CHECK(b.pirqs.back() == std::pair<unsigned, bool>{3, false});
    b.cfg_write(3, 0x04, 0x0000, 2);
    CHECK(b.pirqs.back() == std::pair<unsigned, bool>{3, true});
}

TEST_CASE("PCI shared PIRQ stays asserted while any device on it asserts")
{
    Bench b;
    TestDevice other;
    b.host.attach(7, 0, other); // slot 7, INTA -> PIRQD too
    b.dev.set_irq(true);
    other.set_irq(true);
    b.dev.set_irq(false);
    CHECK(b.host.pirq_level(3));
    other.set_irq(false);
    CHECK(!b.host.pirq_level(3));
}

TEST_CASE("PCI read-only identity and write-1-to-clear status bits")
{
    Bench b;
    b.cfg_write(3, 0x00, 0);
    CHECK(b.cfg_read(3, 0x00) == 0x56781234);
    b.cfg_write(3, 0x3D, 4, 1); // interrupt pin is read-only
    CHECK(b.cfg_read(3, 0x3D, 1) == 1);
}

TEST_CASE("PCI capability list links entries from the capabilities pointer")
{
    Bench b;
    const u8 body1[] = {1, 2}, body2[] = {3, 4, 5, 6};
    const u8 first = b.dev.add_capability(0x05, body1);
    const u8 second = b.dev.add_capability(0x09, body2);
    CHECK(b.cfg_read(3, 0x34, 1) == first);
    CHECK(b.cfg_read(3, first, 1) == 0x05);
    CHECK(b.cfg_read(3, first + 1, 1) == second);
    CHECK(b.cfg_read(3, second + 2, 1) == 3);
    CHECK((b.cfg_read(3, 0x06, 2) & 0x10) != 0);
}

TEST_CASE("PCI byte accesses to 0xCF9 reach the reset control register, not CONFIG_ADDRESS")
{
    struct Port : IoDevice {
        std::vector<u64> writes;
        u64 io_read(u64, unsigned) override { return 0x02; }
        void io_write(u64, unsigned, u64 v) override { writes.push_back(v); }
    } port;
    Bench b;
    b.host.set_reset_control(&port);
    b.host.config_ports().io_write(0, 4, 0x80001800);
    b.host.config_ports().io_write(1, 1, 0x06);
    CHECK(port.writes == std::vector<u64>{0x06});
    CHECK(b.host.config_ports().io_read(1, 1) == 0x02);
    CHECK(b.host.config_address() == 0x80001800);
}

TEST_CASE("PCI host state saves, loads and saves again to the same bytes and remaps BARs")
{
    Bench b;
    b.cfg_write(3, 0x10, 0xC000);
    b.cfg_write(3, 0x04, 0x0001, 2);
    b.dev.set_irq(true);
    b.host.config_ports().io_write(0, 4, 0x80001810);

    StateVisitor save = StateVisitor::saver();
    b.host.visit_state(save);
    Bench fresh;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.host.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.host.visit_state(again);
    CHECK(again.bytes() == save.bytes());
    CHECK(fresh.moves == std::vector<Moved>{{0, std::nullopt, 0xC000}});
    CHECK(fresh.pirqs == std::vector<std::pair<unsigned, bool>>{{3, true}});
    CHECK(fresh.host.config_address() == 0x80001810);
}

TEST_CASE("PCI state that changes a device's read-only configuration bits is refused")
{
    Bench b;
    StateVisitor save = StateVisitor::saver();
    b.host.visit_state(save);
    // The config address, then the first device's section and its 4096 bytes.
    const size_t config = section_bytes("pci_host") + 4 + section_bytes("pci_device");
    Bench good, vendor, bar_kind;
    CHECK(loads(good.host, save.bytes()));
    std::vector<u8> bytes = save.bytes();
    bytes[config] ^= 0xFF; // vendor ID
    CHECK_FALSE(loads(vendor.host, bytes));
    bytes = save.bytes();
    bytes[config + 0x10] ^= 0x01; // BAR0: I/O space or memory
    CHECK_FALSE(loads(bar_kind.host, bytes));
}

// ---- i440FX PAM registers ----

namespace {

void config_write_byte(PciHost& host, u16 reg, u8 value)
{
    host.config_ports().io_write(0, 4, 0x80000000u | (reg & 0xFC));
    host.config_ports().io_write(4 + (reg & 3), 1, value);
}

} // namespace

TEST_CASE("i440FX PAM registers send the BIOS window's reads and writes to RAM once given memory")
{
    PhysicalMemory memory(16ull << 20);
    const std::vector<u8> rom(0x10000, 0xAA);
    memory.map_rom(0xF0000, rom);
    PciHost host;
    config_write_byte(host, I440fxHostBridge::PAM0, 0x30); // before: no effect
    memory.write(0xF0000, 1, 0x11);
    CHECK(memory.read(0xF0000, 1) == 0xAA);
    host.host_bridge().set_shadow_memory(&memory); // applies what is there: F segment RW
    memory.write(0xF0000, 1, 0x11);
    CHECK(memory.read(0xF0000, 1) == 0x11);
    config_write_byte(host, I440fxHostBridge::PAM0, 0x10); // read-only
    memory.write(0xF0000, 1, 0x22);
    CHECK(memory.read(0xF0000, 1) == 0x11);
    config_write_byte(host, I440fxHostBridge::PAM0, 0x00); // back to the ROM
    CHECK(memory.read(0xF0000, 1) == 0xAA);
    // PAM1 high nibble: 0xC4000-0xC7FFF; low nibble 0xC0000-0xC3FFF.
    config_write_byte(host, I440fxHostBridge::PAM0 + 1, 0x30);
    memory.write(0xC4000, 1, 0x33);
    memory.write(0xC0000, 1, 0x33);
    CHECK(memory.read(0xC4000, 1) == 0x33);
    CHECK(memory.read(0xC0000, 1) == 0xFF);
    // PAM6 low nibble: 0xE8000-0xEBFFF.
    config_write_byte(host, I440fxHostBridge::PAM0 + 6, 0x03);
    memory.write(0xE8000, 1, 0x44);
    CHECK(memory.read(0xE8000, 1) == 0x44);
}

TEST_CASE("i440FX PAM registers loaded from a snapshot decode as saved")
{
    PhysicalMemory memory(16ull << 20);
    PciHost saved;
    saved.host_bridge().set_shadow_memory(&memory);
    config_write_byte(saved, I440fxHostBridge::PAM0, 0x30);
    StateVisitor out = StateVisitor::saver();
    saved.visit_state(out);

    PhysicalMemory fresh(16ull << 20);
    PciHost loaded;
    loaded.host_bridge().set_shadow_memory(&fresh);
    fresh.write(0xF0000, 1, 0x55);
    CHECK(fresh.read(0xF0000, 1) == 0xFF);
    StateVisitor in = StateVisitor::loader(out.bytes());
    loaded.visit_state(in);
    REQUIRE(in.ok());
    fresh.write(0xF0000, 1, 0x55);
    CHECK(fresh.read(0xF0000, 1) == 0x55);
}
