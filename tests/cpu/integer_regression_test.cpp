// Regression tests for integer-instruction bugs that the host differential
// tester (tests/difftest) found; each names the behaviour the host CPU showed.
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

#include <vector>

namespace {

// A 64-bit IDT whose vector v leads to a HLT at STUBS + 16 * v, on an IST
// stack, so that a fault leaves the stack under test untouched.
constexpr u64 IDT = 0x3000, STUBS = 0x4000, TSS = 0x5000, IST_TOP = 0x70000;
// Paging with 4 KiB pages over the first 2 MiB, and this page not present.
constexpr u64 HOLE = 0x60000;

void install_idt(CpuHarness& h)
{
    for (unsigned v = 0; v < 32; ++v) {
        const u64 stub = STUBS + 16 * v;
        h.put(stub, {0xF4});
        const u64 lo = (stub & 0xFFFF) | (u64(0x08) << 16) | (u64(0x8E01) << 32) |
                       ((stub >> 16 & 0xFFFF) << 48); // IST 1
        h.put64(IDT + 16 * v, lo);
        h.put64(IDT + 16 * v + 8, 0);
    }
    h.state.idtr = {IDT, 32 * 16 - 1};
    h.state.tr = Segment{0x28, TSS, 0x67, Segment::P | 0xB};
    h.put64(TSS + 0x24, IST_TOP);
}

void map_with_hole(CpuHarness& h)
{
    constexpr u64 PD = 0x22000, PT = 0x23000;
    h.put64(CpuHarness::PML4 + 0x1000, PD | 7);
    h.put64(PD, PT | 7);
    for (u64 page = 0; page < 512; ++page)
        h.put64(PT + 8 * page, page * 0x1000 == HOLE ? 0 : (page * 0x1000) | 7);
}

struct Trap {
    bool taken = false;
    unsigned vector = 0;
    u64 error_code = 0;
};

// Where a run that halted in an exception stub came from.
Trap trap_of(CpuHarness& h)
{
    Trap t;
    const u64 stub = h.state.rip - 1;
    if (stub < STUBS || stub >= STUBS + 32 * 16)
        return t;
    t.taken = true;
    t.vector = static_cast<unsigned>((stub - STUBS) / 16);
    t.error_code = h.get64(h.state.gpr[RSP]);
    return t;
}

CpuHarness& long_mode_with_faults(CpuHarness& h)
{
    h.enter_long64();
    install_idt(h);
    map_with_hole(h);
    return h;
}

} // namespace

TEST_CASE("a shift of a 32-bit register by a masked count of 0 still zero-extends it")
{
    // SHL/SHR/SAR/ROL/ROR/RCL/RCR write their 32-bit destination even when
    // the count masks to 0, clearing bits 63:32 (the flags stay).
    const std::vector<std::vector<u8>> shifts = {
        {0xC1, 0xE0, 0x00}, // shl eax, 0
        {0xC1, 0xC0, 0x20}, // rol eax, 32 (masks to 0)
        {0xD3, 0xE8},       // shr eax, cl (cl = 0)
        {0xD3, 0xD8},       // rcr eax, cl
        {0xD3, 0xF8},       // sar eax, cl
    };
    for (const auto& shift : shifts) {
        CAPTURE(shift[1]);
        CpuHarness h;
        h.enter_long64();
        h.state.gpr[RAX] = 0xFFFFFFFF12345678ull;
        h.state.gpr[RCX] = 0x100; // CL = 0
        std::vector<u8> code = shift;
        code.push_back(0xF4);
        h.mem.write_bytes(CpuHarness::CODE, code.data(), code.size());
        CHECK(h.cpu.run(100) == RunExit::Halted);
        CHECK(h.state.gpr[RAX] == 0x12345678u);
    }
}

TEST_CASE("SHLD of a 32-bit register by a count of 0 still zero-extends it")
{
    CpuHarness h;
    h.enter_long64();
    h.state.gpr[RAX] = 0xFFFFFFFF87654321ull;
    // shld eax, ecx, 0
    CHECK(h.run_code({0x0F, 0xA4, 0xC8, 0x00}) == RunExit::Halted);
    CHECK(h.state.gpr[RAX] == 0x87654321u);
}

TEST_CASE("CMPXCHG leaves a 32-bit register destination alone when the compare fails")
{
    CpuHarness h;
    h.enter_long64();
    h.state.gpr[RCX] = 0xAAAABBBB00000001ull;
    h.state.gpr[RAX] = 0xFFFFFFFF00000002ull;
    // cmpxchg ecx, edx: EAX (2) != ECX (1), so EAX := ECX and ECX is not written
    CHECK(h.run_code({0x0F, 0xB1, 0xD1}) == RunExit::Halted);
    CHECK(h.state.gpr[RCX] == 0xAAAABBBB00000001ull);
    CHECK(h.state.gpr[RAX] == 1);
    CHECK(!h.cpu.flag(rf::ZF));
}

TEST_CASE("XADD with one register as both operands leaves the sum")
{
    CpuHarness h;
    h.enter_long64();
    h.state.gpr[RAX] = 5;
    h.state.gpr[RDX] = 0x1200;
    // xadd eax, eax ; xadd dh, dh
    CHECK(h.run_code({0x0F, 0xC1, 0xC0, 0x0F, 0xC0, 0xF6}) == RunExit::Halted);
    CHECK(h.state.gpr[RAX] == 10);
    CHECK(h.state.gpr[RDX] == 0x2400);
}

TEST_CASE("CALL to a non-canonical target raises #GP before pushing anything on AMD")
{
    // Intel stores the return address first (tests/cpu/integer_vendor_test.cpp).
    CpuHarness h{CpuVendor::Amd};
    long_mode_with_faults(h);
    h.put64(CpuHarness::STACK_TOP - 8, 0x5A5A5A5A5A5A5A5Aull);
    h.state.gpr[RAX] = 0x0000800000000000ull;
    // call rax
    CHECK(h.run_code({0xFF, 0xD0}) == RunExit::Halted);
    const Trap t = trap_of(h);
    CHECK(t.taken);
    CHECK(t.vector == VEC_GP);
    CHECK(h.get64(CpuHarness::STACK_TOP - 8) == 0x5A5A5A5A5A5A5A5Aull);
}

TEST_CASE("a read-modify-write instruction faulting on a not-present page reports a write")
{
    // The first access of an RMW instruction is a read, but hardware checks
    // it as a write: the #PF error code has W set even though P is clear.
    const std::vector<std::vector<u8>> rmw = {
        {0x01, 0x03},             // add [rbx], eax
        {0xFF, 0x03},             // inc dword [rbx]
        {0xF7, 0x1B},             // neg dword [rbx]
        {0xD1, 0x23},             // shl dword [rbx], 1
        {0x0F, 0xA5, 0x03},       // shld [rbx], eax, cl
        {0x0F, 0xBA, 0x2B, 0x03}, // bts dword [rbx], 3
        {0x0F, 0xC1, 0x03},       // xadd [rbx], eax
        {0x0F, 0xB1, 0x03},       // cmpxchg [rbx], eax
        {0x0F, 0xC7, 0x0B},       // cmpxchg8b [rbx]
        {0x87, 0x03},             // xchg [rbx], eax
    };
    for (const auto& insn : rmw) {
        CAPTURE(insn[1]);
        CpuHarness h;
        long_mode_with_faults(h);
        h.state.gpr[RBX] = HOLE + 0x10;
        h.state.gpr[RCX] = 1;
        std::vector<u8> code = insn;
        code.push_back(0xF4);
        h.mem.write_bytes(CpuHarness::CODE, code.data(), code.size());
        CHECK(h.cpu.run(100) == RunExit::Halted);
        const Trap t = trap_of(h);
        CHECK(t.taken);
        CHECK(t.vector == VEC_PF);
        CHECK(t.error_code == 0x2); // not present, write, supervisor
        CHECK(h.state.cr2 == HOLE + 0x10);
    }
}

TEST_CASE("a compare faulting on a not-present page reports a read")
{
    CpuHarness h;
    long_mode_with_faults(h);
    h.state.gpr[RBX] = HOLE;
    // cmp [rbx], eax
    CHECK(h.run_code({0x39, 0x03}) == RunExit::Halted);
    const Trap t = trap_of(h);
    CHECK(t.vector == VEC_PF);
    CHECK(t.error_code == 0);
}

TEST_CASE("ENTER checks the new stack top with a write")
{
    CpuHarness h;
    long_mode_with_faults(h);
    h.state.gpr[RSP] = HOLE + 0x1010;
    h.state.gpr[RBP] = HOLE + 0x1100;
    // enter 0x20, 0: the frame pointer fits, the allocation reaches the hole
    CHECK(h.run_code({0xC8, 0x20, 0x00, 0x00}) == RunExit::Halted);
    const Trap t = trap_of(h);
    CHECK(t.vector == VEC_PF);
    CHECK(t.error_code == 0x2);
    CHECK(h.state.cr2 == HOLE + 0x1008 - 0x20);
}

TEST_CASE("[index*scale + disp32] keeps its displacement under 67h with REX.B")
{
    CpuHarness h;
    h.enter_long64();
    h.put64(0x42010, 0x1122334455667788ull);
    h.state.gpr[R10] = 0xFFFFFFFF00000004ull; // R10D = 4; the upper half is not used
    h.state.gpr[R13] = 0x30000;               // a base the encoding does not have
    // mov eax, [r10d*4 + 0x42000] : 67 43 8b 04 95 disp32 (REX.B set, SIB base 101, mod 00)
    CHECK(h.run_code({0x67, 0x43, 0x8B, 0x04, 0x95, 0x00, 0x20, 0x04, 0x00}) == RunExit::Halted);
    CHECK(h.state.gpr[RAX] == 0x55667788u);
}

TEST_CASE("MPX, CET and CLDEMOTE encodings run as NOPs on a CPU without them")
{
    CpuHarness h;
    h.enter_long64();
    h.state.gpr[RAX] = 0x42000;
    // bndcl bnd0, [rax] ; rdsspd eax ; cldemote [rax] ; endbr64
    CHECK(h.run_code({0xF3, 0x0F, 0x1A, 0x00, 0xF3, 0x0F, 0x1E, 0xC8, 0x0F, 0x1C, 0x00, 0xF3, 0x0F,
                      0x1E, 0xFA}) == RunExit::Halted);
    CHECK(h.state.rip == CpuHarness::CODE + 16);
    CHECK(h.state.gpr[RAX] == 0x42000);
}

TEST_CASE("AAS propagates the borrow out of AL into AH")
{
    // AX := AX - 6, then AH := AH - 1 (SDM AAS): AL = 4 borrows from AH.
    CpuHarness h;
    h.enter_protected32();
    h.state.gpr[RAX] = 0x0004;
    h.state.rflags |= rf::AF;
    // aas
    CHECK(h.run_code({0x3F}) == RunExit::Halted);
    CHECK((h.state.gpr[RAX] & 0xFFFF) == 0xFE0E);
    CHECK(h.cpu.flag(rf::CF));
    CHECK(h.cpu.flag(rf::AF));
}

TEST_CASE("CALL checks its stack slot before its target")
{
    // A push into a not-present page faults (#PF, W=1) even when the target
    // is non-canonical: the slot is checked first, then the target.
    CpuHarness h;
    long_mode_with_faults(h);
    h.state.gpr[RSP] = HOLE + 0x1004;
    h.state.gpr[RAX] = 0x0000800000000000ull;
    // call rax
    CHECK(h.run_code({0xFF, 0xD0}) == RunExit::Halted);
    const Trap t = trap_of(h);
    CHECK(t.vector == VEC_PF);
    CHECK(t.error_code == 0x2);
    CHECK(h.state.cr2 == HOLE + 0xFFC);
}
