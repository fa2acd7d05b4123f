// What the enlightenments need from the local APICs of a partition. The
// machine adapts platform/'s LAPIC model to it (one adapter for all vCPUs,
// addressed by VP index), so SynIC interrupts, synthetic timers in direct
// mode, cluster IPIs and the APIC-access MSRs reach the same interrupt
// controller the emulated devices use (docs/architecture.md "Interrupts").
#pragma once

#include "mmu/base/types.h"

class ApicPort {
public:
    virtual ~ApicPort() = default;

    // Sets `vector` in the IRR of VP `vp` as a fixed, edge-triggered
    // interrupt. With `auto_eoi` the APIC performs the EOI itself when the
    // CPU acknowledges the vector (TLFS 11.8.6 AutoEOI), so the ISR bit never
    // stays set. A software-disabled APIC drops it (TLFS 11.2.1).
    virtual void raise_vector(unsigned vp, u8 vector, bool auto_eoi) = 0;
    // The SynIC's AutoEOI vectors of VP `vp` changed: `vector` is (or is no
    // longer) the vector of an unmasked AutoEOI SINT. For an APIC that keeps
    // AutoEOI per vector (as platform/'s LocalApic::set_auto_eoi does), not
    // per interrupt; called again for every such vector after a state load.
    virtual void set_auto_eoi(unsigned /*vp*/, u8 /*vector*/, bool /*enabled*/) {}

    // The APIC-access MSRs (TLFS 10.2.3): an EOI write, the 64-bit ICR
    // (high dword = destination field, as in xAPIC ICR_HIGH), the TPR.
    virtual void write_eoi(unsigned vp) = 0;
    virtual u64 read_icr(unsigned vp) = 0;
    virtual void write_icr(unsigned vp, u64 value) = 0;
    virtual u8 read_tpr(unsigned vp) = 0;
    virtual void write_tpr(unsigned vp, u8 value) = 0;
};
