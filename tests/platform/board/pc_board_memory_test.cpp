// How the board describes RAM above 4 GiB and the PCI holes to the guest
// (mmu/pc_memory_map.h): the DSDT's root-bridge windows, the ACPI tables'
// place, the CMOS sizes, the ECAM window.
#include "platform/board/pc_board.h"

#include "mmu/base/byte_order.h"

#include <doctest/doctest.h>

#include <algorithm>

namespace {

constexpr u64 GIB = 1ull << 30;

struct Board {
    PhysicalMemory memory;
    PortBus ports;
    MsrBus msrs;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    PcBoard board;
    explicit Board(u64 ram) : memory(ram), board({1, ram, 0}, memory, ports, msrs, clock) {}
};

// True when `bytes` holds an ACPI address space descriptor (6.4.3.5) of the
// given tag whose minimum and maximum are min and max, each `width` bytes.
bool has_window(std::span<const u8> bytes, u8 tag, unsigned width, u64 min, u64 max)
{
    // Tag, length (2), type, flags, type flags, granularity, min, max.
    const size_t min_at = 6 + width, max_at = min_at + width;
    for (size_t i = 0; i + max_at + width <= bytes.size(); ++i)
        if (bytes[i] == tag && bytes[i + 3] == 0 /* memory */ &&
            load_le(bytes, i + min_at, width) == min && load_le(bytes, i + max_at, width) == max)
            return true;
    return false;
}

u8 cmos(PortBus& ports, u8 index)
{
    ports.write(0x70, 1, index);
    return static_cast<u8>(ports.read(0x71, 1));
}

} // namespace

TEST_CASE("an 8 GiB board forwards the PCI hole around ECAM and a 64-bit window above RAM")
{
    Board b(8 * GIB);
    const std::span<const u8> dsdt = b.board.acpi().table("DSDT");
    REQUIRE(!dsdt.empty());
    constexpr u8 DWORD = 0x87, QWORD = 0x8A;
    CHECK(has_window(dsdt, DWORD, 4, 0xC0000000, 0xDFFFFFFF));
    CHECK(has_window(dsdt, DWORD, 4, 0xF0000000, 0xFEBFFFFF));
    // RAM ends at 9 GiB, a gigabyte boundary: the 2 GiB window starts there.
    CHECK(has_window(dsdt, QWORD, 8, 9 * GIB, 11 * GIB - 1));
    // MCFG and the ECAM window agree, above all RAM below 4 GiB.
    const std::span<const u8> mcfg = b.board.acpi().table("MCFG");
    CHECK(load_le(mcfg, 44, 8) == pc_memory_map::ECAM_BASE);
    CHECK(b.memory.read(pc_memory_map::ECAM_BASE, 4) == 0x12378086); // the i440FX at 00:00.0
}

TEST_CASE("the 64-bit PCI window starts at the first gigabyte boundary above RAM")
{
    Board b(8 * GIB + (1ull << 20));
    CHECK(has_window(b.board.acpi().table("DSDT"), 0x8A, 8, 10 * GIB, 12 * GIB - 1));
}

TEST_CASE("a 512 MiB board forwards everything above RAM below 4 GiB except ECAM")
{
    Board b(512ull << 20);
    const std::span<const u8> dsdt = b.board.acpi().table("DSDT");
    CHECK(has_window(dsdt, 0x87, 4, 0x20000000, 0xDFFFFFFF));
    CHECK(has_window(dsdt, 0x87, 4, 0xF0000000, 0xFEBFFFFF));
    CHECK(has_window(dsdt, 0x8A, 8, 4 * GIB, 6 * GIB - 1));
}

TEST_CASE("the ACPI tables of a large board sit at the top of RAM below 4 GiB")
{
    Board b(64 * GIB);
    const GuestPhys at = b.board.acpi().tables_address;
    CHECK(at >= 3 * GIB - PcBoard::ACPI_TABLES_SIZE);
    CHECK(at < 3 * GIB);
}

TEST_CASE("CMOS reports memory above 16 MiB below 4 GiB and above 4 GiB in 64 KiB units")
{
    Board b(8 * GIB);
    const u32 below = cmos(b.ports, 0x34) | cmos(b.ports, 0x35) << 8;
    CHECK(below == (3 * GIB - (16ull << 20)) >> 16);
    const u32 above = cmos(b.ports, 0x5B) | cmos(b.ports, 0x5C) << 8 | cmos(b.ports, 0x5D) << 16;
    CHECK(above == (5 * GIB) >> 16);
}
