// The debugger's own breakpoints, watchpoints and single-step
// (cpu/core/guest_debug.cpp), with the JIT on: stops are exact whether the
// code runs interpreted, translated or chained.
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

namespace {

// mov ecx, 100 ; loop: inc rax ; inc rbx ; dec ecx ; jnz loop ; hlt
constexpr u64 LOOP = CpuHarness::CODE + 5, INC_RBX = CpuHarness::CODE + 8,
              AFTER_LOOP = CpuHarness::CODE + 15;
void put_loop(CpuHarness& h)
{
    h.put(CpuHarness::CODE, {0xB9, 0x64, 0x00, 0x00, 0x00, 0x48, 0xFF, 0xC0, 0x48, 0xFF, 0xC3, 0xFF,
                             0xC9, 0x75, 0xF6, 0xF4});
}

struct JitHarness : CpuHarness {
    JitHarness()
    {
        enter_long64();
        cpu.set_jit_enabled(true);
        cpu.set_jit_threshold(1); // every block is translated on its first run
        put_loop(*this);
    }
};

} // namespace

TEST_CASE("A debugger breakpoint in the middle of a translated, chained block stops before its instruction")
{
    JitHarness h;
    // Forty rounds of the loop first: its block is translated and chained to itself.
    CHECK(h.cpu.run(1 + 4 * 40) == RunExit::BudgetExhausted);
    GuestDebugSet set;
    set.breakpoints = {INC_RBX};
    h.cpu.set_guest_debug(set);
    CHECK(h.cpu.run(100000) == RunExit::DebugStop);
    CHECK(h.cpu.debug_event().kind == DebugEvent::Kind::Breakpoint);
    CHECK(h.cpu.debug_event().address == INC_RBX);
    CHECK(h.state.rip == INC_RBX);
    // inc rax ran for the 41st time, inc rbx not yet.
    CHECK(h.state.gpr[RAX] == 41);
    CHECK(h.state.gpr[RBX] == 40);
    // Going on stops again at the next round, not earlier or later.
    CHECK(h.cpu.run(100000) == RunExit::DebugStop);
    CHECK(h.state.rip == INC_RBX);
    CHECK(h.state.gpr[RAX] == 41); // the breakpoint stops before it runs: no progress
    h.cpu.set_guest_debug({});
    CHECK(h.cpu.run(100000) == RunExit::Halted);
    CHECK(h.state.gpr[RBX] == 100);
}

TEST_CASE("A debugger breakpoint at a block's first instruction stops a translated successor chain")
{
    JitHarness h;
    CHECK(h.cpu.run(1 + 4 * 40) == RunExit::BudgetExhausted);
    GuestDebugSet set;
    set.breakpoints = {LOOP};
    h.cpu.set_guest_debug(set);
    CHECK(h.cpu.run(100000) == RunExit::DebugStop);
    CHECK(h.state.rip == LOOP);
    CHECK(h.state.gpr[RAX] == 40);
}

TEST_CASE("A debugger breakpoint outside the running code lets translated code run to the end")
{
    JitHarness h;
    GuestDebugSet set;
    set.breakpoints = {0x500000};
    h.cpu.set_guest_debug(set);
    CHECK(h.cpu.run(100000) == RunExit::Halted);
    CHECK(h.state.rip == AFTER_LOOP + 1);
    CHECK(h.state.gpr[RAX] == 100);
}

TEST_CASE("A debugger write watchpoint stops after the storing instruction and names the address")
{
    CpuHarness h;
    h.enter_long64();
    // mov [0x3000], rax ; mov rbx, 5 ; hlt
    h.put(CpuHarness::CODE, {0x48, 0x89, 0x04, 0x25, 0x00, 0x30, 0x00, 0x00, 0x48, 0xC7, 0xC3, 0x05,
                             0x00, 0x00, 0x00, 0xF4});
    h.state.gpr[RAX] = 0x1122334455667788;
    GuestDebugSet set;
    set.watchpoints = {Watchpoint{0x3004, 2, WatchKind::Write}};
    h.cpu.set_guest_debug(set);
    CHECK(h.cpu.run(1000) == RunExit::DebugStop);
    CHECK(h.cpu.debug_event().kind == DebugEvent::Kind::Watchpoint);
    CHECK(h.cpu.debug_event().address == 0x3004);
    CHECK(h.cpu.debug_event().watch == WatchKind::Write);
    CHECK(h.state.rip == CpuHarness::CODE + 8);
    CHECK(h.get64(0x3000) == 0x1122334455667788);
    CHECK(h.state.gpr[RBX] == 0);
}

TEST_CASE("A debugger read watchpoint ignores writes and stops after a read")
{
    CpuHarness h;
    h.enter_long64();
    // mov [0x3000], rax ; mov rbx, [0x3000] ; hlt
    h.put(CpuHarness::CODE, {0x48, 0x89, 0x04, 0x25, 0x00, 0x30, 0x00, 0x00, 0x48, 0x8B, 0x1C, 0x25,
                             0x00, 0x30, 0x00, 0x00, 0xF4});
    h.state.gpr[RAX] = 7;
    GuestDebugSet set;
    set.watchpoints = {Watchpoint{0x3000, 8, WatchKind::Read}};
    h.cpu.set_guest_debug(set);
    CHECK(h.cpu.run(1000) == RunExit::DebugStop);
    CHECK(h.cpu.debug_event().watch == WatchKind::Read);
    CHECK(h.state.rip == CpuHarness::CODE + 16);
    CHECK(h.state.gpr[RBX] == 7);
}

TEST_CASE("A debugger watchpoint set after the page was cached in the TLB still stops the store")
{
    CpuHarness h;
    h.enter_long64();
    // Two stores to the page: the first caches its translation.
    h.put(CpuHarness::CODE, {0x48, 0x89, 0x04, 0x25, 0x00, 0x30, 0x00, 0x00, 0x48, 0x89, 0x04, 0x25,
                             0x08, 0x30, 0x00, 0x00, 0xF4});
    CHECK(h.cpu.run(1) == RunExit::BudgetExhausted);
    GuestDebugSet set;
    set.watchpoints = {Watchpoint{0x3008, 8, WatchKind::Access}};
    h.cpu.set_guest_debug(set);
    CHECK(h.cpu.run(1000) == RunExit::DebugStop);
    CHECK(h.cpu.debug_event().watch == WatchKind::Access);
    CHECK(h.state.rip == CpuHarness::CODE + 16);
}

TEST_CASE("A debugger single-step retires exactly one instruction, translated code or not")
{
    JitHarness h;
    CHECK(h.cpu.run(1 + 4 * 40) == RunExit::BudgetExhausted);
    GuestDebugSet set;
    set.single_step = true;
    h.cpu.set_guest_debug(set);
    const u64 before = h.cpu.retired();
    const u64 rip = h.state.rip;
    CHECK(h.cpu.run(100000) == RunExit::DebugStop);
    CHECK(h.cpu.debug_event().kind == DebugEvent::Kind::Step);
    CHECK(h.cpu.retired() == before + 1);
    CHECK(h.state.rip != rip);
}

TEST_CASE("The guest's own DR7 breakpoints keep working beside the debugger's")
{
    CpuHarness h;
    h.enter_long64_with_vector_stubs();
    // A guest instruction breakpoint (DR0, L0) on the second NOP, and a
    // debugger breakpoint elsewhere: the guest's #DB is delivered.
    h.state.dr[0] = CpuHarness::CODE + 1;
    h.state.dr[7] = dbg::DR7_FIXED1 | 1;
    GuestDebugSet set;
    set.breakpoints = {0x500000};
    h.cpu.set_guest_debug(set);
    CHECK(h.run_to_vector({0x90, 0x90, 0x90}) == VEC_DB);
}

TEST_CASE("A debugger single-step runs the instruction under a breakpoint instead of stopping at it")
{
    JitHarness h;
    GuestDebugSet set;
    set.breakpoints = {CpuHarness::CODE};
    set.single_step = true;
    h.cpu.set_guest_debug(set);
    CHECK(h.cpu.run(100000) == RunExit::DebugStop);
    CHECK(h.cpu.debug_event().kind == DebugEvent::Kind::Step);
    CHECK(h.state.rip == LOOP);
}
