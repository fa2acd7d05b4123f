// The Hyper-V partition interface of one machine (docs/architecture.md "paravirt/"):
// CPUID leaves, synthetic MSRs, the hypercall dispatcher, a SynIC and four
// synthetic timers per virtual processor, the reference time and TSC page,
// and the host side of the connection table. It reaches the vCPUs only
// through what the machine wires to it: the CPUID model, one MSR bus per
// vCPU, the hypercall handler and the ApicPort, so the interpreter and a
// hardware-assisted backend share it unchanged. docs/hyperv.md describes
// the wiring.
#pragma once

#include "mmu/guest_memory.h"
#include "cpu/state/cpu_state.h"
#include "cpu/state/cpuid_model.h"
#include "mmu/bus/msr_bus.h"
#include "mmu/base/state_visitor.h"
#include "paravirt/apic_port.h"
#include "paravirt/hv_connections.h"
#include "paravirt/hv_cpuid.h"
#include "paravirt/hv_msrs.h"
#include "paravirt/hypercall.h"
#include "paravirt/reference_time.h"
#include "paravirt/stimer.h"
#include "paravirt/synic.h"

#include <functional>
#include <memory>
#include <optional>
#include <vector>

class VirtualClock;

class HyperV {
public:
    HyperV(const HvConfig& config, GuestMemory memory, VirtualClock& clock, ApicPort& apic);
    HyperV(const HyperV&) = delete;
    HyperV& operator=(const HyperV&) = delete;

    const HvConfig& config() const { return m_config; }
    const HvFeatures& features() const { return m_features; }

    // ---- Wiring (all no-ops when the config is disabled) ----
    void install_cpuid(CpuidModel& cpuid) const { install_hv_cpuid(cpuid, m_config); }
    // Claims the synthetic MSR block on `bus`; an access reaches the VP the
    // bus names (read_msr/write_msr below).
    void map_msrs(MsrBus& bus);

    // What the guest asks of the machine.
    using CrashHandler = std::function<void(const HvCrashReport&)>;
    void set_crash_handler(CrashHandler handler) { m_crash = std::move(handler); }
    void set_reset_handler(std::function<void()> handler) { m_reset = std::move(handler); }
    // Reading HV_X64_MSR_GUEST_IDLE: the VP should halt until an interrupt
    // arrives, even a masked one (TLFS 7.5). Returning at once is allowed.
    void set_guest_idle_handler(std::function<void(unsigned vp)> handler)
    {
        m_guest_idle = std::move(handler);
    }
    // Nanoseconds VP `vp` has run (HV_X64_MSR_VP_RUNTIME); default: the
    // partition's whole lifetime.
    void set_vp_runtime_source(std::function<u64(unsigned vp)> source)
    {
        m_vp_runtime = std::move(source);
    }
    void set_tlb_flush_handler(HypercallDispatcher::FlushHandler handler)
    {
        m_hypercalls.set_flush_handler(std::move(handler));
    }
    void set_spin_wait_handler(HypercallDispatcher::SpinWaitHandler handler)
    {
        m_hypercalls.set_spin_wait_handler(std::move(handler));
    }

    // ---- Entry points ----
    std::optional<u64> read_msr(unsigned vp, u32 index);
    bool write_msr(unsigned vp, u32 index, u64 value);
    // VMCALL/VMMCALL from CPL 0 in protected mode. InvalidOpcode: raise #UD
    // (also while the hypercall page is disabled); Continue: leave RIP on the
    // instruction so the guest re-executes it.
    HypercallResult::Kind hypercall(unsigned vp, CpuState& regs);
    // The LAPIC of `vp` retired `vector` (EOI write or AutoEOI).
    void apic_eoi(unsigned vp, u8 vector) { m_vps[vp]->synic.apic_eoi(vector); }

    // The partition TSC every vCPU's TSC source must return, and the
    // reference counter in 100 ns units.
    u64 tsc_now() const { return m_time.tsc_now(); }
    u64 reference_time() const { return m_time.now(); }
    const ReferenceTime& time() const { return m_time; }

    // False writes TscSequence 0 so the guest falls back to the reference
    // counter MSR (TLFS 12.7.3.3); true publishes scale and offset again with
    // a new sequence number. For backends that cannot keep the TSC invariant.
    void set_reference_tsc_usable(bool usable);

    // ---- Host side (the VMBus host) ----
    HvConnections& connections() { return m_connections; }
    Synic& synic(unsigned vp) { return m_vps[vp]->synic; }
    SyntheticTimers& stimers(unsigned vp) { return m_vps[vp]->stimers; }
    const HvPartitionRegisters& partition_registers() const { return m_partition; }
    // Called when a SINT slot of VP `vp` may have emptied: a host sender
    // whose messages the SynIC queue refused (InsufficientBuffers) retries.
    void set_host_slot_listener(std::function<void(unsigned vp, unsigned sint)> listener)
    {
        m_host_slot_listener = std::move(listener);
    }

    // System reset: every register back to its power-on value.
    void reset();
    void visit_state(StateVisitor& v);

private:
    struct Vp {
        Vp(unsigned index, GuestMemory memory, VirtualClock& clock, const ReferenceTime& time,
           ApicPort& apic, bool direct_timers);
        Synic synic;
        SyntheticTimers stimers;
        u64 vp_assist_page = 0;
    };

    std::optional<u64> read_partition_msr(u32 index);
    bool write_partition_msr(unsigned vp, u32 index, u64 value);
    bool write_hypercall_msr(u64 value);
    // The instruction bytes the hypercall page starts with, and its RET.
    std::vector<u8> hypercall_sequence() const;
    bool write_reference_tsc_msr(u64 value);
    bool write_reference_tsc_page();
    bool write_crash_ctl(unsigned vp, u64 value);
    bool msr_allowed(u32 index) const;

    HvConfig m_config;
    HvFeatures m_features;
    GuestMemory m_memory;
    ApicPort& m_apic;
    ReferenceTime m_time;
    HvConnections m_connections;
    HypercallDispatcher m_hypercalls;
    std::vector<std::unique_ptr<Vp>> m_vps;
    HvPartitionRegisters m_partition;
    bool m_tsc_page_usable = true;

    CrashHandler m_crash;
    std::function<void()> m_reset;
    std::function<void(unsigned)> m_guest_idle;
    std::function<u64(unsigned)> m_vp_runtime;
    std::function<void(unsigned, unsigned)> m_host_slot_listener;
};
