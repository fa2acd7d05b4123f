// The seam between buses and devices (docs/architecture.md "Buses"): a device answers
// reads and writes at offsets relative to where it is mapped.
#pragma once

#include "mmu/base/types.h"

// Who made an access that no vCPU made (device DMA, loaders, tests).
constexpr unsigned NO_VCPU = ~0u;

class IoDevice {
public:
    virtual ~IoDevice() = default;
    // size is 1, 2, 4 or 8 bytes; the value is zero-extended.
    virtual u64 io_read(u64 offset, unsigned size) = 0;
    virtual void io_write(u64 offset, unsigned size, u64 value) = 0;
    // The same accesses with the vCPU that made them named (NO_VCPU for a
    // device's own): what a per-vCPU device such as the local APIC's MMIO
    // window answers by. Other devices are the same for every vCPU.
    virtual u64 io_read_by(unsigned vcpu, u64 offset, unsigned size)
    {
        (void)vcpu;
        return io_read(offset, size);
    }
    virtual void io_write_by(unsigned vcpu, u64 offset, unsigned size, u64 value)
    {
        (void)vcpu;
        io_write(offset, size, value);
    }
};
