// The guest-physical memory map of the PC this project builds, in one place:
// where RAM is, where the legacy hole and the PCI hole are, and where the
// chipset decodes its windows. PhysicalMemory lays RAM out by it; the boot
// loaders (e820, the multiboot map), the firmware tables (ACPI _CRS and
// MCFG, SMBIOS) and the board read it, so the guest learns one story.
//
// RAM is split as QEMU's `-M pc` (i440FX) splits it (hw/i386/pc_piix.c,
// pc_init1, max-ram-below-4g left at its default): a machine with less than
// 3.5 GiB keeps all of it below 4 GiB; a larger one keeps 3 GiB below (the
// split moves to a gigabyte boundary) and the rest from 4 GiB up. The PCI
// hole is what lies between the end of low RAM and 4 GiB.
//
// It lives in mmu/ rather than platform/board/ because PhysicalMemory, the
// boot loaders and the firmware table builders all need it and the board
// sits above them (docs/architecture.md "Layers").
#pragma once

#include "mmu/base/types.h"

namespace pc_memory_map {

// Conventional memory ends at 640 KiB; the VGA window, option ROMs and BIOS
// fill [0xA0000, 1 MiB), which is never RAM here.
constexpr GuestPhys LOW_RAM_END = 0xA0000;
constexpr GuestPhys HIGH_RAM_START = 0x100000;

// QEMU pc's default max-ram-below-4g, and where the split goes for machines
// at least that large (its gigabyte_align).
constexpr u64 MAX_RAM_BELOW_4G = 0xE0000000;
constexpr u64 SPLIT_RAM_BELOW_4G = 0xC0000000;
constexpr GuestPhys RAM_ABOVE_4G_BASE = 1ull << 32;

// The PCIe ECAM (MMCONFIG) window: 256 buses of 1 MiB, placed where low RAM
// can never reach (low RAM ends at or below MAX_RAM_BELOW_4G), so that it
// is decoded whatever the RAM size.
constexpr GuestPhys ECAM_BASE = 0xE0000000;
constexpr unsigned ECAM_BUSES = 256;
constexpr u64 ECAM_SIZE = u64(ECAM_BUSES) << 20;

// The 32-bit PCI hole ends where the IOAPIC, HPET, LAPIC and BIOS ROM
// begin (QEMU: IO_APIC_DEFAULT_ADDRESS).
constexpr GuestPhys PCI_HOLE_END = 0xFEC00000;
// The 64-bit window above RAM: QEMU i440FX's default pci-hole64-size (2 GiB,
// "to comply with older win32 guests"), starting at the first gigabyte
// boundary at or above the end of RAM above 4 GiB.
constexpr u64 PCI_HOLE64_SIZE = 2ull << 30;

struct RamLayout {
    u64 below_4g = 0; // RAM [0, below_4g), less the legacy hole
    u64 above_4g = 0; // RAM [4 GiB, 4 GiB + above_4g)

    constexpr u64 total() const { return below_4g + above_4g; }
    constexpr GuestPhys above_4g_end() const { return RAM_ABOVE_4G_BASE + above_4g; }
    constexpr bool operator==(const RamLayout&) const = default;
};

constexpr RamLayout ram_layout(u64 ram_bytes)
{
    const u64 lowmem = ram_bytes >= MAX_RAM_BELOW_4G ? SPLIT_RAM_BELOW_4G : MAX_RAM_BELOW_4G;
    if (ram_bytes >= lowmem)
        return {lowmem, ram_bytes - lowmem};
    return {ram_bytes, 0};
}

// First byte of the 32-bit PCI MMIO space: just past low RAM, on a 1 MiB
// boundary (PCI BARs are at least that aligned in practice).
constexpr GuestPhys pci_hole_start(const RamLayout& layout)
{
    return (layout.below_4g + 0xFFFFF) & ~0xFFFFFull;
}

constexpr GuestPhys pci_hole64_start(const RamLayout& layout)
{
    constexpr u64 GIB = 1ull << 30;
    return (layout.above_4g_end() + GIB - 1) & ~(GIB - 1);
}

static_assert(ram_layout(512ull << 20) == RamLayout{512ull << 20, 0});
static_assert(ram_layout(0xDFF00000) == RamLayout{0xDFF00000, 0});
static_assert(ram_layout(0xE0000000) == RamLayout{0xC0000000, 0x20000000});
static_assert(ram_layout(8ull << 30) == RamLayout{0xC0000000, (8ull << 30) - 0xC0000000});
static_assert(MAX_RAM_BELOW_4G <= ECAM_BASE);

} // namespace pc_memory_map
