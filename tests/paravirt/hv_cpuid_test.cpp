#include "paravirt/hv_cpuid.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>

namespace {
std::string vendor(const CpuidResult& r)
{
    char s[12];
    std::memcpy(s, &r.ebx, 4);
    std::memcpy(s + 4, &r.ecx, 4);
    std::memcpy(s + 8, &r.edx, 4);
    return std::string(s, 12);
}
} // namespace

TEST_CASE("Hyper-V CPUID names Microsoft Hv with the Hv#1 interface up to leaf 0x40000006")
{
    CpuidModel cpuid;
    install_hv_cpuid(cpuid, HvConfig{});
    const CpuidResult max = cpuid.query(0x40000000, 0, 0);
    CHECK(max.eax == 0x40000006);
    CHECK(vendor(max) == "Microsoft Hv");
    CHECK(cpuid.query(0x40000001, 0, 0).eax == 0x31237648);
    CHECK((cpuid.query(1, 0, 0).ecx >> 31) == 1);
    const CpuidResult version = cpuid.query(0x40000002, 0, 0);
    CHECK(version.eax == 14393);
    CHECK(version.ebx == 0x000A0000);
}

TEST_CASE("Hyper-V CPUID leaves past the maximum read as zero")
{
    CpuidModel cpuid;
    install_hv_cpuid(cpuid, HvConfig{});
    const CpuidResult r = cpuid.query(0x40000007, 0, 0);
    CHECK((r.eax | r.ebx | r.ecx | r.edx) == 0);
    const CpuidResult nested = cpuid.query(0x4000000A, 0, 0);
    CHECK((nested.eax | nested.ebx | nested.ecx | nested.edx) == 0);
}

TEST_CASE("Hyper-V feature leaf advertises the implemented MSR groups and hypercall privileges")
{
    const CpuidResult f = hv_cpuid_leaf(HvConfig{}, 0x40000003);
    // VP runtime, reference counter, SynIC, stimers, APIC MSRs, hypercall,
    // VP index, reset, reference TSC, guest idle, frequencies.
    CHECK(f.eax == 0xEFF);
    CHECK(f.ebx == ((1u << 4) | (1u << 5))); // PostMessages, SignalEvents
    CHECK(f.ecx == 0);
    // XMM input, guest idle, frequency MSRs, crash MSRs, polling, MSR lock, direct timers.
    CHECK(f.edx ==
          ((1u << 4) | (1u << 5) | (1u << 8) | (1u << 10) | (1u << 17) | (1u << 18) | (1u << 19)));
    const CpuidResult hints = hv_cpuid_leaf(HvConfig{}, 0x40000004);
    CHECK(hints.eax == ((1u << 2) | (1u << 3) | (1u << 5) | (1u << 9) | (1u << 10) | (1u << 11)));
    CHECK(hints.ebx == 0xFFF);
}

TEST_CASE("Hyper-V feature bits follow the config switches")
{
    HvConfig c;
    c.apic_access_msrs = false;
    c.direct_stimers = false;
    c.xmm_fast_hypercalls = false;
    c.tlb_flush_hypercalls = false;
    c.cluster_ipi_hypercalls = false;
    c.crash_msrs = false;
    c.guest_idle_msr = false;
    const CpuidResult f = hv_cpuid_leaf(c, 0x40000003);
    CHECK((f.eax & (1u << 4)) == 0);
    CHECK((f.eax & (1u << 10)) == 0);
    CHECK(f.edx == ((1u << 8) | (1u << 17) | (1u << 18)));
    const CpuidResult hints = hv_cpuid_leaf(c, 0x40000004);
    CHECK(hints.eax == ((1u << 5) | (1u << 9)));
}

TEST_CASE("Hyper-V implementation limits are reported")
{
    const CpuidResult limits = hv_cpuid_leaf(HvConfig{}, 0x40000005);
    CHECK(limits.eax == 4096);
    CHECK(limits.ebx == 64);
}

TEST_CASE("Disabled enlightenments leave no hypervisor bit and no hypervisor leaves")
{
    HvConfig c;
    c.enabled = false;
    CpuidModel cpuid;
    install_hv_cpuid(cpuid, c);
    CHECK((cpuid.query(1, 0, 0).ecx >> 31) == 0);
    const CpuidResult r = cpuid.query(0x40000000, 0, 0);
    CHECK((r.eax | r.ebx | r.ecx | r.edx) == 0);
    CHECK(HvFeatures::from(c).privileges == 0);
}
