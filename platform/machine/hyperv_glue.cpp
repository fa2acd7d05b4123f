#include "platform/machine/hyperv_glue.h"

#include "platform/interrupts/local_apic.h"

#include <algorithm>

namespace {

// A ranged flush longer than this many pages drops the whole TLB instead:
// each invalidate_page scans the soft TLB, a full flush only costs refills.
constexpr u64 MAX_PAGES_FLUSHED_ONE_BY_ONE = 32;

} // namespace

HypervGlue::HypervGlue(const HvConfig& config, PhysicalMemory& memory, VirtualClock& clock,
                       CpuidModel& cpuid)
    : m_apics(config.vp_count, nullptr), m_vcpus(config.vp_count, nullptr)
{
    if (!config.enabled)
        return;
    ApicPort& port = *this;
    m_hv = std::make_unique<HyperV>(config, memory, clock, port);
    m_hv->install_cpuid(cpuid);
    m_hv->set_tlb_flush_handler(
        [this](unsigned vp, const TlbFlushRequest& request) { flush_tlb(vp, request); });
}

void HypervGlue::attach_vcpu(unsigned vp, VcpuBackend& vcpu, LocalApic& lapic, MsrBus& msrs)
{
    if (!enabled() || vp >= m_apics.size())
        return;
    m_apics[vp] = &lapic;
    m_vcpus[vp] = &vcpu;

    // One TSC for RDTSC, the LAPIC's TSC-deadline timer, the reference TSC
    // page and HV_X64_MSR_TIME_REF_COUNT, all from the VirtualClock.
    vcpu.set_tsc_source([this] { return m_hv->tsc_now(); });
    lapic.set_tsc([&vcpu] { return vcpu.read_tsc(); }, m_hv->time().tsc_hz());
    lapic.set_eoi_handler([this, vp](u8 vector) { m_hv->apic_eoi(vp, vector); });

    vcpu.set_hypercall_hook([this, vp](CpuState& registers) {
        switch (m_hv->hypercall(vp, registers)) {
        case HypercallResult::Kind::Completed:
            return HypercallOutcome::Completed;
        case HypercallResult::Kind::Continue:
            return HypercallOutcome::Repeat; // with the new rep start index
        case HypercallResult::Kind::InvalidOpcode:
            return HypercallOutcome::InvalidOpcode;
        }
        return HypercallOutcome::Completed;
    });

    // One bus may serve every vCPU: it names the VP of each access.
    if (std::find(m_mapped_buses.begin(), m_mapped_buses.end(), &msrs) != m_mapped_buses.end())
        return;
    m_mapped_buses.push_back(&msrs);
    m_hv->map_msrs(msrs);
}

void HypervGlue::set_crash_handler(std::function<void(const HvCrashReport&)> on_crash)
{
    if (!m_hv)
        return;
    m_hv->set_crash_handler(std::move(on_crash));
}

void HypervGlue::flush_tlb(unsigned vp, const TlbFlushRequest& request)
{
    VcpuBackend* vcpu = vp < m_vcpus.size() ? m_vcpus[vp] : nullptr;
    if (!vcpu)
        return;
    u64 pages = 0;
    for (const GvaRange& range : request.ranges)
        pages += range.pages;
    if (request.ranges.empty() || pages > MAX_PAGES_FLUSHED_ONE_BY_ONE) {
        // A ranged flush may name global pages; only a whole-space flush
        // can be limited to non-global ones.
        vcpu->flush_tlb(request.ranges.empty() ? !request.non_global_only : true);
        return;
    }
    for (const GvaRange& range : request.ranges)
        for (u64 page = 0; page < range.pages; ++page)
            vcpu->invalidate_page(range.base + (page << 12));
}

// ---- ApicPort ----

void HypervGlue::raise_vector(unsigned vp, u8 vector, bool /*auto_eoi*/)
{
    // AutoEOI is per vector in LocalApic (set_auto_eoi below), not per
    // message, so the flag needs no passing on.
    if (LocalApic* a = apic(vp)) {
        ApicMessage message;
        message.vector = vector;
        message.mode = ApicDeliveryMode::Fixed;
        a->accept(message);
    }
}

void HypervGlue::set_auto_eoi(unsigned vp, u8 vector, bool enabled)
{
    if (LocalApic* a = apic(vp))
        a->set_auto_eoi(vector, enabled);
}

void HypervGlue::write_eoi(unsigned vp)
{
    if (LocalApic* a = apic(vp))
        a->end_of_interrupt();
}

u64 HypervGlue::read_icr(unsigned vp)
{
    LocalApic* a = apic(vp);
    return a ? a->icr() : 0;
}

void HypervGlue::write_icr(unsigned vp, u64 value)
{
    if (LocalApic* a = apic(vp))
        a->write_icr(value);
}

u8 HypervGlue::read_tpr(unsigned vp)
{
    LocalApic* a = apic(vp);
    return a ? a->task_priority() : 0;
}

void HypervGlue::write_tpr(unsigned vp, u8 value)
{
    if (LocalApic* a = apic(vp))
        a->set_task_priority(value);
}
