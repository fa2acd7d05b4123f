// One model answers CPUID for every leaf. It advertises exactly what the
// interpreter implements: a feature bit is set only when its instructions
// and state exist.
#pragma once

#include "mmu/types.h"

#include <functional>

struct CpuidResult {
    u32 eax = 0, ebx = 0, ecx = 0, edx = 0;
};

class CpuidModel {
public:
    explicit CpuidModel(unsigned cpu_count = 1) : m_cpu_count(cpu_count) {}
    CpuidResult query(u32 leaf, u32 subleaf, unsigned apic_id) const;

    // The hypervisor range 0x40000000-0x4FFFFFFF belongs to an enlightenment
    // provider (paravirt/); when one is installed, leaf 1 also reports the
    // hypervisor-present bit (ECX bit 31).
    using HypervisorLeaves = std::function<CpuidResult(u32 leaf, u32 subleaf, unsigned apic_id)>;
    void set_hypervisor_leaves(HypervisorLeaves provider) { m_hypervisor = std::move(provider); }
    // A local APIC per vCPU (x2APIC and TSC-deadline capable) is present.
    void set_local_apic(bool present) { m_local_apic = present; }

    // Physical/linear address widths reported in leaf 0x80000008.
    static constexpr unsigned PHYS_BITS = 46, LINEAR_BITS = 57;

private:
    unsigned apic_id_bits() const;
    CpuidResult cache_leaf(u32 subleaf) const;
    CpuidResult topology_leaf(u32 subleaf, unsigned apic_id) const;

    unsigned m_cpu_count;
    HypervisorLeaves m_hypervisor;
    bool m_local_apic = false;
};
