// The seam between buses and devices (DESIGN.md "Buses"): a device answers
// reads and writes at offsets relative to where it is mapped.
#pragma once

#include "mmu/types.h"

class IoDevice {
public:
    virtual ~IoDevice() = default;
    // size is 1, 2, 4 or 8 bytes; the value is zero-extended.
    virtual u64 io_read(u64 offset, unsigned size) = 0;
    virtual void io_write(u64 offset, unsigned size, u64 value) = 0;
};
