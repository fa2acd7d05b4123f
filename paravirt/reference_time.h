// The partition's time base (TLFS 12.4, 12.7): a TSC that runs at a fixed
// frequency on the VirtualClock, and the reference counter in 100 ns units
// derived from it with the reference TSC page's own formula
//     ReferenceTime = ((Tsc * TscScale) >> 64) + TscOffset
// so that HV_X64_MSR_TIME_REF_COUNT, the TSC page and the synthetic timers
// agree to the tick. The machine makes every vCPU's TSC source tsc_now()
// (Cpu::set_tsc_source), which keeps all of them on the VirtualClock and
// therefore deterministic in deterministic mode.
#pragma once

#include "mmu/base/types.h"

class VirtualClock;

class ReferenceTime {
public:
    // `tsc_hz` must exceed 10 MHz (the scale must stay below 2^64).
    ReferenceTime(const VirtualClock& clock, u64 tsc_hz);

    u64 tsc_hz() const { return m_tsc_hz; }
    u64 scale() const { return m_scale; }
    i64 offset() const { return m_offset; }

    // The partition TSC (before any per-vCPU IA32_TSC offset).
    u64 tsc_now() const;
    u64 tsc_at(u64 clock_ns) const;
    // The reference counter now, and for a given TSC value.
    u64 now() const { return from_tsc(tsc_now()); }
    u64 from_tsc(u64 tsc) const;
    // The earliest VirtualClock time (ns) at which now() >= `reference`.
    u64 clock_ns_when(u64 reference) const;

private:
    const VirtualClock& m_clock;
    u64 m_tsc_hz;
    u64 m_scale;
    i64 m_offset = 0;
};
