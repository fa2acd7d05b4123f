// Joins paravirt/'s HyperV to the machine's vCPUs (docs/hyperv.md "Wiring
// it into the Machine"): the CPUID leaves, the synthetic MSRs on the MSR
// bus, and for each vCPU its TSC, its hypercall entry (VMCALL) and its local
// APIC, which the enlightenments reach through this object's ApicPort.
//
// The machine owns one HypervGlue, creates it after RAM, the clock and the
// board, and calls attach_vcpu() once per vCPU. With the config disabled
// (--enlightenments off) nothing is installed: no hypervisor CPUID bit or
// leaves, every synthetic MSR #GP, VMCALL #UD.
#pragma once

#include "accel/vcpu_backend.h"
#include "paravirt/hyperv.h"

#include <functional>
#include <memory>
#include <vector>

class LocalApic;

class HypervGlue final : private ApicPort {
public:
    // VP n is vCPU n: the synthetic MSRs reach the VP the MSR bus names.
    HypervGlue(const HvConfig& config, PhysicalMemory& memory, VirtualClock& clock,
               CpuidModel& cpuid);
    HypervGlue(const HypervGlue&) = delete;
    HypervGlue& operator=(const HypervGlue&) = delete;

    bool enabled() const { return m_hv != nullptr; }
    // Only when enabled.
    HyperV& hv() { return *m_hv; }

    // Wires VP `vp` (0 .. vp_count-1): its TSC becomes the partition TSC
    // (the one the reference TSC page describes), its LAPIC delivers SynIC
    // and timer vectors and reports EOIs back, VMCALL enters the hypercall
    // dispatcher, and the synthetic MSRs are claimed on `msrs` (once per bus).
    void attach_vcpu(unsigned vp, VcpuBackend& vcpu, LocalApic& lapic, MsrBus& msrs);

    // The guest's crash notification (HV_X64_MSR_CRASH_CTL).
    void set_crash_handler(std::function<void(const HvCrashReport&)> on_crash);

private:
    // ApicPort over platform/'s LocalApic, addressed by VP index.
    void raise_vector(unsigned vp, u8 vector, bool auto_eoi) override;
    void set_auto_eoi(unsigned vp, u8 vector, bool enabled) override;
    void write_eoi(unsigned vp) override;
    u64 read_icr(unsigned vp) override;
    void write_icr(unsigned vp, u64 value) override;
    u8 read_tpr(unsigned vp) override;
    void write_tpr(unsigned vp, u8 value) override;
    LocalApic* apic(unsigned vp) const { return vp < m_apics.size() ? m_apics[vp] : nullptr; }

    void flush_tlb(unsigned vp, const TlbFlushRequest& request);

    std::vector<LocalApic*> m_apics; // by VP index; filled by attach_vcpu
    std::vector<VcpuBackend*> m_vcpus;
    std::vector<const MsrBus*> m_mapped_buses;
    // Null with the enlightenments off: no partition exists at all (no
    // timers on the clock, nothing on any bus).
    std::unique_ptr<HyperV> m_hv; // after m_apics: its SynICs announce AutoEOI vectors
};

