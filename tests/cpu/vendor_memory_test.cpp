// Memory-access corners where Intel and AMD processors differ: the 4 GiB
// wrap of a flat 32-bit segment, F16C's memory operands, masked stores and
// gathers that fault part-way. The expected values are the hosts' (Intel:
// ../shared/notes/intel-host, difftest seeds 1-6; AMD: cpu-difftest here).
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

namespace {

// 32-bit protected mode with paging and a 32-bit IDT whose every vector
// leads to a stub that records the vector in EBX (mov ebx, vector ; hlt).
// Two 4 MiB pages map linear 0 and linear 0xFFC00000 onto the 4 MiB of
// RAM, so an access that wraps past 4 GiB touches RAM on both sides:
// linear 0xFFFFFFF8 is physical 0x3FFFF8, linear 0 is physical 0.
struct Flat32 {
    static constexpr u64 PD = 0x30000, PT = 0x31000, IDT = 0x3000, STUBS = 0x12000;
    static constexpr u32 NO_FAULT = 0xEEEEEEEE; // EBX when no stub ran
    CpuHarness h;

    explicit Flat32(CpuVendor vendor) : h(vendor)
    {
        h.enter_protected32();
        for (unsigned v = 0; v < 32; ++v) {
            const u32 stub = static_cast<u32>(STUBS + v * 16);
            h.put64(IDT + v * 8, (stub & 0xFFFF) | (u64(0x08) << 16) | (u64(0x8E) << 40) |
                                     (u64(stub >> 16) << 48));
            h.put(stub, {0xBB, u8(v), 0, 0, 0, 0xF4});
        }
        h.state.idtr = {IDT, 32 * 8 - 1};
        pde(0, 0x87);    // 4 MiB page, user, writable, present
        pde(1023, 0x87); // 0xFFC00000 → physical 0
        h.state.cr3 = PD;
        h.state.cr4 |= cr::CR4_PSE | cr::CR4_OSFXSR | cr::CR4_OSXMMEXCPT;
        h.state.cr0 |= cr::CR0_PG;
        h.state.gpr[RBX] = NO_FAULT;
    }
    void pde(unsigned i, u32 value) { h.mem.write_bytes(PD + 4 * i, &value, 4); }
    // Linear 0..4 MiB through 4 KiB pages instead, with page 0 not present.
    void unmap_page_zero()
    {
        for (u32 i = 1; i < 1024; ++i) {
            const u32 pte = (i << 12) | 0x7;
            h.mem.write_bytes(PT + 4 * i, &pte, 4);
        }
        pde(0, static_cast<u32>(PT) | 0x7);
    }
    // CPL 3 (ring-3 code and data, a TSS for the way back) with alignment
    // checking on: CR0.AM and EFLAGS.AC.
    void enter_cpl3_with_alignment_checks()
    {
        const u64 user_code = 0x00CFFB000000FFFFull, user_data = 0x00CFF3000000FFFFull;
        h.put64(CpuHarness::GDT + 24, user_code);
        h.put64(CpuHarness::GDT + 32, user_data);
        const u64 tss = 0x5000;
        const u32 esp0 = 0x70000, ss0 = 0x10;
        h.mem.write_bytes(tss + 4, &esp0, 4);
        h.mem.write_bytes(tss + 8, &ss0, 4);
        h.state.tr.base = tss;
        h.state.tr.limit = 0x67;
        h.state.tr.attr = 0x8B;
        h.cpu.set_segment_from_descriptor(h.state.seg[CS], 0x1B, user_code);
        for (unsigned s : {DS, ES, SS, FS, GS})
            h.cpu.set_segment_from_descriptor(h.state.seg[s], 0x23, user_data);
        h.state.cr0 |= cr::CR0_AM;
        h.state.rflags |= rf::AC;
    }
    // Runs the code; the vector a stub recorded, or NO_FAULT.
    u32 run(std::initializer_list<u8> code)
    {
        h.state.rip = CpuHarness::CODE;
        h.state.events.halted = false;
        REQUIRE(h.run_code(code) == RunExit::Halted);
        return static_cast<u32>(h.state.gpr[RBX]);
    }
    u64 phys64(u64 addr) { return h.get64(addr); }
};

} // namespace

TEST_CASE("Intel: a 32-bit load past 4 GiB in a flat segment wraps to linear 0")
{
    Flat32 m{CpuVendor::Intel};
    m.h.put64(0x3FFFF8, 0x1111111111111111ull); // linear 0xFFFFFFF8
    m.h.put64(0, 0x2222222222222222ull);        // linear 0
    m.h.state.gpr[RSI] = 0xFFFFFFF8;
    // movups xmm0, [esi] (Intel host: seed 1 case 2108 and hundreds more)
    CHECK(m.run({0x0F, 0x10, 0x06}) == Flat32::NO_FAULT);
    CHECK(m.h.state.fpu.xmm[0][0] == 0x1111111111111111ull);
    CHECK(m.h.state.fpu.xmm[0][1] == 0x2222222222222222ull);
}

TEST_CASE("AMD: a 32-bit load past 4 GiB in a flat segment raises #GP, or #SS through SS")
{
    Flat32 m{CpuVendor::Amd};
    m.h.state.gpr[RSI] = 0xFFFFFFF8;
    CHECK(m.run({0x0F, 0x10, 0x06}) == VEC_GP); // movups xmm0, [esi]
    m.h.state.gpr[RBX] = Flat32::NO_FAULT;
    m.h.state.gpr[RBP] = 0xFFFFFFF8;
    CHECK(m.run({0x0F, 0x10, 0x45, 0x00}) == VEC_SS); // movups xmm0, [ebp]
}

TEST_CASE("Intel: a 32-bit store past 4 GiB writes both linear 0xFFFFFFF8 and linear 0")
{
    Flat32 m{CpuVendor::Intel};
    m.h.state.fpu.xmm[0] = {0x3333333333333333ull, 0x4444444444444444ull};
    m.h.state.gpr[RSI] = 0xFFFFFFF8;
    // movups [esi], xmm0, then a 4-byte read-modify-write across the wrap:
    // add dword [edi], 1 with EDI = 0xFFFFFFFE (bytes 0xFFFFFFFE..0x1)
    m.h.state.gpr[RDI] = 0xFFFFFFFE;
    CHECK(m.run({0x0F, 0x11, 0x06, 0x83, 0x07, 0x01}) == Flat32::NO_FAULT);
    CHECK(m.phys64(0x3FFFF8) == 0x3334333333333333ull); // 0x44443333 + 1 at 0xFFFFFFFE
    CHECK(m.phys64(0) == 0x4444444444444444ull);
}

TEST_CASE("Intel: a wrapped 32-bit store faults on linear 0 and stores nothing before it")
{
    Flat32 m{CpuVendor::Intel};
    m.unmap_page_zero();
    m.h.put64(0x3FFFF8, 0x5555555555555555ull);
    m.h.state.fpu.xmm[0] = {0x3333333333333333ull, 0x4444444444444444ull};
    m.h.state.gpr[RSI] = 0xFFFFFFF8;
    CHECK(m.run({0x0F, 0x11, 0x06}) == VEC_PF); // movups [esi], xmm0
    CHECK(m.h.state.cr2 == 0);
    CHECK((m.h.get64(m.h.state.gpr[RSP]) & 0xFFFFFFFF) == 0x2); // not present, write
    CHECK(m.phys64(0x3FFFF8) == 0x5555555555555555ull);
    // The same load faults on linear 0 too (a read: error code 0).
    m.h.state.gpr[RBX] = Flat32::NO_FAULT;
    m.h.state.gpr[RSP] = CpuHarness::STACK_TOP;
    CHECK(m.run({0x0F, 0x10, 0x06}) == VEC_PF); // movups xmm0, [esi]
    CHECK(m.h.state.cr2 == 0);
}

TEST_CASE("Intel: a wrapped 32-bit access reports #PF at its first byte when that page faults")
{
    Flat32 m{CpuVendor::Intel};
    m.pde(1023, 0);
    m.h.state.gpr[RCX] = 0xFFFFFFFF;
    // vperm2i128 ymm6, ymm2, [ecx], 0x55 (Intel host: seed 1 case 2108, #PF(0xffffffff))
    m.h.state.cr4 |= cr::CR4_OSXSAVE;
    m.h.state.xcr0 = 7;
    CHECK(m.run({0xC4, 0xE3, 0x6D, 0x46, 0x31, 0x55}) == VEC_PF);
    CHECK(m.h.state.cr2 == 0xFFFFFFFF);
}

TEST_CASE("Intel: a misaligned access across 4 GiB at CPL 3 raises #AC, not a limit fault")
{
    Flat32 m{CpuVendor::Intel};
    m.enter_cpl3_with_alignment_checks();
    m.h.state.gpr[RSI] = 0xFFFFFFFA;
    // movq xmm5, [esi] (Intel host: seed 1 case 37570)
    CHECK(m.run({0xF3, 0x0F, 0x7E, 0x2E}) == VEC_AC);
}

TEST_CASE("Intel: a misaligned PUSH across 4 GiB at CPL 3 raises #AC, not #SS")
{
    Flat32 m{CpuVendor::Intel};
    m.enter_cpl3_with_alignment_checks();
    m.h.state.gpr[RSP] = 3;
    // push 0x6F (Intel host: seed 1 case 3181)
    CHECK(m.run({0x6A, 0x6F}) == VEC_AC);
}

TEST_CASE("AMD: a misaligned access across 4 GiB at CPL 3 raises the limit fault first")
{
    Flat32 m{CpuVendor::Amd};
    m.enter_cpl3_with_alignment_checks();
    m.h.state.gpr[RSI] = 0xFFFFFFFA;
    CHECK(m.run({0xF3, 0x0F, 0x7E, 0x2E}) == VEC_GP); // movq xmm5, [esi]
    m.h.state.gpr[RBX] = Flat32::NO_FAULT;
    m.enter_cpl3_with_alignment_checks();
    m.h.state.gpr[RSP] = 3;
    CHECK(m.run({0x6A, 0x6F}) == VEC_SS); // push 0x6F
}

namespace {

// 64-bit code with AVX enabled; the first 1 GiB mapped, 0x40000000 up not.
struct Avx64 {
    CpuHarness h;
    explicit Avx64(CpuVendor vendor, bool user_with_alignment_checks = false) : h(vendor)
    {
        if (user_with_alignment_checks)
            h.enter_user64_with_alignment_checks();
        else
            h.enter_long64_with_vector_stubs();
        h.state.cr4 |= cr::CR4_OSFXSR | cr::CR4_OSXMMEXCPT | cr::CR4_OSXSAVE;
        h.state.xcr0 = 7;
    }
};

// vcvtps2ph qword [rcx], xmm0, 0
constexpr std::initializer_list<u8> VCVTPS2PH_M64 = {0xC4, 0xE3, 0x79, 0x1D, 0x01, 0x00};

} // namespace

TEST_CASE("VCVTPS2PH to memory: Intel sets MXCSR's flags before the store's #PF, AMD does not")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Avx64 m{vendor};
        FpuState& f = m.h.state.fpu;
        f.mxcsr = 0x1FC0;                // all masked, DAZ
        f.xmm[0] = {0x3F800001, 0};      // 1 + 2^-23: inexact in binary16 (PE)
        m.h.state.gpr[RCX] = 0x40000000; // not mapped
        CHECK(m.h.run_to_vector(VCVTPS2PH_M64) == VEC_PF);
        // Intel host: seed 1 case 56354 (0x1fc0 → 0x1ff8 with #PF); AMD host: unchanged.
        CHECK(f.mxcsr == (vendor == CpuVendor::Intel ? 0x1FE0u : 0x1FC0u));
    }
}

TEST_CASE("VCVTPS2PH to memory: Intel raises an unmasked exception before the store's #PF or #GP")
{
    for (u64 address : {0x40000000ull, 0x8000000000000000ull}) {
        Avx64 m{CpuVendor::Intel};
        FpuState& f = m.h.state.fpu;
        f.mxcsr = 0x0F80; // PM unmasked
        f.xmm[0] = {0x3F800001, 0};
        m.h.state.gpr[RCX] = address;
        // Intel host: seed 1 case 123675 (#XM, not #PF), seed 5 case 87867 (#XM, not #GP)
        CHECK(m.h.run_to_vector(VCVTPS2PH_M64) == VEC_XM);
        CHECK(f.mxcsr == 0x0FA0);
    }
}

TEST_CASE("VCVTPH2PS and VCVTPS2PH m64 at CPL 3: Intel does not check alignment, AMD raises #AC")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Avx64 m{vendor, true};
        FpuState& f = m.h.state.fpu;
        m.h.put64(0x30001, 0x3C003C003C003C00ull); // four 1.0 halves, misaligned
        m.h.state.gpr[RAX] = 0x30001;
        // vcvtph2ps xmm1, [rax] (Intel host: seed 2 case 123439, no fault)
        const int load = m.h.run_to_vector({0xC4, 0xE2, 0x79, 0x13, 0x08});
        if (vendor == CpuVendor::Intel) {
            CHECK(load == VEC_GP); // the trailing HLT at CPL 3: the load completed
            CHECK(f.xmm[1][0] == 0x3F8000003F800000ull);
            CHECK(f.xmm[1][1] == 0x3F8000003F800000ull);
        } else {
            CHECK(load == VEC_AC);
        }
    }
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Avx64 m{vendor, true};
        m.h.state.fpu.xmm[1] = {0x3F8000003F800000ull, 0x3F8000003F800000ull};
        m.h.state.gpr[RAX] = 0x30003;
        // vcvtps2ph [rax], xmm1, 0 (Intel host: seed 6 case 152653, no #AC)
        const int store = m.h.run_to_vector({0xC4, 0xE3, 0x79, 0x1D, 0x08, 0x00});
        if (vendor == CpuVendor::Intel) {
            CHECK(store == VEC_GP);
            CHECK(m.h.get64(0x30003) == 0x3C003C003C003C00ull);
        } else {
            CHECK(store == VEC_AC);
        }
    }
}

TEST_CASE("VPMASKMOVD store: an element split onto a faulting page reports its last byte on Intel")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Avx64 m{vendor};
        FpuState& f = m.h.state.fpu;
        f.xmm[1] = {0, 0};
        f.ymm_high[1] = {0, 0x8000000000000000ull}; // mask: element 7 only
        m.h.state.gpr[RAX] = 0x3FFFFFE3;            // element 7: 0x3FFFFFFF..0x40000002
        // vpmaskmovd [rax], ymm1, ymm2 (Intel host: seed 1 case 72822, CR2 at the
        // element's last byte; AMD host: the unmapped page's first byte)
        CHECK(m.h.run_to_vector({0xC4, 0xE2, 0x75, 0x8E, 0x10}) == VEC_PF);
        CHECK(m.h.state.cr2 == (vendor == CpuVendor::Intel ? 0x40000002u : 0x40000000u));
    }
}

TEST_CASE("A gather that faults: Intel leaves the mask sign-extended and its upper half zero")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Avx64 m{vendor};
        FpuState& f = m.h.state.fpu;
        m.h.state.gpr[RAX] = 0x8000000000000000ull;                // non-canonical: element 1 faults
        f.xmm[1] = {0, 0};                                         // indices
        f.xmm[2] = {0x4C24C000BF5FD834ull, 0x94EB06CAE8DC85F3ull}; // mask: element 0 off, 1 on
        f.ymm_high[2] = {0xFFFFFFFFFFFFFFFFull, 0x20};
        // vgatherqpd xmm0, [rax + xmm1], xmm2 (Intel host: seed 2 case 192525)
        CHECK(m.h.run_to_vector({0xC4, 0xE2, 0xE9, 0x93, 0x04, 0x08}) == VEC_GP);
        CHECK(f.xmm[2][0] == 0);
        if (vendor == CpuVendor::Intel) {
            CHECK(f.xmm[2][1] == 0xFFFFFFFFFFFFFFFFull);
            CHECK(f.ymm_high[2][0] == 0);
            CHECK(f.ymm_high[2][1] == 0);
        } else {
            CHECK(f.xmm[2][1] == 0x94EB06CAE8DC85F3ull);
            CHECK(f.ymm_high[2][0] == 0xFFFFFFFFFFFFFFFFull);
            CHECK(f.ymm_high[2][1] == 0x20);
        }
    }
}

TEST_CASE("A gather that faults: Intel sign-extends the mask across the vector length, unused elements too")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Avx64 m{vendor};
        FpuState& f = m.h.state.fpu;
        m.h.state.gpr[RAX] = 0x8000000000000000ull; // non-canonical: element 0 faults
        f.xmm[1] = {0, 0};
        // VEX.128 vgatherqps xmm0, [rax + xmm1], xmm2: two elements, four mask
        // dwords (Intel Xeon host: seed 101 case 13892)
        f.xmm[2] = {0x7FFCD557FFA95211ull, 0x3F042A5CC0000000ull};
        f.ymm_high[2] = {0x1111, 0x2222};
        f.ymm_high[0] = {0x3333, 0x4444};
        CHECK(m.h.run_to_vector({0xC4, 0xE2, 0x69, 0x93, 0x04, 0x08}) == VEC_GP);
        if (vendor == CpuVendor::Intel) {
            CHECK(f.xmm[2][0] == 0x00000000FFFFFFFFull);
            CHECK(f.xmm[2][1] == 0x00000000FFFFFFFFull);
            CHECK(f.ymm_high[2][0] == 0);
        } else {
            CHECK(f.xmm[2][1] == 0x3F042A5CC0000000ull);
            CHECK(f.ymm_high[2][0] == 0x1111);
        }
        CHECK(f.ymm_high[0][1] == 0x4444); // nothing loaded: the destination as it was
    }
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Avx64 m{vendor};
        FpuState& f = m.h.state.fpu;
        m.h.state.gpr[RAX] = 0x8000000000000000ull;
        f.xmm[1] = {0, 0};
        f.ymm_high[1] = {0, 0};
        // VEX.256 vpgatherqd xmm0, [rax + ymm1], xmm2: an XMM mask, a 256-bit
        // vector length (Intel Xeon host: seed 101 case 36692)
        f.xmm[2] = {0x5009C00080000000ull, 0xC82C0000807D5860ull};
        f.ymm_high[2] = {0x00000000BF800000ull, 0xFFD82848731E4326ull};
        CHECK(m.h.run_to_vector({0xC4, 0xE2, 0x6D, 0x91, 0x04, 0x08}) == VEC_GP);
        if (vendor == CpuVendor::Intel) {
            CHECK(f.ymm_high[2][0] == 0x00000000FFFFFFFFull);
            CHECK(f.ymm_high[2][1] == 0xFFFFFFFF00000000ull);
        } else {
            CHECK(f.ymm_high[2][0] == 0x00000000BF800000ull);
        }
    }
}

TEST_CASE("A gather that faults after loading an element: Intel has cleared the destination's upper half")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Avx64 m{vendor};
        FpuState& f = m.h.state.fpu;
        m.h.put64(0x30000, 0x1234);
        m.h.state.gpr[RAX] = 0x30000;
        f.xmm[1] = {0x4000000000000000ull, 0}; // element 1 at 0x40030000: not mapped
        f.xmm[2] = {0x8000000000000000ull, 0x8000000000000000ull};
        f.ymm_high[0] = {0x5555, 0x6666};
        // VEX.128 vgatherdpd xmm0, [rax + xmm1], xmm2 (Intel Xeon host: seed 101
        // case 143338, YMM6.hi 0 after #PF on element 1)
        CHECK(m.h.run_to_vector({0xC4, 0xE2, 0xE9, 0x92, 0x04, 0x08}) == VEC_PF);
        CHECK(f.xmm[0][0] == 0x1234);
        CHECK(f.ymm_high[0][0] == (vendor == CpuVendor::Intel ? 0u : 0x5555u));
    }
}

TEST_CASE("Intel: a misaligned access running past the canonical lower half raises #AC before #GP")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Avx64 m{vendor, true};
        m.h.state.gpr[RSI] = 0x7FFFFFFFFFFFull;
        // cvtpi2pd xmm0, [rsi] (Intel Xeon host: seed 101 case 27730)
        CHECK(m.h.run_to_vector({0x66, 0x0F, 0x2A, 0x06}) ==
              (vendor == CpuVendor::Intel ? VEC_AC : VEC_GP));
    }
}

TEST_CASE("VCVTPS2PH with UE unmasked: Intel reports PE for a result inexact once denormalized")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Avx64 m{vendor};
        FpuState& f = m.h.state.fpu;
        f.mxcsr = 0x6101; // round toward zero, only DM masked, IE already set
        // 2^-95 and the smallest denormal: exact in 11 bits, 0 as binary16
        f.xmm[0] = {0x0000000010000000ull, 0xFFF23F0000000001ull};
        // vcvtps2ph xmm1, xmm0, 4 (Intel Xeon host: seed 102 case 191341, 0x6133)
        CHECK(m.h.run_to_vector({0xC4, 0xE3, 0x79, 0x1D, 0xC1, 0x04}) == VEC_XM);
        CHECK(f.mxcsr == (vendor == CpuVendor::Intel ? 0x6133u : 0x6113u));
    }
}

TEST_CASE("VPMASKMOVD store running onto a faulting page: Intel reports the last selected byte")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Avx64 m{vendor};
        FpuState& f = m.h.state.fpu;
        f.xmm[1] = {0, 0};
        f.ymm_high[1] = {0, 0x8000000080000000ull}; // mask: elements 6 and 7
        m.h.state.gpr[RAX] = 0x3FFFFFE6;            // element 6 split, element 7 at 0x40000002
        // vpmaskmovd [rax], ymm1, ymm2 (Intel Xeon host: seed 105 case 1500, CR2
        // at element 7's last byte; AMD: the unmapped page's first byte)
        CHECK(m.h.run_to_vector({0xC4, 0xE2, 0x75, 0x8E, 0x10}) == VEC_PF);
        CHECK(m.h.state.cr2 == (vendor == CpuVendor::Intel ? 0x40000005u : 0x40000000u));
    }
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Avx64 m{vendor};
        FpuState& f = m.h.state.fpu;
        f.xmm[1] = {0x0000000080000000ull, 0}; // mask: element 0 only, on the unmapped page
        f.ymm_high[1] = {0, 0};
        m.h.state.gpr[RAX] = 0x40000004;
        CHECK(m.h.run_to_vector({0xC4, 0xE2, 0x75, 0x8E, 0x10}) == VEC_PF);
        CHECK(m.h.state.cr2 == 0x40000004u); // one page: the first byte on both
    }
}

TEST_CASE("A VEX.256 QPS gather that faults after an element: Intel keeps the XMM destination's upper half")
{
    Avx64 m{CpuVendor::Intel};
    FpuState& f = m.h.state.fpu;
    m.h.put64(0x30000, 0x1234);
    m.h.state.gpr[RAX] = 0x30000;
    f.xmm[1] = {0, 0x0400000000000000ull}; // element 1 at 0x30000 + 2^58: non-canonical
    f.ymm_high[1] = {0, 0};
    f.xmm[2] = {0x8000000080000000ull, 0x8000000080000000ull};
    f.ymm_high[0] = {0x5555, 0x6666};
    // VEX.256 vgatherqps xmm0, [rax + ymm1], xmm2 (Intel Xeon host: seed 22
    // case 143592, YMM13.hi kept after #GP on element 1)
    CHECK(m.h.run_to_vector({0xC4, 0xE2, 0x6D, 0x93, 0x04, 0x08}) == VEC_GP);
    CHECK(f.xmm[0][0] == 0x1234);
    CHECK(f.ymm_high[0][0] == 0x5555);
}
