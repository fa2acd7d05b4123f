// Virtual-8086 mode extensions (CR4.VME) and protected-mode virtual
// interrupts (CR4.PVI), SDM Vol 3A 20.3-20.4.
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

namespace {

constexpr u64 TSS = 0x6000, IDT = 0x3000, STUBS = 0x12000;
constexpr u16 V86_CS = CpuHarness::CODE >> 4, V86_SS = 0x2000;
constexpr u64 V86_SP = 0x1000;
constexpr u32 IOMAP = 0x88; // the redirection bitmap is the 32 bytes below

u64 descriptor(u32 base, u32 limit, u8 access, u8 flags)
{
    return (limit & 0xFFFF) | (u64(base & 0xFFFFFF) << 16) | (u64(access) << 40) |
           (u64((limit >> 16) & 0xF) << 48) | (u64(flags) << 52) | (u64(base >> 24) << 56);
}

// 32-bit protected mode with a TSS (ring-0 stack, redirection bitmap all
// clear) and an IDT whose vectors lead to `mov ebx, vector ; hlt` at ring 0.
// The code at CODE then runs in V86 mode at IOPL 0 with CR4.VME, IF and VIF set.
struct V86Machine {
    CpuHarness h;

    V86Machine()
    {
        h.enter_protected32();
        const u64 tss = descriptor(TSS, IOMAP + 7, 0x8B, 0);
        h.put64(CpuHarness::GDT + 0x18, tss);
        h.put64(CpuHarness::GDT + 0x20, descriptor(0, 0xFFFFF, 0xFB, 0xC)); // ring-3 code
        h.put64(CpuHarness::GDT + 0x28, descriptor(0, 0xFFFFF, 0xF3, 0xC)); // ring-3 data
        h.state.gdtr.limit = 0x2F;
        h.cpu.set_segment_from_descriptor(h.state.tr, 0x18, tss);
        put32(TSS + 4, 0x70000); // ESP0
        put32(TSS + 8, 0x10);    // SS0
        put32(TSS + 0x64, IOMAP << 16);
        for (unsigned v = 0; v < 32; ++v) {
            const u32 handler = STUBS + v * 16;
            h.put64(IDT + v * 8, (handler & 0xFFFF) | (u64(0x08) << 16) | (u64(0xEE) << 40) |
                                     (u64(handler >> 16) << 48));
            h.put(handler, {0xBB, u8(v), 0, 0, 0, 0xF4});
        }
        h.state.idtr = {IDT, 32 * 8 - 1};
        h.state.cr4 |= cr::CR4_VME;
        h.state.rflags = rf::FIXED1 | rf::VM | rf::IF | rf::VIF;
        for (unsigned s = 0; s < SEG_COUNT; ++s)
            h.cpu.load_segment_real(s, 0);
        h.cpu.load_segment_real(CS, V86_CS);
        h.cpu.load_segment_real(SS, V86_SS);
        h.state.gpr[RSP] = V86_SP;
    }
    void put32(u64 addr, u32 v) { h.mem.write_bytes(addr, &v, 4); }
    u32 get32(u64 addr)
    {
        u32 v = 0;
        h.mem.read_bytes(addr, &v, 4);
        return v;
    }
    u16 v86_stack_word(unsigned i)
    {
        u16 v = 0;
        h.mem.read_bytes(u64(V86_SS) * 16 + V86_SP - 2 * (i + 1), &v, 2);
        return v;
    }
    // Runs V86 code at IP 0; it ends in a HLT, which raises #GP(0) there.
    // Returns the vector taken; frame(i) reads the ring-0 exception frame.
    u64 run(std::initializer_list<u8> code)
    {
        h.state.rip = 0;
        h.run_code(code);
        return h.state.gpr[RBX];
    }
    u32 frame(unsigned i) { return get32(h.state.gpr[RSP] + 4 * i); }
    u32 fault_ip() { return frame(1); }
    u32 fault_flags() { return frame(3); }
};

} // namespace

TEST_CASE("with CR4.VME, CLI in virtual-8086 mode at IOPL 0 clears VIF and leaves IF")
{
    V86Machine m;
    REQUIRE(m.run({0xFA}) == VEC_GP); // cli ; hlt
    CHECK(m.fault_ip() == 1);         // the HLT, not the CLI
    CHECK((m.fault_flags() & rf::VIF) == 0);
    CHECK((m.fault_flags() & rf::IF) != 0);
}

TEST_CASE("with CR4.VME, STI in virtual-8086 mode at IOPL 0 sets VIF, and faults while VIP is set")
{
    V86Machine m;
    m.h.state.rflags &= ~(rf::VIF | rf::IF);
    REQUIRE(m.run({0xFB}) == VEC_GP); // sti ; hlt
    CHECK(m.fault_ip() == 1);
    CHECK((m.fault_flags() & rf::VIF) != 0);
    CHECK((m.fault_flags() & rf::IF) == 0);

    V86Machine p;
    p.h.state.rflags |= rf::VIP;
    p.h.state.rflags &= ~rf::VIF;
    REQUIRE(p.run({0xFB}) == VEC_GP);
    CHECK(p.fault_ip() == 0); // the STI itself
    CHECK((p.fault_flags() & rf::VIF) == 0);
}

TEST_CASE("without CR4.VME, CLI in virtual-8086 mode at IOPL 0 raises #GP(0)")
{
    V86Machine m;
    m.h.state.cr4 &= ~cr::CR4_VME;
    REQUIRE(m.run({0xFA}) == VEC_GP);
    CHECK(m.fault_ip() == 0);
}

TEST_CASE("with CR4.VME, a 16-bit PUSHF pushes VIF in IF's place and IOPL as 3")
{
    V86Machine m;
    m.h.state.rflags &= ~rf::VIF; // IF set, VIF clear
    REQUIRE(m.run({0x9C}) == VEC_GP); // pushf ; hlt
    CHECK(m.fault_ip() == 1);
    const u16 pushed = m.v86_stack_word(0);
    CHECK((pushed & rf::IF) == 0);
    CHECK((pushed & rf::IOPL) == rf::IOPL);
}

TEST_CASE("with CR4.VME, a 16-bit POPF loads VIF from IF and leaves IF and IOPL")
{
    V86Machine m;
    m.h.state.rflags &= ~rf::VIF;
    REQUIRE(m.run({0x68, 0x01, 0x32, 0x9D}) == VEC_GP); // push 0x3201 ; popf ; hlt
    CHECK(m.fault_ip() == 4);
    CHECK((m.fault_flags() & rf::VIF) != 0);
    CHECK((m.fault_flags() & rf::IF) != 0);
    CHECK((m.fault_flags() & rf::IOPL) == 0);
    CHECK((m.fault_flags() & rf::CF) != 0);
}

TEST_CASE("with CR4.VME, POPF setting IF while VIP is pending raises #GP(0) and pops nothing")
{
    V86Machine m;
    m.h.state.rflags |= rf::VIP;
    REQUIRE(m.run({0x68, 0x00, 0x02, 0x9D}) == VEC_GP); // push 0x0200 ; popf ; hlt
    CHECK(m.fault_ip() == 3);
    CHECK(m.frame(4) == V86_SP - 2); // the pushed ESP: POPF did not pop
}

TEST_CASE("with CR4.VME, a 16-bit IRET loads VIF from the popped IF")
{
    V86Machine m;
    m.h.state.rflags &= ~rf::VIF;
    // push 0x0200 ; push cs ; push 0x000A ; iret ; (offset 10) hlt
    REQUIRE(m.run({0x68, 0x00, 0x02, 0x0E, 0x68, 0x0A, 0x00, 0x90, 0x90, 0xCF}) == VEC_GP);
    CHECK(m.fault_ip() == 10);
    CHECK((m.fault_flags() & rf::VIF) != 0);
}

TEST_CASE("with CR4.VME, INT n whose redirection bit is clear runs the 8086 handler from the IVT")
{
    V86Machine m;
    m.put32(0x21 * 4, 0x3000u << 16 | 0x0010); // IVT[0x21] = 3000:0010
    m.h.put(0x30010, {0xF4});                  // the handler: hlt (#GP)
    REQUIRE(m.run({0xCD, 0x21}) == VEC_GP);
    CHECK(m.fault_ip() == 0x10);
    CHECK(m.frame(2) == 0x3000);
    CHECK(m.v86_stack_word(2) == 2);      // IP after INT
    CHECK(m.v86_stack_word(1) == V86_CS); // CS
    const u16 pushed_flags = m.v86_stack_word(0);
    CHECK((pushed_flags & rf::IF) != 0); // VIF's copy
    CHECK((pushed_flags & rf::IOPL) == rf::IOPL);
    CHECK((m.fault_flags() & rf::VIF) == 0); // cleared for the handler
    CHECK((m.fault_flags() & rf::IF) != 0);
}

TEST_CASE("with CR4.VME, INT n whose redirection bit is set raises #GP(0) at IOPL 0")
{
    V86Machine m;
    m.h.put(TSS + IOMAP - 32 + 0x21 / 8, {u8(1u << (0x21 % 8))});
    REQUIRE(m.run({0xCD, 0x21}) == VEC_GP);
    CHECK(m.fault_ip() == 0);
}

TEST_CASE("with CR4.PVI, CLI at CPL 3 in protected mode clears VIF; without it, #GP(0)")
{
    for (bool pvi : {true, false}) {
        CAPTURE(pvi);
        V86Machine m;
        m.h.state.cr4 = pvi ? cr::CR4_PVI : 0;
        m.h.state.rflags = rf::FIXED1 | rf::IF | rf::VIF;
        m.h.cpu.set_segment_from_descriptor(m.h.state.seg[CS], 0x23,
                                            descriptor(0, 0xFFFFF, 0xFB, 0xC));
        for (unsigned s : {SS, DS, ES, FS, GS})
            m.h.cpu.set_segment_from_descriptor(m.h.state.seg[s], 0x2B,
                                                descriptor(0, 0xFFFFF, 0xF3, 0xC));
        m.h.state.rip = CpuHarness::CODE;
        m.h.state.gpr[RSP] = 0x50000;
        m.h.run_code({0xFA}); // cli ; hlt (#GP at CPL 3)
        REQUIRE(m.h.state.gpr[RBX] == VEC_GP);
        CHECK(m.fault_ip() == CpuHarness::CODE + (pvi ? 1 : 0));
        CHECK((m.fault_flags() & rf::VIF) == (pvi ? 0 : rf::VIF));
        CHECK((m.fault_flags() & rf::IF) != 0);
    }
}

TEST_CASE("MOV to CR4 accepts VME and PVI, and CPUID leaf 1 reports VME")
{
    CpuHarness h;
    h.enter_protected32();
    CHECK(h.cpu.write_cr(4, cr::CR4_VME | cr::CR4_PVI));
    CHECK(h.state.cr4 == (cr::CR4_VME | cr::CR4_PVI));
    CHECK((h.cpuid.query(1, 0, 0).edx & 2) != 0);
}
