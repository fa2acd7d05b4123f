// ROM and shadow RAM as KVM memory. Without them every read of the BIOS
// window [0xC0000, 0x100000) exits to viridian as MMIO (Linux's scans for
// the RSDP and SMBIOS tables were 39,400 of a boot's 66,000 exits), and KVM
// cannot run code from there at all (it does not fetch instructions from
// MMIO), which SeaBIOS needs. Here the window is 16 slots, one per
// shadow-RAM granule, and each ROM elsewhere (the BIOS below 4 GiB) one
// read-only slot:
//   - a granule whose reads reach RAM (PAM) is that RAM, read-only when its
//     writes do not;
//   - a granule whose reads reach a ROM or nothing is a read-only copy of
//     what PhysicalMemory::read returns there;
//   - a granule with an MMIO device in it stays out (it exits).
// Writes to a read-only slot exit as MMIO, and PhysicalMemory decides them
// as on the interpreter (dropped, or to the shadow RAM behind a ROM).
// The slots follow every layout change (PhysicalMemory's layout listener).
#pragma once

#include "mmu/physical_memory.h"

#include <array>
#include <vector>

class KvmRomSlots {
public:
    // Slots first_slot and up are this class's.
    KvmRomSlots(int vm_fd, PhysicalMemory& memory, u32 first_slot);
    ~KvmRomSlots();
    KvmRomSlots(const KvmRomSlots&) = delete;
    KvmRomSlots& operator=(const KvmRomSlots&) = delete;

    // Makes the slots; false (with a message) when KVM refused one.
    bool map();
    // Re-makes the window's slots whose granule changed.
    bool update();

    static constexpr GuestPhys WINDOW_BASE = PhysicalMemory::SHADOW_BASE;
    static constexpr u64 GRANULE = PhysicalMemory::SHADOW_GRANULE;
    static constexpr unsigned GRANULES = (PhysicalMemory::SHADOW_END - WINDOW_BASE) / GRANULE;

private:
    enum class Kind : u8 { Unmapped, Ram, RamReadOnly, Copy };
    struct Slot {
        Kind kind = Kind::Unmapped;
        u8* host = nullptr;
    };
    Slot wanted(unsigned granule);
    bool set_slot(u32 slot, GuestPhys base, u64 size, u8* host, bool read_only);
    bool map_rom_outside_window(const PhysicalMemory::RomImage& rom);

    int m_vm_fd;
    PhysicalMemory& m_memory;
    u32 m_first_slot;
    std::array<Slot, GRANULES> m_granules{};
    u8* m_window_copy = nullptr; // what the guest reads where no RAM is, page-aligned
    struct OwnedPages {
        u8* host;
        u64 size;
    };
    std::vector<OwnedPages> m_rom_copies;
};
