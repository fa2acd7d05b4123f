// HyperV's synthetic MSRs: privilege checks, the partition-wide registers
// (guest OS ID, hypercall page, reference TSC page, crash MSRs) and the
// dispatch of per-VP ones to their owners.
#include "paravirt/hyperv.h"

#include "mmu/guest_memory.h"

#include <algorithm>
#include <cstring>

namespace {

bool in(u32 index, u32 first, u32 last)
{
    return index >= first && index <= last;
}
GuestPhys page_of(u64 reg)
{
    return reg & HV_PAGE_GPA_MASK;
}
// Bits 11:1 of the page registers. Hyper-V (and Microsoft's own openvmm
// emulator) refuse set bits there with #GP although the TLFS calls them RsvdP.
constexpr u64 PAGE_REGISTER_RESERVED = 0xFFE;
// HV_X64_MSR_HYPERCALL keeps bit 1 (Locked) out of that range.
constexpr u64 HYPERCALL_RESERVED = 0xFFC;
constexpr u64 CRASH_CAPABILITIES = HV_CRASH_CTL_CRASH_NOTIFY | HV_CRASH_CTL_CRASH_MESSAGE;

} // namespace

bool HyperV::msr_allowed(u32 index) const
{
    using namespace hv_privilege;
    // TLFS 4.2.2: an MSR whose privilege the partition lacks raises #GP.
    u64 needed;
    switch (index) {
    case HV_X64_MSR_GUEST_OS_ID:
    case HV_X64_MSR_HYPERCALL:
        needed = ACCESS_HYPERCALL_MSRS;
        break;
    case HV_X64_MSR_VP_INDEX:
        needed = ACCESS_VP_INDEX;
        break;
    case HV_X64_MSR_RESET:
        needed = ACCESS_RESET_REG;
        break;
    case HV_X64_MSR_VP_RUNTIME:
        needed = ACCESS_VP_RUNTIME_REG;
        break;
    case HV_X64_MSR_TIME_REF_COUNT:
        needed = ACCESS_PARTITION_REFERENCE_COUNTER;
        break;
    case HV_X64_MSR_REFERENCE_TSC:
        needed = ACCESS_PARTITION_REFERENCE_TSC;
        break;
    case HV_X64_MSR_TSC_FREQUENCY:
    case HV_X64_MSR_APIC_FREQUENCY:
        needed = ACCESS_FREQUENCY_REGS;
        break;
    case HV_X64_MSR_EOI:
    case HV_X64_MSR_ICR:
    case HV_X64_MSR_TPR:
    case HV_X64_MSR_VP_ASSIST_PAGE:
        needed = ACCESS_INTR_CTRL_REGS;
        break;
    case HV_X64_MSR_GUEST_IDLE:
        needed = ACCESS_GUEST_IDLE_REG;
        break;
    default:
        if (in(index, HV_X64_MSR_SCONTROL, HV_X64_MSR_EOM) ||
            in(index, HV_X64_MSR_SINT0, HV_X64_MSR_SINT15))
            needed = ACCESS_SYNIC_REGS;
        else if (in(index, HV_X64_MSR_STIMER0_CONFIG, HV_X64_MSR_STIMER3_COUNT))
            needed = ACCESS_SYNTHETIC_TIMER_REGS;
        else if (in(index, HV_X64_MSR_CRASH_P0, HV_X64_MSR_CRASH_CTL))
            return m_features.features_edx & hv_feature_edx::GUEST_CRASH_MSRS;
        else
            return false; // not a synthetic MSR this partition implements
    }
    return m_features.has(needed);
}

std::optional<u64> HyperV::read_msr(unsigned vp, u32 index)
{
    if (!m_config.enabled || vp >= m_vps.size() || !msr_allowed(index))
        return std::nullopt;
    Vp& v = *m_vps[vp];
    switch (index) {
    case HV_X64_MSR_VP_INDEX:
        return vp;
    case HV_X64_MSR_VP_RUNTIME:
        // 100 ns units (TLFS 7.9).
        return m_vp_runtime ? m_vp_runtime(vp) / 100 : m_time.now();
    case HV_X64_MSR_EOI:
        return std::nullopt; // write-only (TLFS 10.2.3.1)
    case HV_X64_MSR_ICR:
        return m_apic.read_icr(vp);
    case HV_X64_MSR_TPR:
        return m_apic.read_tpr(vp);
    case HV_X64_MSR_VP_ASSIST_PAGE:
        return v.vp_assist_page;
    case HV_X64_MSR_GUEST_IDLE:
        // The read is the request to idle (TLFS 7.5).
        if (m_guest_idle)
            m_guest_idle(vp);
        return 0;
    default:
        break;
    }
    if (in(index, HV_X64_MSR_SCONTROL, HV_X64_MSR_SINT15))
        return v.synic.read_msr(index);
    if (in(index, HV_X64_MSR_STIMER0_CONFIG, HV_X64_MSR_STIMER3_COUNT))
        return v.stimers.read_msr(index);
    return read_partition_msr(index);
}

std::optional<u64> HyperV::read_partition_msr(u32 index)
{
    switch (index) {
    case HV_X64_MSR_GUEST_OS_ID:
        return m_partition.guest_os_id;
    case HV_X64_MSR_HYPERCALL:
        return m_partition.hypercall;
    case HV_X64_MSR_RESET:
        return 0;
    case HV_X64_MSR_TIME_REF_COUNT:
        return m_time.now();
    case HV_X64_MSR_REFERENCE_TSC:
        return m_partition.reference_tsc;
    case HV_X64_MSR_TSC_FREQUENCY:
        return m_time.tsc_hz();
    case HV_X64_MSR_APIC_FREQUENCY:
        return m_config.apic_frequency_hz;
    // Reading CRASH_CTL reports the supported crash actions (TLFS 4.3.1.1).
    case HV_X64_MSR_CRASH_CTL:
        return CRASH_CAPABILITIES;
    default:
        if (in(index, HV_X64_MSR_CRASH_P0, HV_X64_MSR_CRASH_P4))
            return m_partition.crash_params[index - HV_X64_MSR_CRASH_P0];
        return std::nullopt;
    }
}

bool HyperV::write_msr(unsigned vp, u32 index, u64 value)
{
    if (!m_config.enabled || vp >= m_vps.size() || !msr_allowed(index))
        return false;
    Vp& v = *m_vps[vp];
    switch (index) {
    case HV_X64_MSR_VP_INDEX:
    case HV_X64_MSR_VP_RUNTIME:
    case HV_X64_MSR_TIME_REF_COUNT: // TLFS 12.4: writes #GP
    case HV_X64_MSR_TSC_FREQUENCY:
    case HV_X64_MSR_APIC_FREQUENCY:
    case HV_X64_MSR_GUEST_IDLE:
        return false;
    case HV_X64_MSR_EOI:
        if (value >> 32) // 63:32 RsvdZ
            return false;
        m_apic.write_eoi(vp);
        return true;
    case HV_X64_MSR_ICR:
        m_apic.write_icr(vp, value);
        return true;
    case HV_X64_MSR_TPR:
        if (value & ~0xFFull) // 63:8 RsvdZ
            return false;
        m_apic.write_tpr(vp, static_cast<u8>(value));
        return true;
    case HV_X64_MSR_VP_ASSIST_PAGE: {
        if (value & PAGE_REGISTER_RESERVED)
            return false;
        const u64 old = v.vp_assist_page;
        // The overlay appears zeroed, so the APIC-assist "no EOI required" bit
        // is clear and the guest always EOIs (TLFS 7.8.7).
        if ((value & HV_PAGE_ENABLE) &&
            (!(old & HV_PAGE_ENABLE) || page_of(old) != page_of(value))) {
            static const std::array<u8, PAGE_SIZE> zeroes{};
            if (!m_memory.write(page_of(value), zeroes.data(), PAGE_SIZE))
                return false;
        }
        v.vp_assist_page = value;
        return true;
    }
    default:
        break;
    }
    if (in(index, HV_X64_MSR_SCONTROL, HV_X64_MSR_SINT15))
        return v.synic.write_msr(index, value);
    if (in(index, HV_X64_MSR_STIMER0_CONFIG, HV_X64_MSR_STIMER3_COUNT))
        return v.stimers.write_msr(index, value);
    return write_partition_msr(vp, index, value);
}

bool HyperV::write_partition_msr(unsigned vp, u32 index, u64 value)
{
    switch (index) {
    case HV_X64_MSR_GUEST_OS_ID:
        m_partition.guest_os_id = value;
        // TLFS 3.13: clearing the identity disables the hypercall page.
        if (value == 0)
            m_partition.hypercall &= ~HV_HYPERCALL_ENABLE;
        return true;
    case HV_X64_MSR_HYPERCALL:
        return write_hypercall_msr(value);
    case HV_X64_MSR_RESET:
        if (value & ~1ull)
            return false;
        if ((value & 1) && m_reset)
            m_reset();
        return true;
    case HV_X64_MSR_REFERENCE_TSC:
        return write_reference_tsc_msr(value);
    case HV_X64_MSR_CRASH_CTL:
        return write_crash_ctl(vp, value);
    default:
        if (in(index, HV_X64_MSR_CRASH_P0, HV_X64_MSR_CRASH_P4)) {
            m_partition.crash_params[index - HV_X64_MSR_CRASH_P0] = value;
            return true;
        }
        return false;
    }
}

std::vector<u8> HyperV::hypercall_sequence() const
{
    constexpr u8 RET = 0xC3;
    switch (m_config.hypercall_instruction) {
    case HypercallInstruction::Vmmcall:
        return {0x0F, 0x01, 0xD9, RET};
    case HypercallInstruction::PortOut:
        return {0xE6, m_config.hypercall_port, RET};
    case HypercallInstruction::Vmcall:
        break;
    }
    return {0x0F, 0x01, 0xC1, RET};
}

bool HyperV::write_hypercall_msr(u64 value)
{
    // A locked MSR is immutable until system reset (TLFS 3.13).
    if ((m_partition.hypercall & HV_HYPERCALL_LOCKED) || (value & HYPERCALL_RESERVED))
        return false;
    // Without a guest OS identity the enable bit stays clear.
    if (m_partition.guest_os_id == 0)
        value &= ~HV_HYPERCALL_ENABLE;
    const u64 old = m_partition.hypercall;
    if ((value & HV_HYPERCALL_ENABLE) &&
        (!(old & HV_HYPERCALL_ENABLE) || page_of(old) != page_of(value))) {
        // The calling sequence for this backend (VMCALL, VMMCALL or OUT;
        // RET), the rest of the page INT3 so a stray jump into it traps. A
        // page outside RAM is "beyond the GPA space": #GP.
        std::array<u8, PAGE_SIZE> page;
        page.fill(0xCC);
        const std::vector<u8> sequence = hypercall_sequence();
        std::memcpy(page.data(), sequence.data(), sequence.size());
        if (!m_memory.write(page_of(value), page.data(), PAGE_SIZE))
            return false;
    }
    m_partition.hypercall = value;
    return true;
}

bool HyperV::write_reference_tsc_msr(u64 value)
{
    if (value & PAGE_REGISTER_RESERVED)
        return false;
    const u64 old = m_partition.reference_tsc;
    m_partition.reference_tsc = value;
    if ((value & HV_PAGE_ENABLE) && !write_reference_tsc_page()) {
        m_partition.reference_tsc = old;
        return false;
    }
    return true;
}

bool HyperV::write_reference_tsc_page()
{
    // HV_REFERENCE_TSC_PAGE (TLFS 12.7.2). Every publication gets a new
    // sequence number, skipping 0 (invalid) and ~0 (invalid to older guests).
    u32 sequence = 0;
    if (m_tsc_page_usable) {
        sequence = m_partition.tsc_sequence + 1;
        if (sequence == 0 || sequence == ~0u)
            sequence = 1;
        m_partition.tsc_sequence = sequence;
    }
    std::array<u8, PAGE_SIZE> page{};
    const u64 scale = m_time.scale();
    const i64 offset = m_time.offset();
    std::memcpy(page.data(), &sequence, 4);
    std::memcpy(page.data() + 8, &scale, 8);
    std::memcpy(page.data() + 16, &offset, 8);
    return m_memory.write(page_of(m_partition.reference_tsc), page.data(), PAGE_SIZE);
}

void HyperV::set_reference_tsc_usable(bool usable)
{
    m_tsc_page_usable = usable;
    if (m_partition.reference_tsc & HV_PAGE_ENABLE)
        write_reference_tsc_page();
}

bool HyperV::write_crash_ctl(unsigned vp, u64 value)
{
    if (value & ~CRASH_CAPABILITIES)
        return false;
    if (!(value & HV_CRASH_CTL_CRASH_NOTIFY))
        return true;
    HvCrashReport report;
    report.vp = vp;
    report.params = m_partition.crash_params;
    if (value & HV_CRASH_CTL_CRASH_MESSAGE) {
        // P3 = message GPA, P4 = length, at most a page (TLFS 4.3.1.1).
        const u64 length = std::min<u64>(report.params[4], PAGE_SIZE);
        std::string text(length, '\0');
        if (length && m_memory.read(report.params[3], text.data(), length)) {
            text.resize(std::strlen(text.c_str()));
            report.message = std::move(text);
        }
    }
    if (m_crash)
        m_crash(report);
    return true;
}
