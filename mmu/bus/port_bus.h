// The x86 port I/O space (64 KiB of ports). Devices claim ranges; the bus,
// not the device, decides that an unclaimed read returns all ones and an
// unclaimed write is dropped.
#pragma once

#include "mmu/bus/io_device.h"

#include <vector>

class PortBus {
public:
    // Claims [base, base + count). Overlapping claims are a programming error.
    void map(u16 base, u32 count, IoDevice* device);
    // For ranges the guest moves (PCI I/O BARs): refuses (false) a range that
    // overlaps another instead of asserting, so a guest cannot crash the host
    // by pointing a BAR at a port that is taken; such a BAR does not decode.
    bool try_map(u16 base, u32 count, IoDevice* device);
    // Releases the range `device` claimed at `base` (nothing if it has none).
    void unmap(u16 base, IoDevice* device);
    u64 read(u16 port, unsigned size);
    void write(u16 port, unsigned size, u64 value);
    // Reads and writes so far, claimed or not: the guest's port I/O exits
    // (--stats). A REP INS/OUTS counts once per element.
    u64 accesses() const { return m_accesses; }

private:
    struct Range {
        u16 base;
        u32 count;
        IoDevice* device;
    };
    const Range* find(u16 port) const;
    std::vector<Range> m_ranges;
    u64 m_accesses = 0;
};
