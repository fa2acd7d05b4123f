// Hardware task switching in 32-bit protected mode (SDM Vol 3A ch. 8):
// JMP/CALL to a TSS or task gate, IRET with NT=1, task gates in the IDT,
// busy bits, the back link, CR0.TS/CR3/DR7, the T bit and faults after the
// commit point.
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

namespace {

constexpr u64 TSS_A = 0x6000, TSS_B = 0x6100, TSS_C = 0x6200;
constexpr u16 SEL_TSS_A = 0x18, SEL_TSS_B = 0x20, SEL_GATE_B = 0x28, SEL_TSS_C = 0x38,
              SEL_CODE16 = 0x40;
constexpr u64 TASK_B_CODE = 0x11000, TASK_B_STACK = 0x60000;
constexpr u64 IDT = 0x3000, STUBS = 0x12000;

u64 descriptor(u32 base, u32 limit, u8 access, u8 flags)
{
    return (limit & 0xFFFF) | (u64(base & 0xFFFFFF) << 16) | (u64(access) << 40) |
           (u64((limit >> 16) & 0xF) << 48) | (u64(flags) << 52) | (u64(base >> 24) << 56);
}

struct TaskMachine {
    CpuHarness h;

    void put32(u64 addr, u32 v) { h.mem.write_bytes(addr, &v, 4); }
    void put16(u64 addr, u16 v) { h.mem.write_bytes(addr, &v, 2); }
    u32 get32(u64 addr)
    {
        u32 v = 0;
        h.mem.read_bytes(addr, &v, 4);
        return v;
    }
    u16 get16(u64 addr)
    {
        u16 v = 0;
        h.mem.read_bytes(addr, &v, 2);
        return v;
    }
    u8 type_byte(u16 sel)
    {
        u8 v = 0;
        h.mem.read_bytes(CpuHarness::GDT + (sel & ~7u) + 5, &v, 1);
        return v;
    }

    // Task A runs (TR = 0x18, busy); task B's TSS is available and starts
    // at TASK_B_CODE with flat ring-0 segments.
    TaskMachine()
    {
        h.enter_protected32();
        h.put64(CpuHarness::GDT + SEL_TSS_A, descriptor(TSS_A, 0x67, 0x8B, 0));
        h.put64(CpuHarness::GDT + SEL_TSS_B, descriptor(TSS_B, 0x67, 0x89, 0));
        h.put64(CpuHarness::GDT + SEL_GATE_B, (u64(SEL_TSS_B) << 16) | (0x85ull << 40));
        h.put64(CpuHarness::GDT + SEL_TSS_C, descriptor(TSS_C, 0x2B, 0x81, 0));
        h.put64(CpuHarness::GDT + SEL_CODE16, descriptor(0x10000, 0xFFFF, 0x9B, 0));
        h.state.gdtr.limit = 0x4F;
        h.cpu.set_segment_from_descriptor(h.state.tr, SEL_TSS_A,
                                          descriptor(TSS_A, 0x67, 0x8B, 0));
        put32(TSS_B + 0x20, TASK_B_CODE);
        put32(TSS_B + 0x24, 0x2);
        for (unsigned i = 0; i < 8; ++i)
            put32(TSS_B + 0x28 + i * 4, 0xAAAA0001 + i);
        put32(TSS_B + 0x38, TASK_B_STACK); // ESP
        for (unsigned i = 0; i < 6; ++i)
            put32(TSS_B + 0x48 + i * 4, i == CS ? 0x08 : 0x10);
        h.put(TASK_B_CODE, {0xF4});
        // Every exception vector leads to `mov ebx, vector ; hlt`.
        for (unsigned v = 0; v < 32; ++v) {
            const u32 handler = STUBS + v * 16;
            h.put64(IDT + v * 8, (handler & 0xFFFF) | (u64(0x08) << 16) | (u64(0x8E) << 40) |
                                     (u64(handler >> 16) << 48));
            h.put(handler, {0xBB, u8(v), 0, 0, 0, 0xF4});
        }
        h.state.idtr = {IDT, 32 * 8 - 1};
    }
    u32 stack(unsigned i) { return get32(h.state.gpr[RSP] + 4 * i); }
};

} // namespace

TEST_CASE("JMP far to an available TSS saves the old task, loads the new one and moves the busy bit")
{
    TaskMachine m;
    // mov eax, 0x1234 ; jmp 0x20:0
    m.h.run_code({0xB8, 0x34, 0x12, 0, 0, 0xEA, 0, 0, 0, 0, 0x20, 0});
    CHECK(m.h.state.tr.selector == SEL_TSS_B);
    CHECK(m.h.state.rip == TASK_B_CODE + 1);
    CHECK(m.h.state.gpr[RAX] == 0xAAAA0001);
    CHECK(m.h.state.gpr[RSP] == TASK_B_STACK);
    CHECK(m.get32(TSS_A + 0x20) == CpuHarness::CODE + 12); // EIP after the JMP
    CHECK(m.get32(TSS_A + 0x28) == 0x1234);                // EAX
    CHECK(m.type_byte(SEL_TSS_A) == 0x89);                 // no longer busy
    CHECK(m.type_byte(SEL_TSS_B) == 0x8B);
    CHECK(m.h.state.tr.type() == 0xB);
    CHECK((m.h.state.cr0 & cr::CR0_TS) != 0);
    CHECK((m.h.state.rflags & rf::NT) == 0);
    CHECK(m.get16(TSS_B) == 0); // JMP does not link
}

TEST_CASE("CALL through a task gate links the tasks and sets NT; IRET returns and frees the callee")
{
    TaskMachine m;
    // Task B: pushfd ; pop dword [0x7000] ; iret
    m.h.put(TASK_B_CODE, {0x9C, 0x8F, 0x05, 0x00, 0x70, 0x00, 0x00, 0xCF});
    m.h.run_code({0x9A, 0, 0, 0, 0, SEL_GATE_B, 0}); // call 0x28:0
    CHECK(m.h.state.tr.selector == SEL_TSS_A);
    CHECK(m.h.state.rip == CpuHarness::CODE + 8); // returned, then the HLT
    CHECK(m.get16(TSS_B) == SEL_TSS_A);           // back link
    CHECK((m.get32(0x7000) & rf::NT) != 0);       // task B ran nested
    CHECK((m.get32(TSS_B + 0x24) & rf::NT) == 0); // IRET saves NT clear
    CHECK(m.type_byte(SEL_TSS_B) == 0x89);
    CHECK(m.type_byte(SEL_TSS_A) == 0x8B);
    CHECK((m.h.state.rflags & rf::NT) == 0);
}

TEST_CASE("an exception through a task gate in the IDT pushes its error code on the new task's stack")
{
    TaskMachine m;
    m.h.put64(IDT + 13 * 8, (u64(SEL_TSS_B) << 16) | (0x85ull << 40));
    // mov ax, 0x1234 ; mov es, ax  (#GP(0x1234): past the GDT's limit)
    m.h.run_code({0x66, 0xB8, 0x34, 0x12, 0x8E, 0xC0});
    CHECK(m.h.state.tr.selector == SEL_TSS_B);
    CHECK(m.h.state.rip == TASK_B_CODE + 1);
    CHECK(m.h.state.gpr[RSP] == TASK_B_STACK - 4);
    CHECK(m.get32(TASK_B_STACK - 4) == 0x1234);
    CHECK(m.get32(TSS_A + 0x20) == CpuHarness::CODE + 4); // the faulting MOV
    CHECK(m.get16(TSS_B) == SEL_TSS_A);
    CHECK((m.h.state.rflags & rf::NT) != 0);
}

TEST_CASE("JMP far to a busy TSS raises #GP with its selector and switches nothing")
{
    TaskMachine m;
    m.h.run_code({0xEA, 0, 0, 0, 0, SEL_TSS_A, 0});
    CHECK(m.h.state.gpr[RBX] == 13);
    CHECK(m.stack(0) == SEL_TSS_A);
    CHECK(m.h.state.tr.selector == SEL_TSS_A);
    CHECK((m.h.state.cr0 & cr::CR0_TS) == 0);
    CHECK(m.type_byte(SEL_TSS_A) == 0x8B);
}

TEST_CASE("a bad segment selector in the new TSS faults after the commit point, in the new task")
{
    TaskMachine m;
    m.put32(TSS_B + 0x54, 0xF8); // DS: past the GDT's limit
    m.h.run_code({0xEA, 0, 0, 0, 0, SEL_TSS_B, 0});
    CHECK(m.h.state.gpr[RBX] == VEC_TS);
    CHECK(m.stack(0) == 0xF8);
    CHECK(m.stack(1) == TASK_B_CODE); // the new task's first instruction
    CHECK(m.h.state.tr.selector == SEL_TSS_B);
    CHECK(m.type_byte(SEL_TSS_A) == 0x89);
}

TEST_CASE("the T bit of the new TSS raises #DB with DR6.BT before the new task's first instruction")
{
    TaskMachine m;
    m.put16(TSS_B + 0x64, 1);
    m.h.run_code({0xEA, 0, 0, 0, 0, SEL_TSS_B, 0});
    CHECK(m.h.state.gpr[RBX] == VEC_DB);
    CHECK((m.h.state.dr[6] & dbg::DR6_BT) != 0);
    CHECK(m.stack(0) == TASK_B_CODE);
    CHECK(m.h.state.tr.selector == SEL_TSS_B);
}

TEST_CASE("a task switch loads CR3 from a 32-bit TSS when paging is on and clears DR7's local enables")
{
    TaskMachine m;
    m.h.put64(0x20000, 0x83); // 4 MiB page at 0, in two page directories
    m.h.put64(0x21000, 0x83);
    m.h.state.cr4 |= cr::CR4_PSE;
    m.h.state.cr3 = 0x20000;
    m.h.state.cr0 |= cr::CR0_PG;
    m.put32(TSS_B + 0x1C, 0x21000);
    m.h.state.dr[0] = 0x300000; // never touched
    m.h.state.dr[7] = 0x400 | 0x3; // L0 and G0
    m.h.run_code({0xEA, 0, 0, 0, 0, SEL_TSS_B, 0});
    CHECK(m.h.state.tr.selector == SEL_TSS_B);
    CHECK(m.h.state.cr3 == 0x21000);
    CHECK(m.h.state.dr[7] == (0x400 | 0x2));
}

TEST_CASE("a switch to a 16-bit TSS loads its 16-bit registers and keeps the upper halves")
{
    TaskMachine m;
    m.put16(TSS_C + 0x0E, 0x1000); // IP: CS base 0x10000 + 0x1000 = TASK_B_CODE
    m.put16(TSS_C + 0x10, 0x0002); // FLAGS
    m.put16(TSS_C + 0x12, 0x5678); // AX
    m.put16(TSS_C + 0x1A, 0x8000); // SP
    m.put16(TSS_C + 0x22, 0x10);   // ES
    m.put16(TSS_C + 0x24, SEL_CODE16);
    m.put16(TSS_C + 0x26, 0x10); // SS
    m.put16(TSS_C + 0x28, 0x10); // DS
    // mov eax, 0x11112222 ; jmp 0x38:0
    m.h.run_code({0xB8, 0x22, 0x22, 0x11, 0x11, 0xEA, 0, 0, 0, 0, SEL_TSS_C, 0});
    CHECK(m.h.state.tr.selector == SEL_TSS_C);
    CHECK(m.h.state.tr.type() == 0x3); // busy 16-bit TSS
    CHECK(m.h.state.rip == 0x1001);
    CHECK(m.h.state.gpr[RAX] == 0x11115678);
    CHECK((m.h.state.gpr[RSP] & 0xFFFF) == 0x8000);
    CHECK(m.h.state.seg[CS].selector == SEL_CODE16);
    CHECK(m.get32(TSS_A + 0x28) == 0x11112222);
}

TEST_CASE("IRET with NT=1 switches to the back-linked task, here a virtual-8086 one")
{
    TaskMachine m;
    // Task B is marked busy, as a task that called A would be.
    m.h.put64(CpuHarness::GDT + SEL_TSS_B, descriptor(TSS_B, 0x67, 0x8B, 0));
    m.put16(TSS_A, SEL_TSS_B);
    m.put32(TSS_B + 0x20, 0x0000);            // IP
    m.put32(TSS_B + 0x24, rf::VM | 0x2);      // EFLAGS: V86
    m.put32(TSS_B + 0x4C, TASK_B_CODE >> 4);  // CS
    m.put32(TSS_B + 0x50, 0x2000);            // SS
    m.put32(TSS_B + 0x04, 0x50000); // ESP0 and SS0 for the #GP out of V86 mode
    m.put32(TSS_B + 0x08, 0x10);
    m.h.state.rflags |= rf::NT;
    m.h.run_code({0xCF}); // iret; B's HLT in V86 mode raises #GP(0)
    CHECK(m.h.state.gpr[RBX] == 13);
    CHECK(m.stack(0) == 0);                    // error code
    CHECK(m.stack(1) == 0);                    // IP of the HLT
    CHECK(m.stack(2) == TASK_B_CODE >> 4);     // CS
    CHECK((m.stack(3) & rf::VM) != 0);         // EFLAGS
    CHECK(m.h.state.tr.selector == SEL_TSS_B);
    CHECK(m.type_byte(SEL_TSS_A) == 0x89);     // IRET frees the task it leaves
    CHECK(m.type_byte(SEL_TSS_B) == 0x8B);
    CHECK((m.get32(TSS_A + 0x24) & rf::NT) == 0);
}

TEST_CASE("a task switch away from a TSS too small to hold the saved state raises #TS(current TSS)")
{
    TaskMachine m;
    m.h.cpu.set_segment_from_descriptor(m.h.state.tr, SEL_TSS_A, descriptor(TSS_A, 0x40, 0x8B, 0));
    m.h.run_code({0xEA, 0, 0, 0, 0, SEL_TSS_B, 0});
    CHECK(m.h.state.gpr[RBX] == VEC_TS);
    CHECK(m.stack(0) == SEL_TSS_A);
    CHECK(m.h.state.tr.selector == SEL_TSS_A);
    CHECK(m.type_byte(SEL_TSS_B) == 0x89);
}
