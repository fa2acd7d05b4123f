#include "frontend/hyperv_glue.h"

#include "cpu/cpu.h"
#include "platform/local_apic.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace {

// A ranged flush longer than this many pages drops the whole TLB instead:
// each invalidate_page scans the soft TLB, a full flush only costs refills.
constexpr u64 MAX_PAGES_FLUSHED_ONE_BY_ONE = 32;

} // namespace

HypervGlue::HypervGlue(const HvConfig& config, PhysicalMemory& memory, VirtualClock& clock,
                       CpuidModel& cpuid, std::function<unsigned()> current_vp)
    : m_apics(config.vp_count, nullptr), m_cpus(config.vp_count, nullptr),
      m_current_vp(std::move(current_vp))
{
    if (!config.enabled)
        return;
    ApicPort& port = *this;
    m_hv = std::make_unique<HyperV>(config, memory, clock, port);
    m_hv->install_cpuid(cpuid);
    m_hv->set_tlb_flush_handler(
        [this](unsigned vp, const TlbFlushRequest& request) { flush_tlb(vp, request); });
    set_crash_handler({});
}

void HypervGlue::attach_vcpu(unsigned vp, Cpu& cpu, LocalApic& lapic, MsrBus& msrs)
{
    if (!enabled() || vp >= m_apics.size())
        return;
    m_apics[vp] = &lapic;
    m_cpus[vp] = &cpu;

    // One TSC for RDTSC, the LAPIC's TSC-deadline timer, the reference TSC
    // page and HV_X64_MSR_TIME_REF_COUNT, all from the VirtualClock.
    cpu.set_tsc_source([this] { return m_hv->tsc_now(); });
    lapic.set_tsc([&cpu] { return cpu.read_tsc(); }, m_hv->time().tsc_hz());
    lapic.set_eoi_handler([this, vp](u8 vector) { m_hv->apic_eoi(vp, vector); });

    cpu.set_hypercall_handler([this, vp](Cpu& c) {
        switch (m_hv->hypercall(vp, c.s)) {
        case HypercallResult::Kind::Completed:
            return true;
        case HypercallResult::Kind::Continue:
            c.next_rip = c.s.rip; // re-execute with the new rep start index
            return true;
        case HypercallResult::Kind::InvalidOpcode:
            return c.raise_ud();
        }
        return true;
    });

    if (std::find(m_mapped_buses.begin(), m_mapped_buses.end(), &msrs) != m_mapped_buses.end())
        return;
    m_mapped_buses.push_back(&msrs);
    msrs.map(
        HV_X64_MSR_FIRST, HV_X64_MSR_COUNT,
        [this](u32 index) { return m_hv->read_msr(m_current_vp(), index); },
        [this](u32 index, u64 value) { return m_hv->write_msr(m_current_vp(), index, value); });
}

void HypervGlue::set_crash_handler(std::function<void(const HvCrashReport&)> on_crash)
{
    if (!m_hv)
        return;
    m_hv->set_crash_handler([on_crash = std::move(on_crash)](const HvCrashReport& report) {
        print_crash_report(stderr, report);
        if (on_crash)
            on_crash(report);
    });
}

void HypervGlue::flush_tlb(unsigned vp, const TlbFlushRequest& request)
{
    Cpu* cpu = vp < m_cpus.size() ? m_cpus[vp] : nullptr;
    if (!cpu)
        return;
    u64 pages = 0;
    for (const GvaRange& range : request.ranges)
        pages += range.pages;
    if (request.ranges.empty() || pages > MAX_PAGES_FLUSHED_ONE_BY_ONE) {
        // A ranged flush may name global pages; only a whole-space flush
        // can be limited to non-global ones.
        cpu->flush_tlb(request.ranges.empty() ? !request.non_global_only : true);
        return;
    }
    for (const GvaRange& range : request.ranges)
        for (u64 page = 0; page < range.pages; ++page)
            cpu->invalidate_page(range.base + (page << 12));
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

void print_crash_report(std::FILE* out, const HvCrashReport& report)
{
    std::fprintf(out,
                 "viridian: the guest reported a crash (Hyper-V crash MSRs) on VP %u:\n"
                 "  P0=0x%016" PRIx64 " P1=0x%016" PRIx64 " P2=0x%016" PRIx64 "\n"
                 "  P3=0x%016" PRIx64 " P4=0x%016" PRIx64 "\n",
                 report.vp, report.params[0], report.params[1], report.params[2],
                 report.params[3], report.params[4]);
    if (!report.message)
        return;
    // The text is the guest's: control bytes other than newline and tab are
    // shown as '.', so it cannot drive the host terminal.
    std::fputs("  message:\n", out);
    for (char c : *report.message) {
        const auto byte = static_cast<unsigned char>(c);
        std::fputc(byte == '\n' || byte == '\t' || (byte >= 0x20 && byte < 0x7F) ? byte : '.', out);
    }
    if (report.message->empty() || report.message->back() != '\n')
        std::fputc('\n', out);
}
