// CPUID's topology leaves: each vCPU is a single-threaded core of one
// package, so guests count cores, not SMT siblings (Linux's "SMT on"
// mitigations key on this).
#include "cpu/state/cpuid_model.h"

#include <doctest/doctest.h>

TEST_CASE("CPUID leaf 0BH reports an SMT level of one thread and a core level of every vCPU")
{
    CpuidModel cpuid(3);
    CHECK(cpuid.query(0, 0, 0).eax >= 0xB);
    const CpuidResult smt = cpuid.query(0xB, 0, 2);
    CHECK(smt.eax == 0);          // no SMT bits in the x2APIC ID
    CHECK(smt.ebx == 1);          // one thread per core
    CHECK(smt.ecx == (1u << 8));  // level 0, type SMT
    CHECK(smt.edx == 2);          // this vCPU's x2APIC ID
    const CpuidResult core = cpuid.query(0xB, 1, 2);
    CHECK(core.eax == 2);         // three vCPUs need two ID bits
    CHECK(core.ebx == 3);
    CHECK(core.ecx == (1u | (2u << 8)));
    const CpuidResult end = cpuid.query(0xB, 2, 2);
    CHECK(end.ebx == 0);
    CHECK((end.ecx >> 8 & 0xFF) == 0); // invalid level ends the enumeration
    CHECK(end.edx == 2);
}

TEST_CASE("CPUID leaf 4 lists the caches with one core per vCPU and ends with a null type")
{
    CpuidModel cpuid(2);
    const CpuidResult l1d = cpuid.query(4, 0, 0);
    CHECK((l1d.eax & 0x1F) == 1);         // data cache
    CHECK((l1d.eax >> 5 & 7) == 1);       // level 1
    CHECK((l1d.eax >> 26) == 1);          // two cores in the package
    CHECK((l1d.eax >> 14 & 0xFFF) == 0);  // private to the core
    const unsigned ways = (l1d.ebx >> 22) + 1, line = (l1d.ebx & 0xFFF) + 1;
    CHECK(ways * line * (l1d.ecx + 1) == 32 * 1024);
    const CpuidResult l3 = cpuid.query(4, 3, 0);
    CHECK((l3.eax >> 5 & 7) == 3);
    CHECK((l3.eax >> 14 & 0xFFF) == 1);  // shared by both cores
    CHECK((cpuid.query(4, 4, 0).eax & 0x1F) == 0);
}

TEST_CASE("CPUID leaf 1 sets HTT and the logical count only with several vCPUs")
{
    CHECK((CpuidModel(1).query(1, 0, 0).edx >> 28 & 1) == 0);
    const CpuidResult two = CpuidModel(2).query(1, 0, 1);
    CHECK((two.edx >> 28 & 1) == 1);
    CHECK((two.ebx >> 16 & 0xFF) == 2);
    CHECK((two.ebx >> 24) == 1); // initial APIC ID
}
