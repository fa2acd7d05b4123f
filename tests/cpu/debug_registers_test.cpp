// Hardware breakpoints (DR0-DR3, DR6, DR7) and the single-step corner cases
// (SDM Vol 3B ch. 18): each test runs a few instructions in long mode, where
// every exception vector leads to a HLT stub, and looks at the #DB frame.
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

namespace {

constexpr u64 DATA = 0x30000;
constexpr u64 DR6_CLEAR = dbg::DR6_FIXED1;

// DR7 bits for breakpoint n: local enable, R/W and LEN fields.
constexpr u64 local_enable(unsigned n) { return 1ull << (2 * n); }
constexpr u64 rw_len(unsigned n, unsigned rw, unsigned len_code)
{
    return (u64(rw) << (16 + 4 * n)) | (u64(len_code) << (18 + 4 * n));
}
constexpr unsigned RW_EXEC = 0, RW_WRITE = 1, RW_IO = 2, RW_RW = 3;
constexpr unsigned LEN1 = 0, LEN2 = 1, LEN8 = 2, LEN4 = 3;

struct DebugHarness : CpuHarness {
    DebugHarness()
    {
        enter_long64_with_vector_stubs();
        state.dr[6] = DR6_CLEAR;
    }
    // The interrupt frame the last exception pushed (64-bit: RIP, CS, RFLAGS, RSP, SS).
    u64 pushed_rip() { return get64(state.gpr[RSP]); }
    u64 pushed_rflags() { return get64(state.gpr[RSP] + 16); }
    void set_dr7(u64 v) { state.dr[7] = v | dbg::DR7_FIXED1; }
};

// 89 04 25 disp32: mov [disp32], eax; 8B 04 25 disp32: mov eax, [disp32].
#define DISP32(a) u8(a), u8((a) >> 8), u8((a) >> 16), u8((a) >> 24)

} // namespace

TEST_CASE("an instruction breakpoint faults before its instruction, with RF clear in the frame")
{
    DebugHarness h;
    h.state.dr[0] = CpuHarness::CODE + 2;
    h.set_dr7(local_enable(0) | rw_len(0, RW_EXEC, LEN1));
    h.state.gpr[RCX] = 0;
    // inc ecx; inc ecx; hlt: the breakpoint is on the second INC.
    CHECK(h.run_to_vector({0xFF, 0xC1, 0xFF, 0xC1}) == VEC_DB);
    CHECK(h.pushed_rip() == CpuHarness::CODE + 2);
    CHECK(h.state.gpr[RCX] == 1); // the first INC ran, the second did not
    CHECK(h.state.dr[6] == (DR6_CLEAR | 1));
    CHECK((h.pushed_rflags() & rf::RF) == 0);
}

TEST_CASE("RF lets the breakpointed instruction run once and is cleared after it")
{
    DebugHarness h;
    h.state.dr[0] = CpuHarness::CODE;
    h.set_dr7(local_enable(0) | rw_len(0, RW_EXEC, LEN1));
    h.state.rflags |= rf::RF;
    h.state.gpr[RCX] = 0;
    CHECK(h.run_to_vector({0xFF, 0xC1, 0x90}) == -1);
    CHECK(h.state.gpr[RCX] == 1);
    CHECK((h.state.rflags & rf::RF) == 0);
}

TEST_CASE("a data write breakpoint traps after the store, the address masked to its length")
{
    DebugHarness h;
    h.state.dr[1] = DATA + 6; // LEN 4: watches DATA+4 .. DATA+7
    h.set_dr7(local_enable(1) | rw_len(1, RW_WRITE, LEN4));
    // mov [DATA+4], al; nop; hlt
    CHECK(h.run_to_vector({0x88, 0x04, 0x25, DISP32(DATA + 4), 0x90}) == VEC_DB);
    CHECK(h.pushed_rip() == CpuHarness::CODE + 7); // trap: after the MOV
    CHECK(h.state.dr[6] == (DR6_CLEAR | 2));
}

TEST_CASE("a write breakpoint ignores reads; a read/write breakpoint sees them")
{
    DebugHarness h;
    h.state.dr[0] = DATA;
    h.set_dr7(local_enable(0) | rw_len(0, RW_WRITE, LEN8));
    // mov eax, [DATA+4]; hlt
    CHECK(h.run_to_vector({0x8B, 0x04, 0x25, DISP32(DATA + 4)}) == -1);
    h.set_dr7(local_enable(0) | rw_len(0, RW_RW, LEN8));
    CHECK(h.run_to_vector({0x8B, 0x04, 0x25, DISP32(DATA + 4)}) == VEC_DB);
    CHECK(h.state.dr[6] == (DR6_CLEAR | 1));
}

TEST_CASE("a data breakpoint on a page already in the TLB still fires after MOV DR7")
{
    DebugHarness h;
    h.state.dr[2] = DATA + 8;
    h.state.gpr[RBX] = local_enable(2) | rw_len(2, RW_WRITE, LEN8) | dbg::DR7_FIXED1;
    // mov [DATA+8], eax (fills the TLB); mov dr7, rbx; mov [DATA+8], eax; hlt
    CHECK(h.run_to_vector({0x89, 0x04, 0x25, DISP32(DATA + 8), 0x0F, 0x23, 0xFB, 0x89, 0x04,
                           0x25, DISP32(DATA + 8)}) == VEC_DB);
    CHECK(h.pushed_rip() == CpuHarness::CODE + 17);
    CHECK(h.state.dr[6] == (DR6_CLEAR | 4));
}

TEST_CASE("a matching breakpoint that is not enabled is reported next to an enabled one")
{
    DebugHarness h;
    h.state.dr[0] = DATA;
    h.state.dr[3] = DATA + 1;
    h.set_dr7(local_enable(0) | rw_len(0, RW_WRITE, LEN4) | rw_len(3, RW_WRITE, LEN1));
    CHECK(h.run_to_vector({0x89, 0x04, 0x25, DISP32(DATA)}) == VEC_DB);
    CHECK(h.state.dr[6] == (DR6_CLEAR | 1 | 8));
}

TEST_CASE("REP STOSB traps after the iteration that hit the breakpoint, RF set in the frame")
{
    DebugHarness h;
    h.state.dr[0] = DATA + 5;
    h.set_dr7(local_enable(0) | rw_len(0, RW_WRITE, LEN1));
    h.state.gpr[RDI] = DATA;
    h.state.gpr[RCX] = 16;
    CHECK(h.run_to_vector({0xF3, 0xAA}) == VEC_DB);
    CHECK(h.pushed_rip() == CpuHarness::CODE); // more iterations to go: RIP stays
    CHECK((h.pushed_rflags() & rf::RF) != 0);
    CHECK(h.state.gpr[RCX] == 10);
    CHECK(h.state.gpr[RDI] == DATA + 6);
}

TEST_CASE("an I/O breakpoint needs CR4.DE and traps after OUT")
{
    DebugHarness h;
    h.state.dr[2] = 0x80;
    h.set_dr7(local_enable(2) | rw_len(2, RW_IO, LEN1));
    CHECK(h.run_to_vector({0xE6, 0x80}) == -1); // R/W = 10 means nothing without DE
    h.state.cr4 |= cr::CR4_DE;
    CHECK(h.run_to_vector({0xE6, 0x80}) == VEC_DB);
    CHECK(h.pushed_rip() == CpuHarness::CODE + 2);
    CHECK(h.state.dr[6] == (DR6_CLEAR | 4));
}

TEST_CASE("DR7.GD makes MOV DR a #DB fault with BD that clears GD")
{
    DebugHarness h;
    h.state.dr[7] = dbg::DR7_FIXED1 | dbg::DR7_GD;
    CHECK(h.run_to_vector({0x90, 0x0F, 0x21, 0xC0}) == VEC_DB); // nop; mov rax, dr0
    CHECK(h.pushed_rip() == CpuHarness::CODE + 1);
    CHECK((h.pushed_rflags() & rf::RF) != 0); // a fault: the MOV restarts with RF
    CHECK(h.state.dr[6] == (DR6_CLEAR | dbg::DR6_BD));
    CHECK((h.state.dr[7] & dbg::DR7_GD) == 0);
}

TEST_CASE("MOV SS holds its single-step trap until after the next instruction")
{
    DebugHarness h;
    h.state.rflags |= rf::TF;
    h.state.gpr[RAX] = 0x10;
    h.state.gpr[RCX] = 0;
    // mov ss, ax; inc ecx; inc ecx; hlt
    CHECK(h.run_to_vector({0x8E, 0xD0, 0xFF, 0xC1, 0xFF, 0xC1}) == VEC_DB);
    CHECK(h.pushed_rip() == CpuHarness::CODE + 4);
    CHECK(h.state.gpr[RCX] == 1);
    CHECK(h.state.dr[6] == (DR6_CLEAR | dbg::DR6_BS));
}

TEST_CASE("a data breakpoint on MOV SS is delivered at the handler of a following INT3")
{
    DebugHarness h;
    h.put64(DATA, 0x10);
    h.state.dr[1] = DATA;
    h.set_dr7(local_enable(1) | rw_len(1, RW_RW, LEN2));
    // mov ss, [DATA]; int3
    CHECK(h.run_to_vector({0x8E, 0x14, 0x25, DISP32(DATA), 0xCC}) == VEC_DB);
    CHECK(h.pushed_rip() == CpuHarness::VECTOR_STUBS + VEC_BP * 16); // #BP entered first
    CHECK(h.state.dr[6] == (DR6_CLEAR | 2));
}

TEST_CASE("INT3 with TF set enters its handler without a single-step trap")
{
    DebugHarness h;
    h.state.rflags |= rf::TF;
    CHECK(h.run_to_vector({0xCC}) == VEC_BP);
}

TEST_CASE("SYSCALL traps for single-step only when SFMASK leaves TF set")
{
    DebugHarness h;
    h.state.msr.star = u64(0x08) << 32;
    h.state.msr.lstar = CpuHarness::CODE + 0x100;
    h.put(CpuHarness::CODE + 0x100, {0x90, 0xF4});
    h.state.msr.sfmask = rf::TF;
    h.state.rflags |= rf::TF;
    h.run_to_vector({0x0F, 0x05});
    CHECK(h.state.rip == CpuHarness::CODE + 0x102); // ran the entry code, halted there

    h.state.msr.sfmask = 0;
    h.state.rflags |= rf::TF;
    CHECK(h.run_to_vector({0x0F, 0x05}) == VEC_DB);
    CHECK(h.pushed_rip() == CpuHarness::CODE + 0x100);
}

TEST_CASE("IRET with RF set skips the breakpoint once; the next visit faults")
{
    DebugHarness h;
    const u64 target = CpuHarness::CODE + 0x40;
    // inc ecx; cmp ecx, 2; jne target; hlt
    h.put(target, {0xFF, 0xC1, 0x83, 0xF9, 0x02, 0x75, 0xF9, 0xF4});
    const u64 frame = CpuHarness::STACK_TOP - 0x100;
    h.put64(frame, target);
    h.put64(frame + 8, 0x08);
    h.put64(frame + 16, rf::FIXED1 | rf::RF);
    h.put64(frame + 24, CpuHarness::STACK_TOP);
    h.put64(frame + 32, 0x10);
    h.state.gpr[RSP] = frame;
    h.state.gpr[RCX] = 0;
    h.state.dr[0] = target;
    h.set_dr7(local_enable(0) | rw_len(0, RW_EXEC, LEN1));
    CHECK(h.run_to_vector({0x48, 0xCF}) == VEC_DB); // iretq
    CHECK(h.pushed_rip() == target);
    CHECK(h.state.gpr[RCX] == 1);
}

TEST_CASE("ICEBP after MOV SS reports its own #DB without the held single-step")
{
    DebugHarness h;
    h.state.rflags |= rf::TF;
    h.state.gpr[RAX] = 0x10;
    CHECK(h.run_to_vector({0x8E, 0xD0, 0xF1}) == VEC_DB); // mov ss, ax; int1
    CHECK(h.pushed_rip() == CpuHarness::CODE + 3);
    CHECK(h.state.dr[6] == DR6_CLEAR);
}

TEST_CASE("REP OUTSB to an I/O breakpoint's port traps after the first iteration")
{
    DebugHarness h;
    h.state.cr4 |= cr::CR4_DE;
    h.state.dr[0] = 0x80;
    h.set_dr7(local_enable(0) | rw_len(0, RW_IO, LEN1));
    h.state.gpr[RSI] = DATA;
    h.state.gpr[RCX] = 4;
    h.state.gpr[RDX] = 0x80;
    CHECK(h.run_to_vector({0xF3, 0x6E}) == VEC_DB);
    CHECK(h.pushed_rip() == CpuHarness::CODE);
    CHECK(h.state.gpr[RCX] == 3);
    CHECK(h.state.dr[6] == (DR6_CLEAR | 1));
}
