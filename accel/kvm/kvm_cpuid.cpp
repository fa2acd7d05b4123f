#include "accel/kvm/kvm_cpuid.h"

#include <algorithm>

namespace {

// Leaf 1 flags the userspace devices provide whatever KVM offers: x2APIC
// (ECX 21), TSC-deadline (ECX 24) and the APIC (EDX 9) are viridian's
// LAPIC, whose registers and MSRs come to it; the hypervisor bit (ECX 31)
// is the Hyper-V partition's; OSXSAVE (ECX 27) follows CR4, which KVM
// tracks; HTT (EDX 28) only describes the topology.
constexpr u32 OWN_LEAF1_ECX = (1u << 21) | (1u << 24) | (1u << 27) | (1u << 31);
constexpr u32 OWN_LEAF1_EDX = (1u << 9) | (1u << 28);
constexpr u32 LEAF1_ECX_AVX = 1u << 28;

kvm_cpuid_entry2 supported_entry(std::span<const kvm_cpuid_entry2> supported, u32 function, u32 index)
{
    for (const kvm_cpuid_entry2& e : supported)
        if (e.function == function &&
            (!(e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e.index == index))
            return e;
    return {}; // KVM offers nothing there
}

void mask_features(kvm_cpuid_entry2& e, std::span<const kvm_cpuid_entry2> supported)
{
    const kvm_cpuid_entry2 host = supported_entry(supported, e.function, e.index);
    switch (e.function) {
    case 1:
        e.ecx &= host.ecx | OWN_LEAF1_ECX;
        e.edx &= host.edx | OWN_LEAF1_EDX;
        break;
    case 7:
        e.ebx &= host.ebx;
        e.ecx &= host.ecx;
        e.edx &= host.edx;
        break;
    case 0xD:
        if (e.index == 0) {
            e.eax &= host.eax;
            e.edx &= host.edx;
            // ECX: the area for every offered component. EBX should follow
            // the guest's XCR0, but the KVM of Linux 6.1 (nested under QEMU
            // TCG at least) leaves it as set: Linux then finds it smaller
            // than its enabled components and stops using XSAVE. The
            // largest size, as QEMU gives under KVM, is never too small.
            e.ecx = CpuidModel::xsave_size(e.eax);
            e.ebx = e.ecx;
        } else if (e.index == 1) {
            e.eax &= host.eax;
        }
        break;
    case 0x80000001:
        e.ecx &= host.ecx;
        e.edx &= host.edx;
        break;
    case 0x80000008: {
        // Physical and linear address widths no wider than the host's: a
        // guest page table must not point beyond what the MMU translates.
        const u32 phys = std::min(e.eax & 0xFF, host.eax & 0xFF);
        const u32 linear = std::min((e.eax >> 8) & 0xFF, (host.eax >> 8) & 0xFF);
        e.eax = (e.eax & ~0xFFFFu) | phys | (linear << 8);
        break;
    }
    }
}

class TableBuilder {
public:
    TableBuilder(const CpuidModel& model, unsigned apic_id) : m_model(model), m_apic_id(apic_id) {}

    CpuidResult add(u32 leaf, u32 subleaf, bool significant_index)
    {
        const CpuidResult r = m_model.query(leaf, subleaf, m_apic_id);
        kvm_cpuid_entry2 e{};
        e.function = leaf;
        e.index = subleaf;
        e.flags = significant_index ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
        e.eax = r.eax, e.ebx = r.ebx, e.ecx = r.ecx, e.edx = r.edx;
        m_entries.push_back(e);
        return r;
    }

    void add_basic(u32 leaf)
    {
        switch (leaf) {
        case 4: // deterministic cache parameters, until the null type
            for (u32 sub = 0; sub < 16 && (add(leaf, sub, true).eax & 0x1F) != 0; ++sub) {
            }
            break;
        case 7: {
            const u32 last = m_model.query(7, 0, m_apic_id).eax;
            for (u32 sub = 0; sub <= std::min(last, 8u); ++sub)
                add(leaf, sub, true);
            break;
        }
        case 0xB: // topology levels, the invalid one that ends them included
            for (u32 sub = 0; sub < 8 && ((add(leaf, sub, true).ecx >> 8) & 0xFF) != 0; ++sub) {
            }
            break;
        case 0xD:
            for (u32 sub = 0; sub < 63; ++sub) {
                const CpuidResult r = m_model.query(leaf, sub, m_apic_id);
                if (sub < 2 || r.eax != 0)
                    add(leaf, sub, true);
            }
            break;
        default:
            add(leaf, 0, false);
        }
    }

    std::vector<kvm_cpuid_entry2> take() { return std::move(m_entries); }

private:
    const CpuidModel& m_model;
    unsigned m_apic_id;
    std::vector<kvm_cpuid_entry2> m_entries;
};

} // namespace

std::vector<kvm_cpuid_entry2> kvm_cpuid_table(const CpuidModel& model, unsigned apic_id,
                                              std::span<const kvm_cpuid_entry2> supported)
{
    TableBuilder table(model, apic_id);
    const u32 basic_max = model.query(0, 0, apic_id).eax;
    for (u32 leaf = 0; leaf <= basic_max; ++leaf)
        table.add_basic(leaf);
    const u32 hypervisor_max = model.query(0x40000000, 0, apic_id).eax;
    if (hypervisor_max >= 0x40000000)
        for (u32 leaf = 0x40000000; leaf <= std::min(hypervisor_max, 0x400000FFu); ++leaf)
            table.add(leaf, 0, false);
    const u32 extended_max = model.query(0x80000000, 0, apic_id).eax;
    for (u32 leaf = 0x80000000; leaf <= std::min(extended_max, 0x800000FFu); ++leaf)
        table.add(leaf, 0, false);

    std::vector<kvm_cpuid_entry2> entries = table.take();
    for (kvm_cpuid_entry2& e : entries)
        mask_features(e, supported);
    // The AVX instructions and the AVX state component go together: a
    // host whose KVM offers the state but not the instructions (or the
    // reverse) gets neither, as the guest's XSAVE sizes must agree with
    // the features it enables.
    for (kvm_cpuid_entry2& e : entries)
        if (e.function == 0xD && e.index == 0 && !(supported_entry(entries, 1, 0).ecx & LEAF1_ECX_AVX)) {
            e.eax &= ~static_cast<u32>(xfeat::AVX);
            e.ebx = e.ecx = CpuidModel::xsave_size(e.eax);
        }
    for (kvm_cpuid_entry2& e : entries)
        if (e.function == 1 && !(supported_entry(entries, 0xD, 0).eax & xfeat::AVX))
            e.ecx &= ~LEAF1_ECX_AVX;
    const kvm_cpuid_entry2 xsave = supported_entry(entries, 0xD, 0);
    std::erase_if(entries, [&](const kvm_cpuid_entry2& e) {
        return e.function == 0xD && e.index >= 2 && !((xsave.eax >> e.index) & 1);
    });
    return entries;
}

void narrow_to_kvm(CpuidModel& model, std::span<const kvm_cpuid_entry2> supported)
{
    const kvm_cpuid_entry2 leaf1 = supported_entry(supported, 1, 0);
    const kvm_cpuid_entry2 leaf7 = supported_entry(supported, 7, 0);
    const kvm_cpuid_entry2 ext1 = supported_entry(supported, 0x80000001, 0);
    model.keep_only(FeatureWord::Leaf1Ecx, leaf1.ecx | OWN_LEAF1_ECX);
    model.keep_only(FeatureWord::Leaf1Edx, leaf1.edx | OWN_LEAF1_EDX);
    model.keep_only(FeatureWord::Leaf7Ebx, leaf7.ebx);
    model.keep_only(FeatureWord::Leaf7Ecx, leaf7.ecx);
    model.keep_only(FeatureWord::Leaf7Edx, leaf7.edx);
    model.keep_only(FeatureWord::Ext1Ecx, ext1.ecx);
    model.keep_only(FeatureWord::Ext1Edx, ext1.edx);
    model.keep_only(FeatureWord::LeafDEax1, supported_entry(supported, 0xD, 1).eax);
    // The AVX instructions go with the AVX state component.
    if (!(supported_entry(supported, 0xD, 0).eax & xfeat::AVX))
        model.keep_only(FeatureWord::Leaf1Ecx, ~LEAF1_ECX_AVX);
}
