// The hypercall dispatcher (TLFS 3): decodes the hypercall input value,
// gathers the input block through the memory ("slow"), register ("fast")
// or XMM-register convention, checks it the way the TLFS lists the status
// codes, runs the call and writes the result value back. Rep hypercalls
// process at most HvConfig::rep_batch elements per entry and otherwise
// return with the new start index for the guest to re-execute (TLFS 3.3).
// Guest memory is only read through GuestMemory's checked copies: a bad
// GPA is a status code, never a host fault.
#pragma once

#include "mmu/guest_memory.h"
#include "cpu/state/cpu_state.h"
#include "paravirt/apic_port.h"
#include "paravirt/hv_connections.h"
#include "paravirt/hv_cpuid.h"

#include <array>
#include <functional>
#include <span>


// A range of guest virtual pages: `pages` pages starting at `base` (TLFS 9.4,
// the low 12 bits of a GVA list entry give the additional page count).
struct GvaRange {
    u64 base = 0;
    u64 pages = 0;
};

// What one VP has to forget. With no ranges the whole address space goes
// (only non-global mappings when `non_global_only`); with ranges, exactly
// those pages (INVLPG semantics, large pages included).
struct TlbFlushRequest {
    u64 address_space = 0;
    bool all_address_spaces = false;
    bool non_global_only = false;
    std::span<const GvaRange> ranges;
};

// The register view of a call, independent of 32- or 64-bit conventions.
struct HypercallRegisters {
    u64 control = 0;           // hypercall input value
    u64 input = 0;             // input GPA, or the first fast parameter
    u64 output = 0;            // output GPA, or the second fast parameter
    std::array<u64, 12> xmm{}; // XMM0..XMM5, low then high quadword
};

struct HypercallResult {
    enum class Kind : u8 {
        Completed,     // `value` is the hypercall result value
        Continue,      // `value` is the control word with the new rep start index;
                       // the guest re-executes the hypercall instruction
        InvalidOpcode, // #UD (XMM input used but not offered)
    };
    Kind kind = Kind::Completed;
    u64 value = 0;

    HvStatus status() const { return static_cast<HvStatus>(value & 0xFFFF); }
    u64 reps_completed() const { return (value >> HV_HYPERCALL_REPS_COMPLETED_SHIFT) & 0xFFF; }
};

class HypercallDispatcher {
public:
    using FlushHandler = std::function<void(unsigned vp, const TlbFlushRequest&)>;
    using SpinWaitHandler = std::function<void(unsigned vp, u32 spin_count)>;

    HypercallDispatcher(const HvConfig& config, GuestMemory memory, ApicPort& apic,
                        HvConnections& connections);

    // Called once per target VP of a TLB flush hypercall, before it returns.
    void set_flush_handler(FlushHandler handler) { m_flush = std::move(handler); }
    void set_spin_wait_handler(SpinWaitHandler handler) { m_spin_wait = std::move(handler); }

    // Runs the call `regs` describes for the caller `vp`.
    HypercallResult execute(unsigned vp, const HypercallRegisters& regs);

    // Register conventions (TLFS 3.7): RCX/RDX/R8 for a 64-bit caller
    // (EFER.LMA and CS.L), EDX:EAX/EBX:ECX/EDI:ESI otherwise; XMM0-5 for XMM
    // fast input. The result goes to RAX (EDX:EAX); a continuation rewrites
    // RCX (EDX:EAX) with the new rep start index instead and returns
    // Continue, and the caller leaves RIP on the hypercall instruction.
    HypercallResult::Kind dispatch(unsigned vp, CpuState& regs);

private:
    struct Call;
    struct VpSet;
    struct Outcome {
        HvStatus status = HvStatus::Success;
        u32 reps_completed = 0;
    };
    Outcome flush_space(unsigned vp, const Call& call, std::span<const u8> in, bool ex);
    Outcome flush_list(unsigned vp, const Call& call, std::span<const u8> in, bool ex);
    Outcome send_ipi(const Call& call, std::span<const u8> in, bool ex);
    Outcome post_message(unsigned vp, std::span<const u8> in);
    Outcome signal_event(unsigned vp, std::span<const u8> in);
    Outcome spin_wait(unsigned vp, std::span<const u8> in);
    void flush_targets(const VpSet& set, const TlbFlushRequest& request);

    const HvConfig& m_config;
    HvFeatures m_features;
    GuestMemory m_memory;
    ApicPort& m_apic;
    HvConnections& m_connections;
    FlushHandler m_flush;
    SpinWaitHandler m_spin_wait;
};
