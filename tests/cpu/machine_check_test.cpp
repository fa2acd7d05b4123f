// Machine-check MSRs (SDM Vol 3B 16.3), through the CPU's RDMSR/WRMSR.
#include "cpu/system/machine_check.h"
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

namespace {

// RDMSR/WRMSR as the guest runs them: the value, or the vector raised.
struct MsrProbe {
    CpuHarness h;
    MsrProbe() { h.enter_long64_with_vector_stubs(); }
    int write(u32 index, u64 value)
    {
        h.state.gpr[RCX] = index;
        h.state.gpr[RAX] = value & 0xFFFFFFFF;
        h.state.gpr[RDX] = value >> 32;
        return h.run_to_vector({0x0F, 0x30});
    }
    int read(u32 index, u64& value)
    {
        h.state.gpr[RCX] = index;
        const int vector = h.run_to_vector({0x0F, 0x32});
        value = (h.state.gpr[RDX] << 32) | (h.state.gpr[RAX] & 0xFFFFFFFF);
        return vector;
    }
};

constexpr u32 bank_msr(unsigned bank, unsigned reg) { return mca::MSR_MC0_CTL + 4 * bank + reg; }

} // namespace

TEST_CASE("MCG_CAP reports 10 banks and MCG_CTL, and is read-only")
{
    MsrProbe p;
    u64 v = 0;
    CHECK(p.read(mca::MSR_MCG_CAP, v) == -1);
    CHECK(v == (10u | (1u << 8)));
    CHECK(p.write(mca::MSR_MCG_CAP, v) == VEC_GP);
}

TEST_CASE("MCG_CTL and MCi_CTL take all ones or all zeros; they start all ones")
{
    MsrProbe p;
    u64 v = 0;
    CHECK(p.read(mca::MSR_MCG_CTL, v) == -1);
    CHECK(v == ~0ull);
    CHECK(p.read(bank_msr(9, 0), v) == -1);
    CHECK(v == ~0ull);
    for (u32 index : {mca::MSR_MCG_CTL, bank_msr(0, 0), bank_msr(9, 0)}) {
        CHECK(p.write(index, 0) == -1);
        CHECK(p.read(index, v) == -1);
        CHECK(v == 0);
        CHECK(p.write(index, ~0ull) == -1);
        CHECK(p.write(index, 0x8000000000000000ull) == VEC_GP);
        CHECK(p.read(index, v) == -1);
        CHECK(v == ~0ull);
    }
}

TEST_CASE("MCi_STATUS may only be cleared; MCi_ADDR and MCi_MISC hold any value")
{
    MsrProbe p;
    u64 v = 1;
    CHECK(p.write(bank_msr(3, 1), 0) == -1);
    CHECK(p.write(bank_msr(3, 1), 1) == VEC_GP);
    CHECK(p.read(bank_msr(3, 1), v) == -1);
    CHECK(v == 0);
    for (u32 index : {bank_msr(3, 2), bank_msr(3, 3)}) {
        CHECK(p.write(index, 0xAAAAAAAAAAAAAAAAull) == -1);
        CHECK(p.read(index, v) == -1);
        CHECK(v == 0xAAAAAAAAAAAAAAAAull);
    }
}

TEST_CASE("MCG_STATUS keeps RIPV/EIPV/MCIP and refuses reserved bits")
{
    MsrProbe p;
    u64 v = 0;
    CHECK(p.write(mca::MSR_MCG_STATUS, 0x5) == -1);
    CHECK(p.read(mca::MSR_MCG_STATUS, v) == -1);
    CHECK(v == 0x5);
    CHECK(p.write(mca::MSR_MCG_STATUS, 0x8) == VEC_GP);
}

TEST_CASE("banks past MCG_CAP's count, and every MCA MSR without CPUID.MCA, raise #GP")
{
    MsrProbe p;
    u64 v = 0;
    CHECK(p.read(bank_msr(10, 0), v) == VEC_GP);
    CHECK(p.write(bank_msr(31, 1), 0) == VEC_GP);
    REQUIRE(!p.h.cpuid.apply_feature_spec("-mca").is_error());
    CHECK(p.read(mca::MSR_MCG_CAP, v) == VEC_GP);
    CHECK(p.write(bank_msr(0, 1), 0) == VEC_GP);
}

// Not a machine-check MSR, but the same kind of model question: which
// counters exist. None do (CPUID leaf 0AH: no architectural PMU).
TEST_CASE("RDPMC raises #GP(0) for every counter: the model has no performance counters")
{
    MsrProbe p;
    for (u64 counter : {0ull, 1ull, 64ull, 0x40000000ull}) {
        p.h.state.gpr[RCX] = counter;
        CHECK(p.h.run_to_vector({0x0F, 0x33}) == VEC_GP);
    }
}
