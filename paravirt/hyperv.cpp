#include "paravirt/hyperv.h"

#include "paravirt/synic.h"

HyperV::Vp::Vp(unsigned index, GuestMemory memory, VirtualClock& clock,
               const ReferenceTime& time, ApicPort& apic, bool direct_timers)
    : synic(index, memory, apic), stimers(index, clock, time, synic, apic, direct_timers)
{
}

HyperV::HyperV(const HvConfig& config, GuestMemory memory, VirtualClock& clock, ApicPort& apic)
    : m_config(config), m_features(HvFeatures::from(config)), m_memory(memory), m_apic(apic),
      m_time(clock, config.tsc_frequency_hz), m_hypercalls(m_config, memory, apic, m_connections)
{
    for (unsigned i = 0; i < m_config.vp_count; ++i) {
        m_vps.push_back(
            std::make_unique<Vp>(i, memory, clock, m_time, apic, m_config.direct_stimers));
        // A freed slot goes to the timers first (their messages have a
        // buffer of their own), then to the host's message sources.
        Vp* vp = m_vps.back().get();
        vp->synic.set_slot_listener([this, vp, i](unsigned sint) {
            vp->stimers.slot_freed(sint);
            if (m_host_slot_listener)
                m_host_slot_listener(i, sint);
        });
    }
}

void HyperV::map_msrs(MsrBus& bus)
{
    if (!m_config.enabled)
        return;
    // The VP index is the vCPU index (the machine numbers both from 0).
    bus.map(
        HV_X64_MSR_FIRST, HV_X64_MSR_COUNT,
        [this](unsigned vp, u32 index) { return read_msr(vp, index); },
        [this](unsigned vp, u32 index, u64 value) { return write_msr(vp, index, value); });
}

HypercallResult::Kind HyperV::hypercall(unsigned vp, CpuState& regs)
{
    // Without an enabled hypercall page there is no hypercall interface
    // (TLFS 3.13): the instruction is as undefined as on bare hardware.
    if (!m_config.enabled || vp >= m_vps.size() || !(m_partition.hypercall & HV_HYPERCALL_ENABLE))
        return HypercallResult::Kind::InvalidOpcode;
    return m_hypercalls.dispatch(vp, regs);
}

void HyperV::reset()
{
    m_partition = HvPartitionRegisters{};
    m_tsc_page_usable = true;
    for (auto& vp : m_vps) {
        vp->synic.reset();
        vp->stimers.reset();
        vp->vp_assist_page = 0;
    }
}

void HyperV::visit_state(StateVisitor& v)
{
    v.section("hyperv", 1);
    m_partition.visit_state(v);
    v.field("tsc_page_usable", m_tsc_page_usable);
    u32 vps = static_cast<u32>(m_vps.size());
    v.field("vp_count", vps);
    if (v.loading() && v.ok() && vps != m_vps.size())
        return v.fail("the snapshot's Hyper-V partition has " + std::to_string(vps) + " VPs, this one " +
                      std::to_string(m_vps.size()));
    for (auto& vp : m_vps) {
        v.field("vp_assist_page", vp->vp_assist_page);
        vp->synic.visit_state(v);
        vp->stimers.visit_state(v);
    }
}
