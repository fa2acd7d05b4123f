// CpuidModel::apply_feature_spec: narrowing by /proc/cpuinfo names, the
// dependent features removed with a feature, errors, and the CPU refusing
// state and instructions of removed features.
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

namespace {

bool bit(u32 word, unsigned b) { return (word >> b) & 1; }

} // namespace

TEST_CASE("apply_feature_spec removes features from CPUID")
{
    CpuidModel m;
    REQUIRE(bit(m.query(1, 0, 0).ecx, 25)); // aes
    auto r = m.apply_feature_spec("-aes, -rdseed");
    REQUIRE(!r.is_error());
    CHECK(!bit(m.query(1, 0, 0).ecx, 25));
    CHECK(!bit(m.query(7, 0, 0).ebx, 18));
    CHECK(bit(m.query(1, 0, 0).ecx, 20)); // sse4_2 untouched
    r = m.apply_feature_spec("+aes");
    REQUIRE(!r.is_error());
    CHECK(bit(m.query(1, 0, 0).ecx, 25));
}

TEST_CASE("apply_feature_spec removes what depends on a removed feature")
{
    CpuidModel m;
    REQUIRE(!m.apply_feature_spec("-xsave").is_error());
    CHECK(!bit(m.query(1, 0, 0).ecx, 26));
    CHECK(m.query(0xD, 0, 0).eax == 0);
    CHECK(m.query(0xD, 1, 0).eax == 0);
    CHECK(!m.has(cpufeat::XSAVEOPT));
    CHECK(!m.has(cpufeat::XSAVES));
    CHECK(m.xcr0_supported() == xfeat::X87);
    CHECK(!m.has(cpufeat::AVX)); // -xsave takes AVX and its family with it
    CHECK(!bit(m.query(1, 0, 0).ecx, 12)); // fma
    CHECK(!bit(m.query(1, 0, 0).ecx, 29)); // f16c
    CHECK(!bit(m.query(7, 0, 0).ebx, 5));  // avx2

    CpuidModel a;
    REQUIRE(bit(a.query(7, 0, 0).ebx, 5));
    REQUIRE(!a.apply_feature_spec("-avx").is_error());
    CHECK(!bit(a.query(7, 0, 0).ebx, 5));
    CHECK(!bit(a.query(1, 0, 0).ecx, 12));
    CHECK(bit(a.query(1, 0, 0).ecx, 26)); // xsave stays
    CHECK(a.xcr0_supported() == (xfeat::X87 | xfeat::SSE));
    REQUIRE(!a.apply_feature_spec("+avx2").is_error()); // brings AVX back
    CHECK(bit(a.query(1, 0, 0).ecx, 28));
    CHECK(!bit(a.query(1, 0, 0).ecx, 12)); // fma stays removed

    CpuidModel s;
    REQUIRE(!s.apply_feature_spec("-sse2").is_error());
    const CpuidResult l1 = s.query(1, 0, 0);
    CHECK(!bit(l1.edx, 26));
    CHECK(bit(l1.edx, 25)); // sse stays
    for (unsigned b : {0u, 1u, 9u, 19u, 20u, 25u}) // pni pclmulqdq ssse3 sse4_1 sse4_2 aes
        CHECK(!bit(l1.ecx, b));
    CHECK(bit(l1.ecx, 23)); // popcnt does not need SSE2

    REQUIRE(!s.apply_feature_spec("+sse4_2").is_error()); // brings back its prerequisites
    const CpuidResult back = s.query(1, 0, 0);
    CHECK(bit(back.edx, 26));
    CHECK(bit(back.ecx, 0));
    CHECK(bit(back.ecx, 20));
    CHECK(!bit(back.ecx, 25)); // aes stays removed
}

TEST_CASE("apply_feature_spec takes XSAVES away and puts it back")
{
    CpuidModel m;
    REQUIRE(bit(m.query(0xD, 1, 0).eax, 3));
    REQUIRE(!m.apply_feature_spec("-xsaves").is_error());
    CHECK(!bit(m.query(0xD, 1, 0).eax, 3));
    CHECK(bit(m.query(0xD, 1, 0).eax, 1)); // xsavec stays
    CHECK(!m.has(cpufeat::XSAVES));
    REQUIRE(!m.apply_feature_spec("-xsave,+xsaves").is_error()); // brings XSAVE back
    CHECK(bit(m.query(0xD, 1, 0).eax, 3));
    CHECK(bit(m.query(1, 0, 0).ecx, 26));
}

TEST_CASE("apply_feature_spec masks machine-dependent flags too")
{
    CpuidModel m;
    m.set_local_apic(true);
    REQUIRE(bit(m.query(1, 0, 0).ecx, 21));
    REQUIRE(!m.apply_feature_spec("-apic").is_error());
    CHECK(!bit(m.query(1, 0, 0).edx, 9));
    CHECK(!bit(m.query(1, 0, 0).ecx, 21)); // x2apic needs the APIC
    CHECK(!bit(m.query(1, 0, 0).ecx, 24)); // so does the TSC deadline timer
}

TEST_CASE("has() agrees with CPUID on the machine-dependent x2APIC flag")
{
    CpuidModel m;
    CHECK_FALSE(m.has(cpufeat::X2APIC)); // no local APIC yet
    m.set_local_apic(true);
    CHECK(m.has(cpufeat::X2APIC));
    REQUIRE(!m.apply_feature_spec("-rdtscp").is_error()); // narrowing something else
    CHECK(m.has(cpufeat::X2APIC));
    REQUIRE(!m.apply_feature_spec("-x2apic").is_error());
    CHECK_FALSE(m.has(cpufeat::X2APIC));
    CHECK(!bit(m.query(1, 0, 0).ecx, 21));
}

TEST_CASE("apply_feature_spec rejects unknown, unsigned and unimplemented items unchanged")
{
    CpuidModel m;
    const u32 before = m.query(1, 0, 0).ecx;
    auto r = m.apply_feature_spec("-aes,-sse5");
    REQUIRE(r.is_error());
    CHECK(r.error().message.find("sse5") != std::string::npos);
    CHECK(m.query(1, 0, 0).ecx == before); // nothing applied
    r = m.apply_feature_spec("aes");
    REQUIRE(r.is_error());
    CHECK(r.error().message.find("sign") != std::string::npos);
    r = m.apply_feature_spec("+mtrr");
    REQUIRE(r.is_error());
    CHECK(r.error().message.find("not implemented") != std::string::npos);
    CHECK(!m.apply_feature_spec("").is_error());
    CHECK(!m.apply_feature_spec(" ,, ").is_error());
    CHECK(m.query(1, 0, 0).ecx == before);
}

TEST_CASE("the CPU refuses CR4.OSXSAVE, XSAVE and RDRAND when narrowed away")
{
    CpuHarness h;
    REQUIRE(!h.cpuid.apply_feature_spec("-xsave,-rdrand").is_error());
    h.enter_long64();
    // IDT vector 13 and 6 → HLT stubs that record the vector in RBX.
    const u64 idt = 0x3000;
    for (u64 v : {6u, 13u}) {
        const u64 handler = 0x12000 + v * 16;
        h.put64(idt + v * 16, (handler & 0xFFFF) | (u64(0x08) << 16) | (u64(0x8E) << 40) |
                                  (u64(handler >> 16 & 0xFFFF) << 48));
        h.put64(idt + v * 16 + 8, 0);
        h.put(handler, {0xBB, static_cast<u8>(v), 0, 0, 0, 0xF4});
    }
    h.state.idtr = {idt, 0xFFF};
    h.state.gpr[RAX] = h.state.cr4 | cr::CR4_OSXSAVE;
    h.run_code({0x0F, 0x22, 0xE0}); // mov cr4, rax
    CHECK(h.state.gpr[RBX] == 13);
    CHECK((h.state.cr4 & cr::CR4_OSXSAVE) == 0);
    h.state.rip = CpuHarness::CODE;
    h.state.gpr[RBX] = 0;
    h.state.events.halted = false;
    h.run_code({0x48, 0x0F, 0xC7, 0xF0}); // rdrand rax
    CHECK(h.state.gpr[RBX] == 6);
}
