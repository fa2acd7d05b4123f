// The model-specific registers only the AMD model has, as Linux programs
// them at boot on a family 17h processor (APM Vol 2 Appendix A; AMD's PPR
// for family 17h): the hardware configuration register, the northbridge
// configuration register, and the four legacy performance counters with
// their event selects. The counters hold what is written to them but never
// count: the machine models no performance events.
#pragma once

#include "cpu/state/cpu_state.h"

#include <optional>

namespace amd_msr {

constexpr u32 MSR_PERF_CTL0 = 0xC0010000; // PerfEvtSel0-3, then PerfCtr0-3 at 0xC0010004
constexpr u32 MSR_PERF_CTR0 = 0xC0010004;
constexpr u32 MSR_HWCR = 0xC0010015;
constexpr u32 MSR_NB_CFG = 0xC001001F;

// HWCR bit 24, TscFreqSel: the TSC counts at the P0 frequency. Read-only
// one; without it Linux reports "TSC doesn't count with P0 frequency".
constexpr u64 HWCR_TSC_FREQ_SEL = 1ull << 24;
constexpr u64 PERF_CTR_MASK = (1ull << 48) - 1; // the counters are 48 bits wide

// std::nullopt: not one of these MSRs. true: done (AMD's registers raise no
// #GP for any value written: their reserved bits are ignored).
std::optional<bool> read(const AmdMsrState& m, u32 index, u64& value);
std::optional<bool> write(AmdMsrState& m, u32 index, u64 value);

} // namespace amd_msr
