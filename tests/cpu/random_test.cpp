// RDRAND/RDSEED: values from the Cpu's seeded generator (same seed, same
// values), CF = 1 with the other arithmetic flags clear, operand sizes, and
// the CPUID bits that advertise them.
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

namespace {

// rdrand rax; rdseed rcx; rdrand dx (16-bit); pushfq; pop rbx
constexpr std::initializer_list<u8> DRAW = {0x48, 0x0F, 0xC7, 0xF0, 0x48, 0x0F, 0xC7,
                                            0xF9, 0x66, 0x0F, 0xC7, 0xF2, 0x9C, 0x5B};

struct Draw {
    u64 rax, rcx, rdx, flags;
};

Draw draw(u64 seed)
{
    CpuHarness h;
    h.enter_long64();
    h.cpu.seed_random(seed);
    h.state.gpr[RDX] = 0x1111111111111111ull;
    h.state.rflags |= rf::ZF | rf::OF | rf::SF | rf::PF | rf::AF;
    REQUIRE(h.run_code(DRAW) == RunExit::Halted);
    return {h.state.gpr[RAX], h.state.gpr[RCX], h.state.gpr[RDX], h.state.gpr[RBX]};
}

} // namespace

TEST_CASE("RDRAND and RDSEED repeat their values for the same seed")
{
    const Draw a = draw(42), b = draw(42), c = draw(43);
    CHECK(a.rax == b.rax);
    CHECK(a.rcx == b.rcx);
    CHECK(a.rdx == b.rdx);
    CHECK(a.rax != c.rax);
    CHECK(a.rax != a.rcx);
    CHECK((a.rdx >> 16) == 0x111111111111ull); // the 16-bit form merges
}

TEST_CASE("RDRAND sets CF and clears OF, SF, ZF, AF and PF")
{
    const Draw a = draw(7);
    CHECK((a.flags & rf::ARITH) == rf::CF);
}

TEST_CASE("CPUID advertises RDRAND (leaf 1 ECX 30) and RDSEED (leaf 7 EBX 18)")
{
    CpuidModel model;
    CHECK((model.query(1, 0, 0).ecx >> 30 & 1) == 1);
    CHECK((model.query(7, 0, 0).ebx >> 18 & 1) == 1);
}
