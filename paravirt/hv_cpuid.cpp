#include "paravirt/hv_cpuid.h"

#include <cstring>

namespace {

constexpr u32 MAX_LEAF = HV_CPUID_HARDWARE_FEATURES;
// 0x40000002: the Windows Server 2016 hypervisor level (build 14393, 10.0),
// whose interface (cluster IPIs, Ex processor masks, direct timers) is what
// is offered here.
constexpr u32 BUILD_NUMBER = 14393;
constexpr u32 VERSION = (10u << 16) | 0u;
// 0x40000005 limits: VP indices a sparse VP set can name; logical processors.
constexpr u32 MAX_VPS = HV_MAX_SPARSE_BANKS * 64;
constexpr u32 MAX_LPS = 64;

u32 chars(const char* s)
{
    u32 v;
    std::memcpy(&v, s, 4);
    return v;
}

} // namespace

HvFeatures HvFeatures::from(const HvConfig& c)
{
    using namespace hv_privilege;
    HvFeatures f;
    if (!c.enabled)
        return f;
    f.privileges = ACCESS_VP_RUNTIME_REG | ACCESS_PARTITION_REFERENCE_COUNTER | ACCESS_SYNIC_REGS |
                   ACCESS_SYNTHETIC_TIMER_REGS | ACCESS_HYPERCALL_MSRS | ACCESS_VP_INDEX |
                   ACCESS_RESET_REG | ACCESS_PARTITION_REFERENCE_TSC | ACCESS_FREQUENCY_REGS |
                   POST_MESSAGES | SIGNAL_EVENTS;
    if (c.apic_access_msrs)
        f.privileges |= ACCESS_INTR_CTRL_REGS;
    if (c.guest_idle_msr)
        f.privileges |= ACCESS_GUEST_IDLE_REG;

    f.features_edx = hv_feature_edx::FREQUENCY_REGS | hv_feature_edx::SINT_POLLING_MODE |
                     hv_feature_edx::HYPERCALL_MSR_LOCK;
    if (c.xmm_fast_hypercalls)
        f.features_edx |= hv_feature_edx::XMM_HYPERCALL_INPUT;
    if (c.guest_idle_msr)
        f.features_edx |= hv_feature_edx::GUEST_IDLE_STATE;
    if (c.crash_msrs)
        f.features_edx |= hv_feature_edx::GUEST_CRASH_MSRS;
    if (c.direct_stimers)
        f.features_edx |= hv_feature_edx::DIRECT_SYNTHETIC_TIMERS;

    // An interpreter is slow: watchdogs should not count on timely interrupts.
    // AutoEOI works but a plain EOI costs nothing extra here, so guests are
    // told to prefer it (fewer LAPIC paths to trust).
    f.hints = hv_hint::RELAXED_TIMING | hv_hint::DEPRECATE_AUTO_EOI;
    if (c.apic_access_msrs)
        f.hints |= hv_hint::APIC_ACCESS_MSRS;
    if (c.tlb_flush_hypercalls)
        f.hints |= hv_hint::REMOTE_TLB_FLUSH;
    if (c.cluster_ipi_hypercalls)
        f.hints |= hv_hint::CLUSTER_IPI;
    if (c.tlb_flush_hypercalls || c.cluster_ipi_hypercalls)
        f.hints |= hv_hint::EX_PROCESSOR_MASKS;
    if (c.recommend_reset_msr)
        f.hints |= hv_hint::SYSTEM_RESET_MSR;
    return f;
}

CpuidResult hv_cpuid_leaf(const HvConfig& config, u32 leaf)
{
    CpuidResult r;
    if (!config.enabled)
        return r;
    const HvFeatures f = HvFeatures::from(config);
    switch (leaf) {
    case HV_CPUID_VENDOR_AND_MAX_FUNCTIONS:
        r.eax = MAX_LEAF;
        r.ebx = chars("Micr");
        r.ecx = chars("osof");
        r.edx = chars("t Hv");
        break;
    case HV_CPUID_INTERFACE:
        r.eax = HV_CPUID_INTERFACE_SIGNATURE;
        break;
    case HV_CPUID_VERSION:
        r.eax = BUILD_NUMBER;
        r.ebx = VERSION;
        break;
    case HV_CPUID_FEATURES:
        r.eax = static_cast<u32>(f.privileges);
        r.ebx = static_cast<u32>(f.privileges >> 32);
        r.edx = f.features_edx;
        break;
    case HV_CPUID_ENLIGHTENMENT_INFO:
        r.eax = f.hints;
        r.ebx = config.spin_retry_count;
        break;
    case HV_CPUID_IMPLEMENTATION_LIMITS:
        r.eax = MAX_VPS;
        r.ebx = MAX_LPS;
        break;
    case HV_CPUID_HARDWARE_FEATURES:
        break; // no hardware assist is "in use" by the interpreter
    default:
        break;
    }
    return r;
}

void install_hv_cpuid(CpuidModel& cpuid, const HvConfig& config)
{
    if (!config.enabled)
        return;
    cpuid.set_hypervisor_leaves(
        [config](u32 leaf, u32, unsigned) { return hv_cpuid_leaf(config, leaf); });
}
