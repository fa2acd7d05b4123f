// What the partition offers (HvConfig) and how the guest learns it: the
// Microsoft hypervisor CPUID leaves 0x40000000-0x40000006 (TLFS 2.4). Every
// feature bit that is set is implemented in paravirt/; HvConfig switches
// groups off (the frontend's --enlightenments off clears `enabled`, and
// then no leaf, MSR or hypercall exists at all).
#pragma once

#include "cpu/state/cpuid_model.h"
#include "paravirt/tlfs.h"

enum class HypercallInstruction : u8 {
    Vmcall,  // 0F 01 C1, Intel VMX (and the interpreter)
    Vmmcall, // 0F 01 D9, AMD SVM
    // E6 ib, OUT imm8 AL to HvConfig::hypercall_port: for a backend that
    // never sees VMCALL/VMMCALL (KVM answers them itself) but sees every
    // port write. The instruction changes no register, so the ABI holds.
    PortOut,
};

struct HvConfig {
    bool enabled = true;
    unsigned vp_count = 1;
    // Partition TSC rate (above 10 MHz). The machine must feed each vCPU's TSC
    // from ReferenceTime::tsc_now(), which runs at this rate.
    u64 tsc_frequency_hz = 1'000'000'000;
    // What the LAPIC timer counts at before its divider (HV_X64_MSR_APIC_FREQUENCY).
    u64 apic_frequency_hz = 1'000'000'000;
    // The instruction the hypercall page is filled with.
    HypercallInstruction hypercall_instruction = HypercallInstruction::Vmcall;
    u8 hypercall_port = 0; // PortOut's port

    // Groups the machine may withhold when it cannot back them.
    bool apic_access_msrs = true; // EOI/ICR/TPR MSRs and the VP assist page
    bool direct_stimers = true;   // synthetic timers in direct mode
    bool xmm_fast_hypercalls = true;
    bool tlb_flush_hypercalls = true; // needs a TLB flush handler
    bool cluster_ipi_hypercalls = true;
    bool crash_msrs = true;
    bool guest_idle_msr = true;
    bool recommend_reset_msr = false; // hint only; the MSR is always there
    // Spinlock attempts before HvCallNotifyLongSpinWait (0xFFFFFFFF: never).
    u32 spin_retry_count = 0xFFF;
    // Reps a rep hypercall processes before it returns to the guest to be
    // re-executed from its new start index (TLFS 3.3 continuation), which
    // lets interrupts in between long flushes, as on Hyper-V.
    unsigned rep_batch = 64;
};

// The features derived from a config: CPUID 0x40000003 and 0x40000004.
struct HvFeatures {
    u64 privileges = 0; // HV_PARTITION_PRIVILEGE_MASK
    u32 features_edx = 0;
    u32 hints = 0;

    static HvFeatures from(const HvConfig& config);
    bool has(u64 privilege) const { return (privileges & privilege) == privilege; }
};

// Answers a leaf in 0x40000000-0x4FFFFFFF (zeros past the maximum leaf).
CpuidResult hv_cpuid_leaf(const HvConfig& config, u32 leaf);
// Makes `cpuid` answer the hypervisor range (and report the hypervisor-present
// bit in leaf 1); does nothing when the config is disabled.
void install_hv_cpuid(CpuidModel& cpuid, const HvConfig& config);
