// Where the Intel and AMD models differ in system instructions and MSRs:
// SYSCALL/SYSRET (AMD's, also in legacy and compatibility mode on AMD),
// SYSENTER/SYSEXIT (Intel's, #UD in long mode on AMD), the hypercall
// instruction of each vendor's hardware assist, and the vendor-only MSRs.
#include "cpu/system/amd_msrs.h"
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

namespace {

constexpr u64 ENTRY = CpuHarness::CODE + 0x100; // SYSCALL/SYSENTER targets: HLT
constexpr u64 TSS = 0x5000, RSP0 = 0x70000;
constexpr u64 CODE32 = 0x00CF9B000000FFFFull; // flat 32-bit ring-0 code

struct VendorHarness : CpuHarness {
    explicit VendorHarness(CpuVendor vendor) : CpuHarness(vendor)
    {
        enter_long64_with_vector_stubs();
        put(ENTRY, {0xF4});
        put64(TSS + 4, RSP0);
        state.tr.base = TSS;
        state.tr.limit = 0x67;
        state.tr.attr = 0x8B;
    }
    // Compatibility mode: a 32-bit code segment with EFER.LMA still set.
    void enter_compatibility_mode()
    {
        put64(GDT + 40, CODE32);
        state.gdtr.limit = 0x3F;
        cpu.set_segment_from_descriptor(state.seg[CS], 0x28, CODE32);
    }
    // The frame of an exception taken from CPL 3: slot 0 is the error code
    // (unused without one), then RIP, CS, RFLAGS, RSP, SS.
    u64 frame(unsigned slot) { return get64(RSP0 - 48 + 8 * slot); }
};

} // namespace

TEST_CASE("SYSCALL from compatibility mode enters at CSTAR on AMD and raises #UD on Intel")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        CAPTURE(cpu_vendor_name(vendor));
        VendorHarness h(vendor);
        h.enter_compatibility_mode();
        h.state.msr.star = u64(0x08) << 32;
        h.state.msr.lstar = 0xDEAD0000;
        h.state.msr.cstar = ENTRY;
        h.state.msr.sfmask = rf::IF;
        h.state.rflags |= rf::IF;
        const int vector = h.run_to_vector({0x0F, 0x05});
        if (vendor == CpuVendor::Intel) {
            CHECK(vector == VEC_UD);
            continue;
        }
        CHECK(h.state.rip == ENTRY + 1); // halted on the HLT at CSTAR
        CHECK(h.state.gpr[RCX] == CpuHarness::CODE + 2);
        CHECK((h.state.gpr[R11] & rf::IF) != 0);
        CHECK((h.state.rflags & rf::IF) == 0);
        CHECK(h.state.seg[CS].selector == 0x08);
        CHECK(h.state.in_64bit_code());
    }
}

TEST_CASE("SYSCALL in legacy protected mode runs on AMD and raises #UD on Intel")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        CAPTURE(cpu_vendor_name(vendor));
        CpuHarness h(vendor);
        h.enter_protected32();
        h.state.msr.efer = cr::EFER_SCE;
        h.state.msr.star = (u64(0x08) << 32) | ENTRY;
        h.put(ENTRY, {0xF4});
        h.state.rflags |= rf::IF;
        h.run_code({0x0F, 0x05});
        if (vendor == CpuVendor::Intel) {
            CHECK(h.state.rip != ENTRY + 1); // #UD, no IDT: it never got there
            continue;
        }
        CHECK(h.state.rip == ENTRY + 1);
        CHECK(h.state.gpr[RCX] == CpuHarness::CODE + 2);
        CHECK((h.state.rflags & rf::IF) == 0);
        CHECK(h.state.seg[SS].selector == 0x10);
    }
}

TEST_CASE("SYSENTER in long mode raises #UD on AMD and enters at SYSENTER_EIP on Intel")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        CAPTURE(cpu_vendor_name(vendor));
        VendorHarness h(vendor);
        h.state.msr.sysenter_cs = 0x08;
        h.state.msr.sysenter_eip = ENTRY;
        h.state.msr.sysenter_esp = 0x60000;
        const int vector = h.run_to_vector({0x0F, 0x34});
        if (vendor == CpuVendor::Amd) {
            CHECK(vector == VEC_UD);
        } else {
            CHECK(h.state.rip == ENTRY + 1);
            CHECK(h.state.gpr[RSP] == 0x60000);
        }
    }
}

TEST_CASE("SYSRET to a non-canonical RCX faults at CPL 0 on Intel and after the return on AMD")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        CAPTURE(cpu_vendor_name(vendor));
        VendorHarness h(vendor);
        h.state.msr.star = u64(0x10) << 48; // user CS 0x23, SS 0x1B
        h.state.gpr[RCX] = 0x0000800000000000ull;
        h.state.gpr[R11] = 0x202;
        CHECK(h.run_to_vector({0x48, 0x0F, 0x07}) == VEC_GP);
        if (vendor == CpuVendor::Intel) {
            CHECK(h.get64(h.state.gpr[RSP] + 8) == CpuHarness::CODE); // at SYSRET
            CHECK(h.get64(h.state.gpr[RSP] + 16) == 0x08);            // from CPL 0
        } else {
            CHECK(h.frame(2) == 0x23); // from CPL 3: the fetch at RCX
            CHECK(h.frame(1) == 0x0000800000000000ull);
        }
    }
}

TEST_CASE("each model's hypercall instruction is the other model's #UD")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        CAPTURE(cpu_vendor_name(vendor));
        VendorHarness h(vendor);
        unsigned calls = 0;
        h.cpu.set_hypercall_handler([&calls](Cpu&) {
            ++calls;
            return true;
        });
        const bool amd = vendor == CpuVendor::Amd;
        CHECK(h.run_to_vector({0x0F, 0x01, 0xC1}) == (amd ? VEC_UD : -1)); // VMCALL
        CHECK(h.run_to_vector({0x0F, 0x01, 0xD9}) == (amd ? -1 : VEC_UD)); // VMMCALL
        CHECK(calls == 1);
    }
}

namespace {

// Counts the writes that reach the port bus.
struct CountingPort final : IoDevice {
    unsigned writes = 0;
    u64 io_read(u64, unsigned) override { return ~0ull; }
    void io_write(u64, unsigned, u64) override { ++writes; }
};

} // namespace

TEST_CASE("a one-byte OUT at CPL 0 to the hypercall gate is a hypercall; elsewhere it is port I/O")
{
    // A machine switched from KVM to the interpreter keeps its hypercall
    // page's OUT 0xEF, AL (docs/kvm.md): the interpreter takes it as KVM does.
    VendorHarness h(CpuVendor::Intel);
    CountingPort port;
    h.ports.map(0xEF, 2, &port);
    unsigned calls = 0;
    h.cpu.set_hypercall_handler([&calls](Cpu& cpu) {
        ++calls;
        cpu.s.gpr[RAX] = 0x1234; // the hypercall's result
        return true;
    });
    CHECK(h.run_to_vector({0xE6, 0xEF}) == -1); // no gate yet: a port write
    CHECK((calls == 0 && port.writes == 1));
    h.cpu.set_hypercall_gate(0xEF);
    CHECK(h.run_to_vector({0xE6, 0xEF}) == -1); // OUT imm8, AL
    CHECK((calls == 1 && port.writes == 1));
    CHECK(h.state.gpr[RAX] == 0x1234);
    h.state.gpr[RDX] = 0xEF;
    CHECK(h.run_to_vector({0xEE}) == -1); // OUT DX, AL: the same
    CHECK(calls == 2);
    CHECK(h.run_to_vector({0x66, 0xE7, 0xEF}) == -1); // two bytes: port I/O
    CHECK(h.run_to_vector({0xE6, 0xF0}) == -1);       // another port
    CHECK((calls == 2 && port.writes == 3));
    // From CPL 3 with IOPL 3 the write reaches the port, as under KVM.
    h.enter_cpl3();
    h.state.rflags |= 3ull << 12;
    CHECK(h.run_to_vector({0xE6, 0xEF}) == VEC_GP); // the final HLT at CPL 3
    CHECK((calls == 2 && port.writes == 4));
    // A hypercall the partition refuses is #UD at the OUT.
    VendorHarness refused(CpuVendor::Amd);
    refused.cpu.set_hypercall_gate(0xEF);
    refused.cpu.set_hypercall_handler([](Cpu& cpu) { return cpu.raise_ud(); });
    CHECK(refused.run_to_vector({0xE6, 0xEF}) == VEC_UD);
}

TEST_CASE("the AMD model has HWCR, NB_CFG and the legacy performance counters")
{
    CpuHarness amd(CpuVendor::Amd);
    u64 v = 0;
    REQUIRE(amd.cpu.read_msr(amd_msr::MSR_HWCR, v));
    CHECK((v & amd_msr::HWCR_TSC_FREQ_SEL) != 0); // Linux checks it on family 17h
    CHECK(amd.cpu.write_msr(amd_msr::MSR_NB_CFG, 1ull << 46));
    REQUIRE(amd.cpu.read_msr(amd_msr::MSR_NB_CFG, v));
    CHECK(v == 1ull << 46);
    // Linux's PMU probe writes a counter and expects its 48 bits back.
    CHECK(amd.cpu.write_msr(amd_msr::MSR_PERF_CTR0 + 3, ~0ull));
    REQUIRE(amd.cpu.read_msr(amd_msr::MSR_PERF_CTR0 + 3, v));
    CHECK(v == amd_msr::PERF_CTR_MASK);

    CpuHarness intel(CpuVendor::Intel);
    CHECK_FALSE(intel.cpu.read_msr(amd_msr::MSR_HWCR, v));
    CHECK_FALSE(intel.cpu.write_msr(amd_msr::MSR_PERF_CTL0, 0));
}

TEST_CASE("IA32_MISC_ENABLE and IA32_PLATFORM_ID exist on the Intel model only")
{
    u64 v = 0;
    CpuHarness intel(CpuVendor::Intel);
    CHECK(intel.cpu.read_msr(0x1A0, v));
    CHECK(intel.cpu.read_msr(0x17, v));
    CpuHarness amd(CpuVendor::Amd);
    CHECK_FALSE(amd.cpu.read_msr(0x1A0, v));
    CHECK_FALSE(amd.cpu.write_msr(0x1A0, 1));
    CHECK_FALSE(amd.cpu.read_msr(0x17, v));
}

TEST_CASE("IA32_ARCH_CAPABILITIES says the Intel model has no speculative flaws; AMD's has no such MSR")
{
    constexpr u32 MSR_ARCH_CAPABILITIES = 0x10A;
    constexpr u64 RDCL_NO = 1ull << 0, MDS_NO = 1ull << 5, TAA_NO = 1ull << 8, ITS_NO = 1ull << 62,
                  IBRS_ALL = 1ull << 1, TSX_CTRL = 1ull << 7;
    u64 v = 0;
    CpuHarness intel(CpuVendor::Intel);
    CHECK((intel.cpuid.query(7, 0, 0).edx >> 29 & 1) == 1);
    REQUIRE(intel.cpu.read_msr(MSR_ARCH_CAPABILITIES, v));
    // What Linux reads to skip page-table isolation, VERW and the thunks.
    CHECK((v & (RDCL_NO | MDS_NO | TAA_NO | ITS_NO)) == (RDCL_NO | MDS_NO | TAA_NO | ITS_NO));
    // No promise of controls the model lacks (IA32_SPEC_CTRL, TSX_CTRL).
    CHECK((v & (IBRS_ALL | TSX_CTRL)) == 0);
    CHECK_FALSE(intel.cpu.write_msr(MSR_ARCH_CAPABILITIES, v)); // read-only
    // --cpu-features -arch_capabilities takes both away.
    CpuHarness narrowed(CpuVendor::Intel);
    REQUIRE_FALSE(narrowed.cpuid.apply_feature_spec("-arch_capabilities").is_error());
    CHECK((narrowed.cpuid.query(7, 0, 0).edx >> 29 & 1) == 0);
    CHECK_FALSE(narrowed.cpu.read_msr(MSR_ARCH_CAPABILITIES, v));
    CpuHarness amd(CpuVendor::Amd);
    CHECK((amd.cpuid.query(7, 0, 0).edx >> 29 & 1) == 0);
    CHECK_FALSE(amd.cpu.read_msr(MSR_ARCH_CAPABILITIES, v));
}

TEST_CASE("RDPMC reads the AMD model's legacy counters and raises #GP on the Intel model")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        CAPTURE(cpu_vendor_name(vendor));
        VendorHarness h(vendor);
        if (vendor == CpuVendor::Amd)
            REQUIRE(h.cpu.write_msr(amd_msr::MSR_PERF_CTR0 + 2, 0x123456789ABCull));
        h.state.gpr[RCX] = 2;
        const int vector = h.run_to_vector({0x0F, 0x33});
        if (vendor == CpuVendor::Intel) {
            CHECK(vector == VEC_GP);
            continue;
        }
        CHECK(vector == -1);
        CHECK(h.state.gpr[RAX] == 0x56789ABCu);
        CHECK(h.state.gpr[RDX] == 0x1234u);
        h.state.gpr[RCX] = 4; // no fifth legacy counter
        CHECK(h.run_to_vector({0x0F, 0x33}) == VEC_GP);
    }
}

TEST_CASE("SYSRET that sets TF traps for single-step after itself on both models")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        CAPTURE(cpu_vendor_name(vendor));
        VendorHarness h(vendor);
        h.state.msr.star = u64(0x10) << 48;
        h.state.gpr[RCX] = ENTRY; // the user code: HLT
        h.state.gpr[R11] = 0x302;  // TF | IF
        CHECK(h.run_to_vector({0x48, 0x0F, 0x07}) == VEC_DB);
        CHECK(h.frame(1) == ENTRY); // before the HLT ran
        CHECK(h.frame(2) == 0x23);  // at CPL 3
        CHECK((h.state.dr[6] & dbg::DR6_BS) != 0);
    }
}
