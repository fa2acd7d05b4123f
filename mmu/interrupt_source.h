// What a vCPU asks its interrupt controller (PIC, LAPIC) at instruction
// boundaries. The platform implements it; the CPU only polls.
#pragma once

#include "mmu/types.h"

class InterruptSource {
public:
    virtual ~InterruptSource() = default;
    // A maskable interrupt is waiting (the CPU checks RFLAGS.IF itself).
    virtual bool interrupt_pending() = 0;
    // Acknowledges the highest-priority pending interrupt; returns its vector.
    virtual u8 acknowledge_interrupt() = 0;
    // An NMI is waiting; taking it clears it.
    virtual bool take_nmi() { return false; }
};
