#include "cpu/system/amd_msrs.h"

namespace amd_msr {

std::optional<bool> read(const AmdMsrState& m, u32 index, u64& value)
{
    if (index >= MSR_PERF_CTL0 && index < MSR_PERF_CTR0) {
        value = m.perf_ctl[index - MSR_PERF_CTL0];
        return true;
    }
    if (index >= MSR_PERF_CTR0 && index < MSR_PERF_CTR0 + 4) {
        value = m.perf_ctr[index - MSR_PERF_CTR0];
        return true;
    }
    switch (index) {
    case MSR_HWCR: value = m.hwcr | HWCR_TSC_FREQ_SEL; return true;
    case MSR_NB_CFG: value = m.nb_cfg; return true;
    default: return std::nullopt;
    }
}

std::optional<bool> write(AmdMsrState& m, u32 index, u64 value)
{
    if (index >= MSR_PERF_CTL0 && index < MSR_PERF_CTR0) {
        m.perf_ctl[index - MSR_PERF_CTL0] = value;
        return true;
    }
    if (index >= MSR_PERF_CTR0 && index < MSR_PERF_CTR0 + 4) {
        m.perf_ctr[index - MSR_PERF_CTR0] = value & PERF_CTR_MASK;
        return true;
    }
    switch (index) {
    case MSR_HWCR: m.hwcr = value; return true;
    case MSR_NB_CFG: m.nb_cfg = value; return true;
    default: return std::nullopt;
    }
}

} // namespace amd_msr
