// The partition-wide synthetic registers (TLFS 2.6, 3.13, 4.3, 12.7) and the
// crash report the guest crash MSRs produce. The per-VP registers live with
// their owners (Synic, SyntheticTimers, HyperV::Vp); HyperV's MSR methods in
// hv_msrs.cpp decode the whole synthetic MSR block.
#pragma once

#include "mmu/base/state_visitor.h"

#include <array>
#include <optional>
#include <string>

struct HvPartitionRegisters {
    u64 guest_os_id = 0;
    u64 hypercall = 0;
    u64 reference_tsc = 0;
    u32 tsc_sequence = 0; // last TscSequence published (never 0 or ~0)
    std::array<u64, 5> crash_params{};

    void visit_state(StateVisitor& v)
    {
        v.field("guest_os_id", guest_os_id);
        v.field("hypercall", hypercall);
        v.field("reference_tsc", reference_tsc);
        v.field("tsc_sequence", tsc_sequence);
        v.field("crash_params", crash_params);
    }
};

// A guest crash notification (HV_X64_MSR_CRASH_CTL with CrashNotify): the
// five parameter MSRs and, with CrashMessage, the message P3/P4 point at.
struct HvCrashReport {
    unsigned vp = 0;
    std::array<u64, 5> params{};
    std::optional<std::string> message;
};
