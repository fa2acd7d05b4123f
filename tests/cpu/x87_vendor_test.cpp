// Where Intel's and AMD's x87 differ: the last-opcode register (FOP), stores
// that an unmasked exception suppresses, and the x87 stack after an MMX
// store faults. Each test names the evidence (docs/testing.md, "Vendor
// differences"; the Intel host's output is in notes/intel-host/).
#include "cpu/x87/float80.h"
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

namespace {

constexpr u16 FSW_ES = 1u << 7;
constexpr u64 NON_CANONICAL = 0x8000000000000000ull;

unsigned top(const CpuHarness& h)
{
    return (h.state.fpu.fsw >> 11) & 7;
}

// An initialized x87 (FNINIT's state) with FOP = 0x2AB and control word `fcw`.
void fresh_fpu(CpuHarness& h, u16 fcw)
{
    FpuState& f = h.state.fpu;
    f.fcw = fcw;
    f.fsw = 0;
    f.ftw = 0xFFFF;
    f.fop = 0x2AB;
}

// ST(0) = v, the only register in use (physical register 7, TOP = 7).
void push_one(CpuHarness& h, u64 signif, u16 sign_exp)
{
    FpuState& f = h.state.fpu;
    f.st[7] = X87Register{signif, sign_exp};
    f.ftw = 0x3FFF;
    f.fsw = static_cast<u16>((f.fsw & ~(7u << 11)) | (7u << 11));
}

} // namespace

// ---- FOP (SDM Vol 1 8.1.9; Intel host: unit-x87-float80.txt, 21,646 FOP
// differences in x87_test.cpp's FNSAVE comparison, all without an exception)

TEST_CASE("On Intel an x87 instruction without an unmasked exception leaves FOP as it was")
{
    CpuHarness h{CpuVendor::Intel};
    h.enter_long64();
    fresh_fpu(h, 0x037F);
    CHECK(h.run_code({0xD9, 0xE8}) == RunExit::Halted); // fld1
    CHECK(h.state.fpu.fop == 0x2AB);
    CHECK(h.state.fpu.fip == CpuHarness::CODE); // FIP is recorded on both
}

TEST_CASE("On AMD every non-control x87 instruction records its opcode in FOP")
{
    CpuHarness h{CpuVendor::Amd};
    h.enter_long64();
    fresh_fpu(h, 0x037F);
    CHECK(h.run_code({0xD9, 0xE8}) == RunExit::Halted); // fld1
    CHECK(h.state.fpu.fop == 0x1E8);
}

TEST_CASE("On Intel FOP records an instruction that leaves an unmasked exception pending")
{
    CpuHarness h{CpuVendor::Intel};
    h.enter_long64();
    fresh_fpu(h, 0x037E); // IE unmasked
    // fadd st0, st1 on an empty stack: unmasked stack underflow
    CHECK(h.run_code({0xD8, 0xC1}) == RunExit::Halted);
    CHECK((h.state.fpu.fsw & FSW_ES) != 0);
    CHECK(h.state.fpu.fop == 0x0C1);
}

TEST_CASE("On Intel an x87 instruction that faults on memory leaves FOP as it was")
{
    CpuHarness h{CpuVendor::Intel};
    h.enter_long64_with_vector_stubs();
    fresh_fpu(h, 0x037E);
    h.state.gpr[RBX] = NON_CANONICAL;
    CHECK(h.run_to_vector({0xD9, 0x03}) == VEC_GP); // fld dword [rbx]
    CHECK(h.state.fpu.fop == 0x2AB);
}

// ---- Stores suppressed by an unmasked exception (Intel host: every x87
// store "fault host=none ours=#GP/#SS/#PF" line of difftest-seed1..6.txt)

TEST_CASE("On Intel an x87 store that an unmasked stack underflow suppresses does not touch memory")
{
    CpuHarness h{CpuVendor::Intel};
    h.enter_long64_with_vector_stubs();
    fresh_fpu(h, 0x037E); // IE unmasked, ST0 empty
    h.state.gpr[RCX] = NON_CANONICAL;
    CHECK(h.run_to_vector({0xD9, 0x19}) == -1); // fstp dword [rcx]: no #GP
    CHECK((h.state.fpu.fsw & 0xFF) == (fpx::IE | fpx::SF | FSW_ES));
    CHECK(top(h) == 0); // nothing popped
    // 4 bytes from 2^64 - 2 would wrap to page 0: no #PF either
    fresh_fpu(h, 0x037E);
    h.state.gpr[RAX] = ~0ull - 1;
    CHECK(h.run_to_vector({0xD9, 0x18}) == -1); // fstp dword [rax]
}

TEST_CASE("On Intel FISTP of an infinity with IE unmasked does not touch memory")
{
    // As seed 1 case 50144 (fisttp of +inf, FCW 0x0F7C): no fault on the host.
    CpuHarness h{CpuVendor::Intel};
    h.enter_long64_with_vector_stubs();
    fresh_fpu(h, 0x037E);
    push_one(h, 0x8000000000000000ull, 0x7FFF);
    h.state.gpr[RBX] = 0x40000000; // above the 1 GiB the harness maps: #PF if touched
    CHECK(h.run_to_vector({0xDF, 0x3B}) == -1); // fistp qword [rbx]
    CHECK((h.state.fpu.fsw & 0xFF) == (fpx::IE | FSW_ES));
    CHECK(top(h) == 7); // not popped
}

TEST_CASE("On Intel FST m32 with an unmasked overflow does not touch memory")
{
    CpuHarness h{CpuVendor::Intel};
    h.enter_long64_with_vector_stubs();
    fresh_fpu(h, 0x0377); // OE unmasked
    push_one(h, 0x8000000000000000ull, 0x3FFF + 1000); // 2^1000: too big for a single
    h.state.gpr[RBX] = NON_CANONICAL;
    CHECK(h.run_to_vector({0xD9, 0x13}) == -1); // fst dword [rbx]
    CHECK((h.state.fpu.fsw & (fpx::OE | FSW_ES)) == (fpx::OE | FSW_ES));
}

TEST_CASE("On Intel an x87 store that happens still faults before it changes FSW")
{
    // Masked stack underflow stores the indefinite; an unmasked PE does not
    // suppress the store either.
    CpuHarness h{CpuVendor::Intel};
    h.enter_long64_with_vector_stubs();
    fresh_fpu(h, 0x037F);
    h.state.gpr[RCX] = NON_CANONICAL;
    CHECK(h.run_to_vector({0xD9, 0x19}) == VEC_GP); // fstp dword [rcx]
    CHECK((h.state.fpu.fsw & 0xFF) == 0);
    fresh_fpu(h, 0x035F); // PE unmasked
    push_one(h, 0xAAAAAAAAAAAAAAABull, 0x3FFD); // 1/3: inexact as a single
    CHECK(h.run_to_vector({0xD9, 0x19}) == VEC_GP); // fstp dword [rcx]
    CHECK((h.state.fpu.fsw & 0xFF) == 0);
    CHECK(top(h) == 7);
}

// ---- MMX stores that fault (Intel host: 383 MOVD/MOVQ/MOVNTQ m,mm faults in
// difftest-seed1..6.txt, each with TOP = 0 and FSW's other bits and the tags
// as before)

TEST_CASE("On Intel a faulting MMX store keeps TOP at 0 and puts back the tags")
{
    // seed 1 case 1788: FSW 0x7B36, every register empty, movq [r10+0x78], mm3
    // with a non-canonical address: #GP, and the host's FSW is 0x4336.
    for (CpuVendor v : {CpuVendor::Intel, CpuVendor::Amd}) {
        CpuHarness h{v};
        h.enter_long64_with_vector_stubs();
        h.state.fpu.fcw = 0x0C7F;
        h.state.fpu.fsw = 0x7B36;
        h.state.fpu.ftw = 0xFFFF;
        h.state.gpr[R10] = 0x1DA61076A9663C7Cull;
        CHECK(h.run_to_vector({0x49, 0x0F, 0x7E, 0x5A, 0x78}) == VEC_GP);
        CHECK(h.state.fpu.fsw == (v == CpuVendor::Intel ? 0x4336 : 0x7B36));
        CHECK(h.state.fpu.ftw == 0xFFFF);
    }
}

TEST_CASE("On Intel MOVNTQ and MOVD to memory that fault keep TOP at 0 too")
{
    for (std::initializer_list<u8> code : {std::initializer_list<u8>{0x0F, 0xE7, 0x03},
                                           std::initializer_list<u8>{0x0F, 0x7E, 0x03}}) {
        CpuHarness h{CpuVendor::Intel};
        h.enter_long64_with_vector_stubs();
        h.state.fpu.fsw = 3u << 11;
        h.state.fpu.ftw = 0xFFF0;
        h.state.gpr[RBX] = 0x40000000; // unmapped: #PF
        CHECK(h.run_to_vector(code) == VEC_PF);
        CHECK(top(h) == 0);
        CHECK(h.state.fpu.ftw == 0xFFF0);
    }
}

TEST_CASE("On Intel a faulting MMX load puts back TOP and the tags as on AMD")
{
    CpuHarness h{CpuVendor::Intel};
    h.enter_long64_with_vector_stubs();
    h.state.fpu.fsw = 3u << 11;
    h.state.fpu.ftw = 0xFFFF;
    h.state.gpr[RBX] = NON_CANONICAL;
    CHECK(h.run_to_vector({0x0F, 0x6F, 0x03}) == VEC_GP); // movq mm0, [rbx]
    CHECK(top(h) == 3);
    CHECK(h.state.fpu.ftw == 0xFFFF);
}

TEST_CASE("On Intel an FBSTP whose last two bytes fault has stored its first eight")
{
    // Intel Xeon host, seed 10 case 42045: `fbstp [rsi-0x53]` at 0x10020FF7,
    // #PF at 0x10021000, 0x10020FF7..0x10020FFE written. AMD checks the
    // whole operand first (AMD host).
    constexpr u64 PD = 0x22000, PT = 0x23000, HOLE = 0x60000;
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        CpuHarness h{vendor};
        h.enter_long64_with_vector_stubs();
        // 4 KiB pages over the first 2 MiB, HOLE not present.
        h.put64(CpuHarness::PML4 + 0x1000, PD | 7);
        h.put64(PD, PT | 7);
        for (u64 page = 0; page < 512; ++page)
            h.put64(PT + 8 * page, page * 0x1000 == HOLE ? 0 : (page * 0x1000) | 7);
        fresh_fpu(h, 0x037F);
        h.put64(HOLE - 9, 0xAAAAAAAAAAAAAAAAull);
        h.put(HOLE - 1, {0xAA});
        h.state.gpr[RCX] = HOLE - 9;
        // fld1 ; fbstp [rcx]: BCD 1 is 01 00 00 00 00 00 00 00 | 00 00
        CHECK(h.run_to_vector({0xD9, 0xE8, 0xDF, 0x31}) == VEC_PF);
        CHECK(h.state.cr2 == HOLE);
        CHECK(h.get64(HOLE - 9) == (vendor == CpuVendor::Intel ? 1u : 0xAAAAAAAAAAAAAAAAull));
        u8 last = 0;
        h.mem.read_bytes(HOLE - 1, &last, 1);
        CHECK(last == 0xAA); // the two-byte store faulted
    }
}
