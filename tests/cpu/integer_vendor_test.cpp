// Integer instructions where Intel and AMD processors differ. The expected
// values come from the host comparisons: the Intel host's output in
// shared/notes/intel-host (seed and case named in each test) and the AMD EPYC
// these tests were written on.
#include "tests/cpu/cpu_harness.h"
#include "tests/host_cpu.h"

#include <doctest/doctest.h>

#include <cpuid.h>

namespace {

// A 64-bit IDT whose vector v leads to a HLT at STUBS + 16 * v on an IST
// stack, so that a fault leaves the stack under test untouched, and 4 KiB
// pages over the first 2 MiB with HOLE not present.
constexpr u64 IDT = 0x3000, STUBS = 0x4000, TSS = 0x5000, IST_TOP = 0x70000;
constexpr u64 HOLE = 0x60000;

struct Machine {
    CpuHarness h;

    explicit Machine(CpuVendor vendor) : h(vendor)
    {
        h.enter_long64();
        for (unsigned v = 0; v < 32; ++v) {
            const u64 stub = STUBS + 16 * v;
            h.put(stub, {0xF4});
            h.put64(IDT + 16 * v, (stub & 0xFFFF) | (u64(0x08) << 16) | (u64(0x8E01) << 32) |
                                      ((stub >> 16 & 0xFFFF) << 48)); // IST 1
            h.put64(IDT + 16 * v + 8, 0);
        }
        h.state.idtr = {IDT, 32 * 16 - 1};
        h.state.tr = Segment{0x28, TSS, 0x67, Segment::P | 0xB};
        h.put64(TSS + 0x24, IST_TOP);
        constexpr u64 PD = 0x22000, PT = 0x23000;
        h.put64(CpuHarness::PML4 + 0x1000, PD | 7);
        h.put64(PD, PT | 7);
        for (u64 page = 0; page < 512; ++page)
            h.put64(PT + 8 * page, page * 0x1000 == HOLE ? 0 : (page * 0x1000) | 7);
    }

    // Runs the code; the exception vector it raised, or -1 when it reached
    // its final HLT.
    int run(std::initializer_list<u8> code, u64 budget = 100000)
    {
        h.run_code(code, budget);
        const u64 stub = h.state.rip - 1;
        if (stub >= STUBS && stub < STUBS + 32 * 16)
            return static_cast<int>((stub - STUBS) / 16);
        return h.state.rip == CpuHarness::CODE + code.size() + 1 ? -1 : 99;
    }

    // The interrupted RIP the exception frame holds (after the error code
    // when the vector pushes one).
    u64 faulting_rip(bool has_error_code)
    {
        return h.get64(h.state.gpr[RSP] + (has_error_code ? 8 : 0));
    }
    u64 saved_rflags(bool has_error_code)
    {
        return h.get64(h.state.gpr[RSP] + (has_error_code ? 24 : 16));
    }

    // Compatibility mode: a 32-bit code segment under the same long-mode paging.
    void enter_compatibility_mode()
    {
        h.put64(CpuHarness::GDT + 24, 0x00CF9B000000FFFFull); // 0x18: code 32-bit
        h.cpu.set_segment_from_descriptor(h.state.seg[CS], 0x18, 0x00CF9B000000FFFFull);
    }
};

constexpr u64 ARITH = rf::ARITH;

} // namespace

// ---- 0x67 string instructions in 64-bit mode ----

TEST_CASE("Intel REP MOVSQ with 0x67 and a count of 0 clears the upper halves of RCX, RSI and RDI")
{
    // Intel host: seed 1 case 61925 (RSI, RDI), 69390 (RCX, RSI), 66914 (RCX).
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Machine m{vendor};
        m.h.state.gpr[RCX] = 0x601F5DC300000000ull;
        m.h.state.gpr[RSI] = 0x9FC22C8210020A40ull;
        m.h.state.gpr[RDI] = 0x5F9488B110020E75ull;
        CHECK(m.run({0x67, 0xF3, 0x48, 0xA5}) == -1); // rep movsq (addr32)
        if (vendor == CpuVendor::Intel) {
            CHECK(m.h.state.gpr[RCX] == 0);
            CHECK(m.h.state.gpr[RSI] == 0x10020A40ull);
            CHECK(m.h.state.gpr[RDI] == 0x10020E75ull);
        } else {
            CHECK(m.h.state.gpr[RCX] == 0x601F5DC300000000ull);
            CHECK(m.h.state.gpr[RSI] == 0x9FC22C8210020A40ull);
            CHECK(m.h.state.gpr[RDI] == 0x5F9488B110020E75ull);
        }
    }
}

TEST_CASE("Intel REP STOSB with 0x67 and a count of 0 clears RCX's and RDI's upper halves, not RSI's")
{
    // Intel host: seed 1 case 91569 (RCX; RSI's upper half kept), 95388 (RCX, RDI).
    Machine m{CpuVendor::Intel};
    m.h.state.gpr[RCX] = 0xEE5175B600000000ull;
    m.h.state.gpr[RSI] = 0x1234567800001000ull;
    m.h.state.gpr[RDI] = 0x6B0769D5100203AAull;
    CHECK(m.run({0x67, 0xF3, 0xAA}) == -1); // rep stosb (addr32)
    CHECK(m.h.state.gpr[RCX] == 0);
    CHECK(m.h.state.gpr[RSI] == 0x1234567800001000ull);
    CHECK(m.h.state.gpr[RDI] == 0x100203AAull);
}

TEST_CASE("Intel REP SCAS, CMPS and LODS with 0x67 and a count of 0 clear only RCX's upper half")
{
    // Intel host: seed 1 cases 13498 (scasb: RDI kept), 99525 (cmpsb: RSI and
    // RDI kept), 52383 (lodsd: RSI kept).
    for (u8 op : {u8{0xAE}, u8{0xA6}, u8{0xAC}}) {
        CAPTURE(op);
        for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
            Machine m{vendor};
            m.h.state.gpr[RCX] = 0x4E17199A00000000ull;
            m.h.state.gpr[RSI] = 0x9FC22C8210020A40ull;
            m.h.state.gpr[RDI] = 0x5F9488B110020E75ull;
            CHECK(m.run({0x67, 0xF2, op}) == -1);
            CHECK(m.h.state.gpr[RCX] == (vendor == CpuVendor::Intel ? 0 : 0x4E17199A00000000ull));
            CHECK(m.h.state.gpr[RSI] == 0x9FC22C8210020A40ull);
            CHECK(m.h.state.gpr[RDI] == 0x5F9488B110020E75ull);
        }
    }
}

TEST_CASE("Intel REP MOVSQ with 0x67 faulting on its first element has cleared RCX's and RSI's tops")
{
    // Intel host: seed 1 case 9147 (#PF on the first element: RCX=0x5,
    // RSI=0x10020a40 zero-extended).
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Machine m{vendor};
        m.h.state.gpr[RCX] = 0x601F5DC300000005ull;
        m.h.state.gpr[RSI] = 0x9FC22C8200000000ull | HOLE;
        m.h.state.gpr[RDI] = 0x10000;
        CHECK(m.run({0x67, 0xF3, 0x48, 0xA5}) == VEC_PF);
        CHECK(m.h.state.cr2 == HOLE);
        const bool intel = vendor == CpuVendor::Intel;
        CHECK(m.h.state.gpr[RCX] == (intel ? 5 : 0x601F5DC300000005ull));
        CHECK(m.h.state.gpr[RSI] == (intel ? HOLE : 0x9FC22C8200000000ull | HOLE));
    }
}

TEST_CASE("Intel REPNE CMPSD with 0x67 faulting on its first element clears RCX's top, not RSI's")
{
    // Intel host: seed 1 case 38257 (RCX listed, RSI's upper half kept).
    Machine m{CpuVendor::Intel};
    m.h.state.gpr[RCX] = 0x29E6FA5400000001ull;
    m.h.state.gpr[RSI] = 0x7777000000000000ull | HOLE;
    m.h.state.gpr[RDI] = 0x10000;
    CHECK(m.run({0x67, 0xF2, 0xA7}) == VEC_PF);
    CHECK(m.h.state.gpr[RCX] == 1);
    CHECK(m.h.state.gpr[RSI] == (0x7777000000000000ull | HOLE));
}

// ---- flags of an unfinished REP CMPS/SCAS ----

TEST_CASE("REPNE SCASB faulting after one iteration leaves the flags from before it on Intel")
{
    // Intel host: seed 1 case 5605: AL=0xF5, RCX=3, RDI one byte before an
    // unmapped page holding 0x84, RFLAGS=0xAD3. The first compare (0xF5-0x84)
    // completes, the second faults: Intel keeps CF|AF|ZF|SF|OF of 0xAD3; AMD
    // has the compare's flags (PF only).
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Machine m{vendor};
        m.h.put(HOLE - 1, {0x84});
        m.h.state.gpr[RAX] = 0xFFFFFFFFFFFFFFF5ull;
        m.h.state.gpr[RCX] = 3;
        m.h.state.gpr[RDI] = HOLE - 1;
        m.h.state.rflags = 0xAD3;
        CHECK(m.run({0xF2, 0xAE}) == VEC_PF);
        CHECK(m.h.state.cr2 == HOLE);
        CHECK(m.h.state.gpr[RCX] == 2);
        CHECK(m.h.state.gpr[RDI] == HOLE);
        CHECK((m.saved_rflags(true) & ARITH) == (vendor == CpuVendor::Intel ? 0x8D1u : 0x004u));
    }
}

TEST_CASE("REPE CMPSB faulting in a later chunk still leaves the flags from before it on Intel")
{
    // The interpreter runs REP in chunks of 4096 iterations and re-executes
    // the instruction between them; on Intel the flags from before the
    // instruction survive that, so a fault 4196 equal bytes in sees them too.
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Machine m{vendor};
        m.h.state.gpr[RSI] = HOLE - 4196; // zeros up to the hole
        m.h.state.gpr[RDI] = 0x100000;    // zeros
        m.h.state.gpr[RCX] = 5000;
        m.h.state.rflags = 0x202 | rf::CF | rf::SF | rf::OF;
        CHECK(m.run({0xF3, 0xA6}) == VEC_PF);
        CHECK(m.h.state.cr2 == HOLE);
        CHECK(m.h.state.gpr[RCX] == 5000 - 4196);
        const u64 flags = m.saved_rflags(true) & ARITH;
        if (vendor == CpuVendor::Intel)
            CHECK(flags == (rf::CF | rf::SF | rf::OF));
        else
            CHECK(flags == (rf::ZF | rf::PF)); // the last equal compare
    }
}

TEST_CASE("Intel REPE CMPSB shows its old flags between chunks and its own when it finishes")
{
    Machine m{CpuVendor::Intel};
    m.h.state.gpr[RSI] = 0x100000;
    m.h.state.gpr[RDI] = 0x110000;
    m.h.state.gpr[RCX] = 5000;
    m.h.state.rflags = 0x202 | rf::CF | rf::SF;
    m.h.put(CpuHarness::CODE, {0xF3, 0xA6, 0xF4}); // repe cmpsb; hlt
    m.h.cpu.run(1);                                // one dispatch: the first chunk
    CHECK(m.h.state.rip == CpuHarness::CODE);
    CHECK(m.h.state.gpr[RCX] == 5000 - 4096);
    CHECK((m.h.cpu.rflags() & ARITH) == (rf::CF | rf::SF));
    m.h.cpu.run(100);
    CHECK(m.h.state.gpr[RCX] == 0);
    CHECK((m.h.cpu.rflags() & ARITH) == (rf::ZF | rf::PF));
}

// ---- CALL to a non-canonical target ----

TEST_CASE("CALL to a non-canonical target stores the return address and then raises #GP on Intel")
{
    // Intel host: seed 1 case 35609 `call r12` (mem[RSP-8] = return address,
    // RSP unchanged, #GP); AMD stores nothing.
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Machine m{vendor};
        m.h.put64(CpuHarness::STACK_TOP - 8, 0x5A5A5A5A5A5A5A5Aull);
        m.h.state.gpr[R12] = 0x0000800000000000ull;
        m.h.state.gpr[RSP] = CpuHarness::STACK_TOP;
        // call r12 (hlt is never reached)
        CHECK(m.run({0x41, 0xFF, 0xD4}) == VEC_GP);
        CHECK(m.faulting_rip(true) == CpuHarness::CODE);
        // The exception frame is on the IST stack: RSP as the fault left it.
        CHECK(m.h.get64(IST_TOP - 16) == CpuHarness::STACK_TOP);
        CHECK(m.h.get64(CpuHarness::STACK_TOP - 8) ==
              (vendor == CpuVendor::Intel ? CpuHarness::CODE + 3 : 0x5A5A5A5A5A5A5A5Aull));
    }
}

TEST_CASE("Intel CALL rel32 to a non-canonical target stores the return address in the JIT too")
{
    // The fast handler and the block translator hand non-canonical targets
    // to the CALL handler. Code at the top of the lower canonical half: a
    // CALL there reaches past 0x00007FFFFFFFFFFF.
    Machine m{CpuVendor::Intel};
    constexpr u64 TOP_CODE = 0x00007FFFFFFFF000ull;
    // Map the last page of the lower half to physical 0x30000.
    constexpr u64 PDPT = 0x24000, PD = 0x25000, PT = 0x26000;
    m.h.put64(CpuHarness::PML4 + 8 * 255, PDPT | 7);
    m.h.put64(PDPT + 8 * 511, PD | 7);
    m.h.put64(PD + 8 * 511, PT | 7);
    m.h.put64(PT + 8 * 511, 0x30000 | 7);
    m.h.put64(CpuHarness::STACK_TOP - 8, 0x5A5A5A5A5A5A5A5Aull);
    m.h.put(0x30000, {0x90, 0xE8, 0x00, 0x10, 0x00, 0x00}); // nop; call +0x1000
    m.h.cpu.set_jit_enabled(true);
    m.h.cpu.set_jit_threshold(1);
    // Run the block several times so that the translator takes it, each
    // time from a fresh stack, then check the last run.
    for (int i = 0; i < 20; ++i) {
        m.h.state.rip = TOP_CODE;
        m.h.state.gpr[RSP] = CpuHarness::STACK_TOP;
        m.h.state.events.halted = false;
        m.h.cpu.run(100);
        CHECK(m.h.state.rip == STUBS + 16 * VEC_GP + 1);
    }
    CHECK(m.h.get64(CpuHarness::STACK_TOP - 8) == TOP_CODE + 6);
    CHECK(m.h.get64(IST_TOP - 16) == CpuHarness::STACK_TOP);
}

// ---- MOVSXD with a 16-bit operand size ----

TEST_CASE("MOVSXD r16, m32 reads only 16 bits on Intel and the whole doubleword on AMD")
{
    // Intel host: seed 3 case 113717 `movsxd di, dword ptr [...]` two bytes
    // before an unmapped page: no fault; AMD (this host): #PF.
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Machine m{vendor};
        m.h.put(HOLE - 2, {0x34, 0x92});
        m.h.state.gpr[RBX] = HOLE - 2;
        m.h.state.gpr[RDI] = 0x1111111111111111ull;
        const int vector = m.run({0x66, 0x63, 0x3B}); // movsxd di, dword ptr [rbx]
        if (vendor == CpuVendor::Intel) {
            CHECK(vector == -1);
            CHECK(m.h.state.gpr[RDI] == 0x1111111111119234ull);
        } else {
            CHECK(vector == VEC_PF);
            CHECK(m.h.state.cr2 == HOLE);
            CHECK(m.h.state.gpr[RDI] == 0x1111111111111111ull);
        }
    }
}

// ---- BOUND (32-bit code) ----

TEST_CASE("BOUND below a lower bound next to an unmapped upper bound: #BR on Intel, #PF on AMD")
{
    // Intel host: seed 5 case 82006 `bound cx, [esi]`: CX=0x00FF, lower bound
    // 0x6CCA at the page's last two bytes but one, upper bound across the
    // page end: #BR where reading both bounds first takes #PF.
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        Machine m{vendor};
        m.enter_compatibility_mode();
        m.h.put(HOLE - 3, {0xCA, 0x6C, 0xD1});
        m.h.state.gpr[RSI] = HOLE - 3;
        m.h.state.gpr[RCX] = 0xFF;
        CHECK(m.run({0x66, 0x62, 0x0E}) == (vendor == CpuVendor::Intel ? VEC_BR : VEC_PF));
        if (vendor == CpuVendor::Amd)
            CHECK(m.h.state.cr2 == HOLE);
    }
}

TEST_CASE("BOUND at or above its lower bound reads the upper bound on Intel too")
{
    Machine m{CpuVendor::Intel};
    m.enter_compatibility_mode();
    m.h.put(HOLE - 3, {0xCA, 0x6C, 0xD1});
    m.h.state.gpr[RSI] = HOLE - 3;
    m.h.state.gpr[RCX] = 0x6CCA;
    CHECK(m.run({0x66, 0x62, 0x0E}) == VEC_PF);
    CHECK(m.h.state.cr2 == HOLE);
}

// ---- LZCNT/TZCNT flags ----

TEST_CASE("TZCNT and LZCNT clear OF on Intel and keep it on AMD")
{
    // Intel host: seed 2 case 125835 `tzcnt r13, r11`: RFLAGS 0xA83 -> 0xA42
    // on AMD (this host), 0x242 on Intel.
    for (bool lz : {false, true}) {
        CAPTURE(lz);
        for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
            Machine m{vendor};
            m.h.state.gpr[R11] = lz ? 0x8EB86AB2257C155ull | (1ull << 63) : 0x8EB86AB2257C155ull;
            m.h.state.gpr[R13] = 0x100000000ull;
            m.h.state.rflags = 0xA83;
            // tzcnt/lzcnt r13, r11
            CHECK(m.run({0xF3, 0x4D, 0x0F, static_cast<u8>(lz ? 0xBD : 0xBC), 0xEB}) == -1);
            CHECK(m.h.state.gpr[R13] == 0);
            CHECK(m.h.cpu.rflags() == (vendor == CpuVendor::Intel ? 0x242u : 0xA42u));
        }
    }
}

namespace {

bool host_has_lzcnt_and_tzcnt()
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 3))) // BMI1: TZCNT
        return false;
    return __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1u << 5)); // ABM: LZCNT
}

u64 host_count(bool lz, u64 flags_in, u64 source, u64& result)
{
    u64 flags_out, r = 0;
    if (lz)
        // Below the red zone, which the compiler may use.
        asm volatile("sub $128, %%rsp; push %3; popfq; lzcnt %2, %1;"
                     "pushfq; pop %0; add $128, %%rsp"
                     : "=r"(flags_out), "+r"(r)
                     : "r"(source), "r"(flags_in)
                     : "cc");
    else
        // Below the red zone, which the compiler may use.
        asm volatile("sub $128, %%rsp; push %3; popfq; tzcnt %2, %1;"
                     "pushfq; pop %0; add $128, %%rsp"
                     : "=r"(flags_out), "+r"(r)
                     : "r"(source), "r"(flags_in)
                     : "cc");
    result = r;
    return flags_out;
}

} // namespace

TEST_CASE("LZCNT and TZCNT flags match the host CPU in the model of its vendor")
{
    if (!host_has_lzcnt_and_tzcnt())
        return;
    for (bool lz : {false, true}) {
        for (u64 source : {0ull, 1ull, 0x80ull, 0x6ull, 0x8000000000000000ull}) {
            for (u64 flags_in : {0x202ull, 0xAD7ull, 0xA02ull, 0x206ull, 0x292ull}) {
                CAPTURE(lz);
                CAPTURE(source);
                CAPTURE(flags_in);
                u64 host_result;
                const u64 host_flags = host_count(lz, flags_in, source, host_result);
                Machine m{host_cpu_vendor()};
                m.h.state.gpr[R11] = source;
                m.h.state.rflags = flags_in;
                CHECK(m.run({0xF3, 0x4D, 0x0F, static_cast<u8>(lz ? 0xBD : 0xBC), 0xEB}) == -1);
                CHECK(m.h.state.gpr[R13] == host_result);
                CHECK((m.h.cpu.rflags() & ARITH) == (host_flags & ARITH));
            }
        }
    }
}

namespace {

// One instruction on the model of `vendor` from RAX, RCX, RDX and the
// arithmetic flags given; the six arithmetic flags after it.
u64 flags_after(CpuVendor vendor, std::initializer_list<u8> code, u64 rax, u64 rcx, u64 rdx,
                u64 flags)
{
    Machine m{vendor};
    m.h.state.gpr[RAX] = rax;
    m.h.state.gpr[RCX] = rcx;
    m.h.state.gpr[RDX] = rdx;
    m.h.state.rflags = 0x2 | flags;
    REQUIRE(m.run(code) == -1);
    return m.h.cpu.rflags() & (rf::CF | rf::PF | rf::AF | rf::ZF | rf::SF | rf::OF);
}
u64 intel_flags_after(std::initializer_list<u8> code, u64 rax, u64 rcx, u64 rdx, u64 flags)
{
    return flags_after(CpuVendor::Intel, code, rax, rcx, rdx, flags);
}
u64 amd_flags_after(std::initializer_list<u8> code, u64 rax, u64 rcx, u64 rdx, u64 flags)
{
    return flags_after(CpuVendor::Amd, code, rax, rcx, rdx, flags);
}

} // namespace

TEST_CASE("Intel's undefined flags: what an Intel Xeon leaves in them")
{
    // Each expected value is the Intel Xeon host's for the same registers
    // and flags (2026-12-08); the rules are in cpu/integer/alu.cpp.
    constexpr u64 CF = rf::CF, PF = rf::PF, AF = rf::AF, ZF = rf::ZF, OF = rf::OF, SF = rf::SF;
    // MUL/IMUL: ZF and AF clear even for a zero product.
    CHECK(intel_flags_after({0x48, 0xF7, 0xE1}, 3, 0, 0, ZF | AF) == PF);             // mul rcx
    CHECK(intel_flags_after({0x48, 0x0F, 0xAF, 0xC1}, 3, 0, 0, ZF | AF) == PF);       // imul rax, rcx
    // BSF/BSR: PF is the parity of the index, the rest clear.
    CHECK(intel_flags_after({0x48, 0x0F, 0xBC, 0xC1}, 0, 8, 0, CF | SF | OF) == PF);  // bsf rax, rcx
    CHECK(intel_flags_after({0x48, 0x0F, 0xBD, 0xC1}, 0, 1, 0, 0) == PF);            // bsr rax, rcx
    // Shifts and rotates past one bit: OF of the first one-bit step.
    CHECK(intel_flags_after({0x48, 0xD3, 0xE0}, 0x2000000000000000, 2, 0, 0) == (SF | PF)); // shl rax, cl
    CHECK(intel_flags_after({0x48, 0xD3, 0xC0}, 0x4000000000000000, 5, 0, 0) == OF);  // rol rax, cl
    CHECK(intel_flags_after({0x48, 0xD3, 0xC8}, 1, 5, 0, 0) == OF);                   // ror rax, cl
    CHECK(intel_flags_after({0x48, 0xD3, 0xD8}, 0, 3, 0, CF) == OF);                  // rcr rax, cl
    // ... except ROL/ROR of a register by an immediate, and RCL/RCR by a
    // multiple of 9 or 17 bits: OF as it was.
    CHECK(intel_flags_after({0x48, 0xC1, 0xC0, 0x05}, 0x4000000000000000, 0, 0, 0) == 0); // rol rax, 5
    CHECK(intel_flags_after({0xD2, 0xD0}, 0x40, 9, 0, 0) == 0);                           // rcl al, cl
    // SHLD/SHRD past one bit: the first step's OF too.
    CHECK(intel_flags_after({0x48, 0x0F, 0xA5, 0xD0}, 0x4000000000000000, 4, 0, 0) == (OF | ZF | PF));
    CHECK(intel_flags_after({0x48, 0x0F, 0xAD, 0xD0}, 0, 4, 1, 0) == (OF | PF));
}

TEST_CASE("Intel's AAD sets OF, AF and CF as the byte ADD it does; AMD's model clears them")
{
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd}) {
        CpuHarness h{vendor};
        h.enter_protected32();
        h.state.gpr[RAX] = 0x02F0; // AL 0xF0 + AH 2 * 10 = 0x104: a carry out of AL
        h.state.rflags = 0x2;
        REQUIRE(h.run_code({0xD5, 0x0A}) == RunExit::Halted); // aad 10
        CHECK((h.state.gpr[RAX] & 0xFFFF) == 0x0004);
        CHECK((h.cpu.rflags() & (rf::CF | rf::AF | rf::OF)) == (vendor == CpuVendor::Intel ? rf::CF : 0u));
    }
}


TEST_CASE("AMD's undefined flags: what the AMD corpus's host left in them")
{
    // Rules fitted to tests/difftest/corpus/amd-epyc-*.rec with
    // `cpu-difftest --cpu amd --strict-flags` (cpu/integer/alu.cpp).
    constexpr u64 CF = rf::CF, PF = rf::PF, AF = rf::AF, ZF = rf::ZF, OF = rf::OF, SF = rf::SF;
    // MUL/IMUL keep SF, ZF, AF and PF.
    CHECK(amd_flags_after({0x48, 0xF7, 0xE1}, 3, 0, 0, ZF | AF | SF) == (ZF | AF | SF)); // mul rcx
    CHECK(amd_flags_after({0x48, 0x0F, 0xAF, 0xC1}, 3, 5, 0, PF) == PF);               // imul rax, rcx
    // DIV/IDIV: CF and OF kept, AF set, SF, ZF and PF clear.
    CHECK(amd_flags_after({0x48, 0xF7, 0xF1}, 100, 7, 0, CF | ZF | SF | PF) == (CF | AF)); // div rcx
    // SHL/SHR/SAR set AF; SHR past one bit clears OF (the last step's).
    CHECK(amd_flags_after({0x48, 0xD1, 0xE0}, 1, 0, 0, 0) == AF);                            // shl rax, 1
    CHECK(amd_flags_after({0x48, 0xC1, 0xE8, 0x02}, 0x8000000000000000, 0, 0, 0) == (AF | PF)); // shr rax, 2
    CHECK(amd_flags_after({0x48, 0xD3, 0xE8}, 0x8000000000000000, 2, 0, 0) == (AF | PF));       // shr rax, cl
    CHECK(amd_flags_after({0x48, 0xD1, 0xE8}, 0x8000000000000000, 0, 0, 0) == (OF | AF | PF));  // shr rax, 1
    // SHRD past one bit: OF of the result's top two bits; AF set.
    CHECK(amd_flags_after({0x48, 0x0F, 0xAD, 0xD0}, 0, 2, 2, 0) == (SF | OF | AF | PF)); // shrd rax, rdx, cl
    // BSF: PF of the index, as on Intel.
    CHECK(amd_flags_after({0x48, 0x0F, 0xBC, 0xC1}, 0, 8, 0, CF | SF | OF) == PF);
}
