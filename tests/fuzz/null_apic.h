// An APIC that takes every SynIC interrupt and drops it, for fuzz targets
// that drive the Hyper-V partition without vCPUs.
#pragma once

#include "paravirt/apic_port.h"

struct NullApic final : ApicPort {
    void raise_vector(unsigned, u8, bool) override {}
    void set_auto_eoi(unsigned, u8, bool) override {}
    void write_eoi(unsigned) override {}
    u64 read_icr(unsigned) override { return 0; }
    void write_icr(unsigned, u64) override {}
    u8 read_tpr(unsigned) override { return 0; }
    void write_tpr(unsigned, u8) override {}
};
