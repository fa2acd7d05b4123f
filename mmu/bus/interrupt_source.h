// What a vCPU asks its interrupt controller (PIC, LAPIC) at instruction
// boundaries. The platform implements it; the CPU only polls.
#pragma once

#include "mmu/base/types.h"

class InterruptSource {
public:
    virtual ~InterruptSource() = default;
    // A maskable interrupt is waiting (the CPU checks RFLAGS.IF itself).
    virtual bool interrupt_pending() = 0;
    // Acknowledges the highest-priority pending interrupt; returns its vector.
    virtual u8 acknowledge_interrupt() = 0;
    // An NMI is waiting; taking it clears it.
    virtual bool take_nmi() { return false; }
    // CR8 is the local APIC's task priority (TPR[7:4], SDM Vol 3A 10.8.6.1):
    // an APIC answers MOV to/from CR8; false means the CPU keeps CR8 itself.
    virtual bool read_cr8(u64& value) { (void)value; return false; }
    virtual bool write_cr8(u64 value) { (void)value; return false; }
    // False while a local APIC is globally disabled (IA32_APIC_BASE.EN=0),
    // when CPUID.1:EDX.APIC reads 0 (SDM Vol 3A 10.4.3).
    virtual bool apic_enabled() const { return true; }
};
