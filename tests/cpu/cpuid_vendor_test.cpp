// The CPUID of each vendor's model: a coherent identity in that vendor's
// format (APM Vol 3 "CPUID"; SDM Vol 2A "CPUID").
#include "cpu/state/cpuid_model.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>

namespace {

std::string vendor_string(const CpuidResult& r)
{
    char s[12];
    std::memcpy(s, &r.ebx, 4);
    std::memcpy(s + 4, &r.edx, 4);
    std::memcpy(s + 8, &r.ecx, 4);
    return std::string(s, 12);
}

unsigned family(u32 eax)
{
    const unsigned base = (eax >> 8) & 0xF;
    return base == 0xF ? base + ((eax >> 20) & 0xFF) : base;
}

} // namespace

TEST_CASE("the default CPU model is Intel whatever the host is")
{
    CpuidModel model;
    CHECK(model.vendor() == CpuVendor::Intel);
    CHECK(vendor_string(model.query(0, 0, 0)) == "GenuineIntel");
    CHECK(family(model.query(1, 0, 0).eax) == 6);
    CHECK(model.query(4, 0, 0).eax != 0); // Intel's cache leaf
    CHECK(model.query(0x80000005, 0, 0).ecx == 0);
}

TEST_CASE("the AMD model reports AuthenticAMD, family 17h and AMD's extended leaves")
{
    CpuidModel model(4, CpuVendor::Amd);
    CHECK(vendor_string(model.query(0, 0, 0)) == "AuthenticAMD");
    CHECK(vendor_string(model.query(0x80000000, 0, 0)) == "AuthenticAMD");
    CHECK(model.query(0x80000000, 0, 0).eax == 0x80000008);
    const CpuidResult leaf1 = model.query(1, 0, 0);
    CHECK(family(leaf1.eax) == 0x17);
    CHECK(((leaf1.eax >> 4) & 0xF) + ((leaf1.eax >> 12) & 0xF0) == 0x31); // model
    // 0x80000001 repeats the signature and leaf 1's FPU..PSE36/MMX/FXSR flags.
    const CpuidResult ext1 = model.query(0x80000001, 0, 0);
    CHECK(ext1.eax == leaf1.eax);
    CHECK((ext1.edx & 0x0183F3FF) == (leaf1.edx & 0x0183F3FF));
    CHECK((ext1.edx & (1u << 11)) != 0); // SYSCALL
    CHECK((ext1.ecx & (1u << 1)) != 0);  // CmpLegacy: several cores
    CHECK(model.query(4, 0, 0).eax == 0); // reserved on AMD
    CHECK((model.query(0x80000005, 0, 0).ecx >> 24) == 32); // 32 KiB L1d
    CHECK((model.query(0x80000006, 0, 0).ecx >> 16) == 512); // 512 KiB L2
    CHECK((model.query(0x80000007, 0, 0).edx & (1u << 8)) != 0); // invariant TSC
    // NC = cores - 1, ApicIdCoreIdSize = bits of the APIC ID that number cores.
    const CpuidResult ext8 = model.query(0x80000008, 0, 0);
    CHECK((ext8.ecx & 0xFF) == 3);
    CHECK(((ext8.ecx >> 12) & 0xF) == 2);
}

TEST_CASE("--cpu spells the vendors intel and amd")
{
    CHECK(parse_cpu_vendor("intel") == CpuVendor::Intel);
    CHECK(parse_cpu_vendor("amd") == CpuVendor::Amd);
    CHECK_FALSE(parse_cpu_vendor("AMD").has_value());
    CHECK_FALSE(parse_cpu_vendor("").has_value());
    CHECK(cpu_vendor_name(CpuVendor::Amd) == "amd");
}
