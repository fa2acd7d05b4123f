// The one way a device, a loader or the Hyper-V partition reads and writes
// guest RAM (docs/architecture.md "mmu/"): copies checked against the RAM
// ranges, never a host pointer. A copy that would touch anything but RAM
// (the legacy hole, the PCI hole, ROM, MMIO, past the end of RAM, or across
// from one RAM range into another) is refused whole: nothing is copied and
// the caller gets false, to turn into its protocol's error. A write
// invalidates code the CPUs decoded from the pages it touches and marks them
// in the dirty log, exactly as a CPU store does.
//
// A value type holding the machine's PhysicalMemory: devices keep a copy.
#pragma once

#include "mmu/physical_memory.h"

#include <span>

class GuestMemory {
public:
    // Implicit: whoever owns the PhysicalMemory hands it to a device as its
    // DMA view.
    GuestMemory(PhysicalMemory& memory) : m_memory(&memory) {}

    [[nodiscard]] bool read(GuestPhys addr, std::span<u8> out) const;
    [[nodiscard]] bool write(GuestPhys addr, std::span<const u8> data) const;
    // The same for a plain object or buffer of `len` bytes.
    [[nodiscard]] bool read(GuestPhys addr, void* out, u64 len) const;
    [[nodiscard]] bool write(GuestPhys addr, const void* data, u64 len) const;

private:
    PhysicalMemory* m_memory;
};
