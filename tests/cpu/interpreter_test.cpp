#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

TEST_CASE("ADD sets OF when two positives overflow")
{
    CpuHarness h;
    h.enter_protected32();
    // mov eax, 0x7fffffff ; add eax, 1
    CHECK(h.run_code({0xB8, 0xFF, 0xFF, 0xFF, 0x7F, 0x83, 0xC0, 0x01}) == RunExit::Halted);
    CHECK(h.state.gpr[RAX] == 0x80000000u);
    const u64 f = h.cpu.rflags();
    CHECK((f & rf::OF) != 0);
    CHECK((f & rf::SF) != 0);
    CHECK((f & rf::CF) == 0);
    CHECK((f & rf::ZF) == 0);
}

TEST_CASE("SUB sets CF on borrow and ZF on equal")
{
    CpuHarness h;
    h.enter_long64();
    // mov rax, 1 ; sub rax, 2
    CHECK(h.run_code({0x48, 0xC7, 0xC0, 0x01, 0, 0, 0, 0x48, 0x83, 0xE8, 0x02}) == RunExit::Halted);
    CHECK(h.state.gpr[RAX] == ~0ull);
    CHECK(h.cpu.flag(rf::CF));
    CHECK(!h.cpu.flag(rf::ZF));
    CHECK(h.cpu.flag(rf::SF));
}

TEST_CASE("a 32-bit register write zero-extends in 64-bit mode")
{
    CpuHarness h;
    h.enter_long64();
    // mov rax, -1 ; mov eax, 5
    CHECK(h.run_code({0x48, 0xC7, 0xC0, 0xFF, 0xFF, 0xFF, 0xFF, 0xB8, 5, 0, 0, 0}) ==
          RunExit::Halted);
    CHECK(h.state.gpr[RAX] == 5);
}

TEST_CASE("a loop with DEC and JNZ counts down")
{
    CpuHarness h;
    h.enter_long64();
    // mov ecx, 10 ; xor eax, eax ; l: add eax, ecx ; dec ecx ; jnz l
    CHECK(h.run_code({0xB9, 10, 0, 0, 0, 0x31, 0xC0, 0x01, 0xC8, 0xFF, 0xC9, 0x75, 0xFA}) ==
          RunExit::Halted);
    CHECK(h.state.gpr[RAX] == 55);
    CHECK(h.state.gpr[RCX] == 0);
}

TEST_CASE("CALL and RET use the stack")
{
    CpuHarness h;
    h.enter_long64();
    // call +1 ; hlt ; mov eax, 7 ; ret   (the HLT after the call is where RET lands)
    CHECK(h.run_code({0xE8, 0x01, 0, 0, 0, 0xF4, 0xB8, 7, 0, 0, 0, 0xC3}) == RunExit::Halted);
    CHECK(h.state.gpr[RAX] == 7);
    CHECK(h.state.gpr[RSP] == CpuHarness::STACK_TOP);
}

TEST_CASE("DIV by zero raises #DE through the IDT")
{
    CpuHarness h;
    h.enter_long64();
    // IDT at 0x3000 with vector 0 → handler at 0x11000 (mov ebx, 0xDE ; hlt)
    const u64 idt = 0x3000, handler = 0x11000;
    u64 lo = (handler & 0xFFFF) | (u64(0x08) << 16) | (u64(0x8E) << 40) |
             ((handler >> 16 & 0xFFFF) << 48);
    h.put64(idt, lo);
    h.put64(idt + 8, handler >> 32);
    h.state.idtr = {idt, 0xFFF};
    h.put(handler, {0xBB, 0xDE, 0, 0, 0, 0xF4});
    // xor ecx, ecx ; div ecx
    CHECK(h.run_code({0x31, 0xC9, 0xF7, 0xF1}) == RunExit::Halted);
    CHECK(h.state.gpr[RBX] == 0xDE);
    // The pushed RIP is the faulting DIV.
    CHECK(h.get64(h.state.gpr[RSP]) == CpuHarness::CODE + 2);
    // A fault pushes RFLAGS with RF set (kvm-unit-tests idt_test checks it);
    // the handler itself runs with RF clear.
    CHECK((h.get64(h.state.gpr[RSP] + 16) & rf::RF) != 0);
    CHECK((h.state.rflags & rf::RF) == 0);
}

TEST_CASE("a triple fault ends the run")
{
    CpuHarness h;
    h.enter_long64();
    h.state.idtr = {0, 0}; // no usable IDT: #UD → #GP → #DF → shutdown
    CHECK(h.run_code({0x0F, 0x0B}) == RunExit::TripleFault);
}

TEST_CASE("self-modifying code runs the new bytes")
{
    CpuHarness h;
    h.enter_long64();
    // mov byte [rip+1], 0x42 ... then the patched instruction: mov al, 0x00 → mov al, 0x42
    // c6 05 01 00 00 00 42   mov byte [rip+1], 0x42   (targets the imm8 of the next insn)
    // b0 00                  mov al, 0
    CHECK(h.run_code({0xC6, 0x05, 0x01, 0, 0, 0, 0x42, 0xB0, 0x00}) == RunExit::Halted);
    CHECK((h.state.gpr[RAX] & 0xFF) == 0x42);
}

TEST_CASE("REP MOVSB copies and advances the registers")
{
    CpuHarness h;
    h.enter_long64();
    h.put(0x40000, {1, 2, 3, 4, 5});
    // mov esi, 0x40000 ; mov edi, 0x41000 ; mov ecx, 5 ; rep movsb
    CHECK(h.run_code({0xBE, 0, 0, 4, 0, 0xBF, 0, 0x10, 4, 0, 0xB9, 5, 0, 0, 0, 0xF3, 0xA4}) ==
          RunExit::Halted);
    u8 out[5];
    h.mem.read_bytes(0x41000, out, 5);
    CHECK(out[0] == 1);
    CHECK(out[4] == 5);
    CHECK(h.state.gpr[RCX] == 0);
    CHECK(h.state.gpr[RSI] == 0x40005);
    CHECK(h.state.gpr[RDI] == 0x41005);
}

TEST_CASE("a fault whose handler faults again at once still ends the run at the budget")
{
    CpuHarness h;
    // Real mode: the #UD vector points back at the UD2, forever. Nothing ever
    // retires, yet run() must return once the budget is spent.
    h.put(0x18, {0x00, 0x00, 0x00, 0x10}); // IVT[6] = 1000:0000
    h.put(0x10000, {0x0F, 0x0B});
    h.cpu.load_segment_real(CS, 0x1000);
    h.state.rip = 0;
    h.state.gpr[RSP] = 0x8000;
    CHECK(h.cpu.run(1000) == RunExit::BudgetExhausted);
    CHECK(h.cpu.retired() == 0);
}
