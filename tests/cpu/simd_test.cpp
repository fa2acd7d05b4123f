// SSE, MMX and bit-manipulation behaviour with hand-checked values: results,
// MXCSR modes, the #XM/#UD/#NM/#GP rules, MMX aliasing of the x87 registers
// and fault atomicity. simd_host_test.cpp compares the same instructions
// against the host CPU in bulk.
#include "tests/cpu/cpu_harness.h"

#include "cpu/simd/simd.h"

#include <doctest/doctest.h>

#include <bit>

namespace {

// Long mode with SSE enabled and an IDT whose every exception vector lands on
// its own HLT, so a run reports which exception (if any) fired.
struct SimdMachine : CpuHarness {
    static constexpr u64 DATA = 0x30000;

    SimdMachine()
    {
        enter_long64_with_vector_stubs();
        state.cr4 |= cr::CR4_OSFXSR | cr::CR4_OSXMMEXCPT;
        state.gpr[RBX] = DATA;
    }

    // Runs the code and returns the exception vector it raised, -1 when it
    // reached its final HLT, 99 when it stopped anywhere else.
    int run(std::initializer_list<u8> code) { return run_to_vector(code); }

    void set_xmm(unsigned r, u64 lo, u64 hi) { state.fpu.xmm[r] = {lo, hi}; }
    void set_ps(unsigned r, float a, float b, float c, float d)
    {
        set_xmm(r, std::bit_cast<u32>(a) | u64{std::bit_cast<u32>(b)} << 32,
                std::bit_cast<u32>(c) | u64{std::bit_cast<u32>(d)} << 32);
    }
    float ps(unsigned r, unsigned lane)
    {
        return std::bit_cast<float>(
            static_cast<u32>(state.fpu.xmm[r][lane / 2] >> (32 * (lane % 2))));
    }
    void set_sd(unsigned r, double v) { set_xmm(r, std::bit_cast<u64>(v), 0); }
};

constexpr u32 MXCSR_DEFAULT = 0x1F80;

} // namespace

TEST_CASE("ADDPS adds four single-precision lanes")
{
    SimdMachine m;
    m.set_ps(0, 1.5f, -2.0f, 1e30f, 0.25f);
    m.set_ps(1, 2.25f, 2.0f, 1e30f, -0.5f);
    CHECK(m.run({0x0F, 0x58, 0xC1}) == -1); // addps xmm0, xmm1
    CHECK(m.ps(0, 0) == 3.75f);
    CHECK(m.ps(0, 1) == 0.0f);
    CHECK(m.ps(0, 2) == 2e30f);
    CHECK(m.ps(0, 3) == -0.25f);
    CHECK(m.state.fpu.mxcsr == MXCSR_DEFAULT); // all exact
}

TEST_CASE("DIVSS by zero sets ZE and gives infinity while ZE is masked")
{
    SimdMachine m;
    m.set_ps(0, 1.0f, 7.0f, 8.0f, 9.0f);
    m.set_ps(1, 0.0f, 0.0f, 0.0f, 0.0f);
    CHECK(m.run({0xF3, 0x0F, 0x5E, 0xC1}) == -1);                       // divss xmm0, xmm1
    CHECK(m.state.fpu.xmm[0][0] == (0x40E00000ull << 32 | 0x7F800000)); // +inf, 7.0 kept
    CHECK(m.state.fpu.mxcsr == (MXCSR_DEFAULT | mxcsr::ZE));
}

TEST_CASE("An unmasked SSE exception raises #XM and leaves the destination alone")
{
    SimdMachine m;
    m.state.fpu.mxcsr = MXCSR_DEFAULT & ~mxcsr::ZM;
    m.set_ps(0, 1.0f, 2.0f, 3.0f, 4.0f);
    m.set_ps(1, 0.0f, 1.0f, 1.0f, 1.0f);
    const auto before = m.state.fpu.xmm[0];
    CHECK(m.run({0x0F, 0x5E, 0xC1}) == VEC_XM); // divps xmm0, xmm1
    CHECK(m.state.fpu.xmm[0] == before);
    CHECK((m.state.fpu.mxcsr & mxcsr::FLAGS) == mxcsr::ZE);
}

TEST_CASE("An unmasked SSE exception raises #UD when CR4.OSXMMEXCPT is clear")
{
    SimdMachine m;
    m.state.cr4 &= ~cr::CR4_OSXMMEXCPT;
    m.state.fpu.mxcsr = MXCSR_DEFAULT & ~mxcsr::IM;
    m.set_sd(0, 1.0);
    m.set_xmm(1, 0x7FF4000000000000ull, 0);           // SNaN
    CHECK(m.run({0xF2, 0x0F, 0x58, 0xC1}) == VEC_UD); // addsd xmm0, xmm1
    CHECK((m.state.fpu.mxcsr & mxcsr::FLAGS) == mxcsr::IE);
}

TEST_CASE("An unmasked overflow reports PE only when the mantissa was rounded")
{
    SimdMachine m;
    m.state.fpu.mxcsr = MXCSR_DEFAULT & ~mxcsr::OM;
    m.set_xmm(0, 0x7F000000, 0); // 2^127
    m.set_xmm(1, 0x7F000000, 0);
    CHECK(m.run({0xF3, 0x0F, 0x59, 0xC1}) == VEC_XM); // mulss: 2^254 exactly
    CHECK((m.state.fpu.mxcsr & mxcsr::FLAGS) == mxcsr::OE);
    m.state.fpu.mxcsr = MXCSR_DEFAULT & ~mxcsr::OM;
    m.set_xmm(0, 0x7F000001, 0); // (1 + 2^-23) * 2^127, squared needs 47 bits
    m.set_xmm(1, 0x7F000001, 0);
    CHECK(m.run({0xF3, 0x0F, 0x59, 0xC1}) == VEC_XM);
    CHECK((m.state.fpu.mxcsr & mxcsr::FLAGS) == (mxcsr::OE | mxcsr::PE));
}

TEST_CASE("MXCSR rounding control decides CVTSD2SI; CVTTSD2SI always truncates")
{
    SimdMachine m;
    const std::pair<u32, i64> modes[] = {{0, 2}, {1, 2}, {2, 3}, {3, 2}}; // nearest, down, up, zero
    for (auto [rc, expected] : modes) {
        m.state.fpu.mxcsr = MXCSR_DEFAULT | (rc << mxcsr::RC_SHIFT);
        m.set_sd(0, 2.5);
        CHECK(m.run({0xF2, 0x48, 0x0F, 0x2D, 0xC0}) == -1); // cvtsd2si rax, xmm0
        CHECK(static_cast<i64>(m.state.gpr[RAX]) == expected);
        CHECK((m.state.fpu.mxcsr & mxcsr::PE) != 0);
    }
    m.state.fpu.mxcsr = MXCSR_DEFAULT | (2u << mxcsr::RC_SHIFT);
    m.set_sd(0, -2.5);
    CHECK(m.run({0xF2, 0x48, 0x0F, 0x2C, 0xC0}) == -1); // cvttsd2si rax, xmm0
    CHECK(static_cast<i64>(m.state.gpr[RAX]) == -2);
}

TEST_CASE("An out-of-range CVTTSS2SI gives the integer indefinite and sets IE")
{
    SimdMachine m;
    m.set_ps(0, 3e9f, 0, 0, 0);
    CHECK(m.run({0xF3, 0x0F, 0x2C, 0xC0}) == -1); // cvttss2si eax, xmm0
    CHECK(m.state.gpr[RAX] == 0x80000000);
    CHECK((m.state.fpu.mxcsr & mxcsr::FLAGS) == mxcsr::IE);
}

TEST_CASE("DAZ reads denormal inputs as zero and FTZ flushes tiny results")
{
    SimdMachine m;
    m.set_xmm(0, 0x00000001, 0);                  // the smallest single denormal
    m.set_xmm(1, 0x3F800000, 0);                  // 1.0
    CHECK(m.run({0xF3, 0x0F, 0x59, 0xC1}) == -1); // mulss: denormal * 1 = denormal
    CHECK(m.state.fpu.xmm[0][0] == 0x00000001);
    CHECK((m.state.fpu.mxcsr & mxcsr::FLAGS) == mxcsr::DE);

    m.state.fpu.mxcsr = MXCSR_DEFAULT | mxcsr::DAZ;
    CHECK(m.run({0xF3, 0x0F, 0x59, 0xC1}) == -1);
    CHECK(m.state.fpu.xmm[0][0] == 0); // read as +0, no DE
    CHECK((m.state.fpu.mxcsr & mxcsr::FLAGS) == 0);

    m.state.fpu.mxcsr = MXCSR_DEFAULT | mxcsr::FTZ;
    m.set_xmm(0, 0x00800000, 0); // the smallest normal
    m.set_xmm(1, 0x3F000000, 0); // 0.5
    CHECK(m.run({0xF3, 0x0F, 0x59, 0xC1}) == -1);
    CHECK(m.state.fpu.xmm[0][0] == 0);
    CHECK((m.state.fpu.mxcsr & mxcsr::FLAGS) == (mxcsr::UE | mxcsr::PE));
}

TEST_CASE("MINSS returns the second operand for a NaN or two zeros")
{
    SimdMachine m;
    m.set_xmm(0, 0x7FC00000, 0);                  // QNaN
    m.set_xmm(1, 0x3F800000, 0);                  // 1.0
    CHECK(m.run({0xF3, 0x0F, 0x5D, 0xC1}) == -1); // minss xmm0, xmm1
    CHECK(m.state.fpu.xmm[0][0] == 0x3F800000);
    m.set_xmm(0, 0x80000000, 0); // -0
    m.set_xmm(1, 0x00000000, 0); // +0
    CHECK(m.run({0xF3, 0x0F, 0x5D, 0xC1}) == -1);
    CHECK(m.state.fpu.xmm[0][0] == 0x00000000);
}

TEST_CASE("An invalid operation with IE masked gives the default negative QNaN")
{
    SimdMachine m;
    m.set_xmm(0, 0x7FF0000000000000ull, 0); // +inf
    m.set_xmm(1, 0x7FF0000000000000ull, 0);
    CHECK(m.run({0xF2, 0x0F, 0x5C, 0xC1}) == -1); // subsd: inf - inf
    CHECK(m.state.fpu.xmm[0][0] == 0xFFF8000000000000ull);
    CHECK((m.state.fpu.mxcsr & mxcsr::FLAGS) == mxcsr::IE);
}

TEST_CASE("LDMXCSR with a reserved bit set raises #GP(0); STMXCSR stores MXCSR")
{
    SimdMachine m;
    m.put64(SimdMachine::DATA, 0x10000);
    CHECK(m.run({0x0F, 0xAE, 0x13}) == VEC_GP); // ldmxcsr [rbx]
    m.put64(SimdMachine::DATA, 0x3F80 | mxcsr::DAZ);
    CHECK(m.run({0x0F, 0xAE, 0x13}) == -1);
    CHECK(m.state.fpu.mxcsr == (0x3F80 | mxcsr::DAZ));
    CHECK(m.run({0x0F, 0xAE, 0x5B, 0x08}) == -1); // stmxcsr [rbx+8]
    CHECK(m.get64(SimdMachine::DATA + 8) == (0x3F80 | mxcsr::DAZ));
}

TEST_CASE("A misaligned 16-byte operand raises #GP(0) except for the unaligned moves")
{
    SimdMachine m;
    m.state.gpr[RBX] = SimdMachine::DATA + 4;
    CHECK(m.run({0x0F, 0x28, 0x03}) == VEC_GP);               // movaps xmm0, [rbx]
    CHECK(m.run({0x66, 0x0F, 0xFE, 0x03}) == VEC_GP);         // paddd xmm0, [rbx]
    CHECK(m.run({0x0F, 0x10, 0x03}) == -1);                   // movups xmm0, [rbx]
    CHECK(m.run({0xF3, 0x0F, 0x58, 0x03}) == -1);             // addss xmm0, [rbx]: 4 bytes
    CHECK(m.run({0x66, 0x0F, 0x3A, 0x63, 0x03, 0x00}) == -1); // pcmpistri needs no alignment
}

TEST_CASE("SSE instructions raise #UD without CR4.OSFXSR or with CR0.EM, #NM with CR0.TS")
{
    SimdMachine m;
    m.state.cr4 &= ~cr::CR4_OSFXSR;
    CHECK(m.run({0x0F, 0x58, 0xC1}) == VEC_UD);
    m.state.cr4 |= cr::CR4_OSFXSR;
    m.state.cr0 |= cr::CR0_EM;
    CHECK(m.run({0x0F, 0x58, 0xC1}) == VEC_UD);
    m.state.cr0 &= ~cr::CR0_EM;
    m.state.cr0 |= cr::CR0_TS;
    CHECK(m.run({0x0F, 0x58, 0xC1}) == VEC_NM);
}

TEST_CASE("General-register extensions ignore CR0.TS and CR4.OSFXSR")
{
    SimdMachine m;
    m.state.cr0 |= cr::CR0_TS;
    m.state.cr4 &= ~cr::CR4_OSFXSR;
    m.state.gpr[RBX] = 0b101;
    m.state.gpr[RCX] = 0b11010;
    CHECK(m.run({0xC4, 0xE2, 0xE3, 0xF5, 0xC1}) == -1); // pdep rax, rbx, rcx
    CHECK(m.state.gpr[RAX] == 0b10010);
    m.state.gpr[RBX] = 0b10010;
    CHECK(m.run({0xC4, 0xE2, 0xE2, 0xF5, 0xC1}) == -1); // pext rax, rbx, rcx
    CHECK(m.state.gpr[RAX] == 0b101);
    m.state.gpr[RCX] = 0xF0F0;
    CHECK(m.run({0xF3, 0x0F, 0xB8, 0xC1}) == -1); // popcnt eax, ecx
    CHECK(m.state.gpr[RAX] == 8);
    CHECK(m.run({0xF2, 0x0F, 0x38, 0xF0, 0xC1}) == -1); // crc32 eax, cl
}

TEST_CASE("MMX instructions run without CR4.OSFXSR, set TOP to 0 and tag every register valid")
{
    SimdMachine m;
    m.state.cr4 &= ~cr::CR4_OSFXSR;
    m.state.fpu.fsw = 5u << 11; // TOP = 5
    m.state.fpu.ftw = 0xFFFF;
    m.state.fpu.st[0] = X87Register{0x0102030405060708ull, 0xFFFF};
    m.state.fpu.st[1] = X87Register{0x0101010101010101ull, 0xFFFF};
    CHECK(m.run({0x0F, 0xFC, 0xC1}) == -1); // paddb mm0, mm1
    CHECK(m.state.fpu.st[0].mantissa == 0x0203040506070809ull);
    CHECK(m.state.fpu.st[0].sign_exponent == 0xFFFF);
    CHECK(((m.state.fpu.fsw >> 11) & 7) == 0);
    CHECK(m.state.fpu.ftw == 0);
    CHECK(m.run({0x0F, 0x77}) == -1); // emms
    CHECK(m.state.fpu.ftw == 0xFFFF);
    m.state.cr0 |= cr::CR0_TS;
    CHECK(m.run({0x0F, 0x77}) == VEC_NM);
}

TEST_CASE("A write to an MMX register sets its x87 exponent and sign to all ones")
{
    SimdMachine m;
    m.state.fpu.st[2] = X87Register{0, 0};
    m.state.gpr[RAX] = 0x1234;
    CHECK(m.run({0x48, 0x0F, 0x6E, 0xD0}) == -1); // movq mm2, rax
    CHECK(m.state.fpu.st[2].mantissa == 0x1234);
    CHECK(m.state.fpu.st[2].sign_exponent == 0xFFFF);
}

TEST_CASE("PCMPISTRI finds the first byte of a set in a NUL-terminated string")
{
    SimdMachine m;
    std::memcpy(m.state.fpu.xmm[0].data(), "aeiou\0\0\0\0\0\0\0\0\0\0\0", 16); // the set
    std::memcpy(m.state.fpu.xmm[1].data(), "rhythm and blues", 16);
    CHECK(m.run({0x66, 0x0F, 0x3A, 0x63, 0xC1, 0x00}) == -1); // equal any, unsigned bytes
    CHECK(m.state.gpr[RCX] == 7);                             // the 'a' of "and"
    const u64 flags = m.cpu.rflags();
    CHECK((flags & rf::CF) != 0); // a match
    CHECK((flags & rf::ZF) == 0); // no NUL in the 16 bytes of xmm1
    CHECK((flags & rf::SF) != 0); // xmm0 ends early
}

TEST_CASE("CRC32 accumulates CRC-32C")
{
    SimdMachine m;
    const char text[] = "123456789";
    for (unsigned i = 0; i < 9; ++i)
        m.put(SimdMachine::DATA + i, {static_cast<u8>(text[i])});
    m.state.gpr[RAX] = 0xFFFFFFFF;
    m.state.gpr[RCX] = 0;
    // crc32 eax, byte [rbx+rcx]; inc ecx; cmp ecx, 9; jne back
    CHECK(m.run({0xF2, 0x0F, 0x38, 0xF0, 0x04, 0x0B, 0xFF, 0xC1, 0x83, 0xF9, 0x09, 0x75, 0xF3}) ==
          -1);
    CHECK((~m.state.gpr[RAX] & 0xFFFFFFFF) == 0xE3069283); // the CRC-32C check value
}

TEST_CASE("MOVSD is the string move at A5 and the SSE2 scalar move at F2 0F 10")
{
    SimdMachine m;
    m.put64(SimdMachine::DATA, 0x1122334455667788ull);
    m.state.gpr[RSI] = SimdMachine::DATA;
    m.state.gpr[RDI] = SimdMachine::DATA + 0x100;
    CHECK(m.run({0xA5}) == -1); // movsd (string, 4 bytes)
    CHECK(m.get64(SimdMachine::DATA + 0x100) == 0x55667788);
    m.set_xmm(0, 1, 2);
    m.set_xmm(1, 3, 4);
    CHECK(m.run({0xF2, 0x0F, 0x10, 0xC1}) == -1); // movsd xmm0, xmm1
    CHECK(m.state.fpu.xmm[0] == std::array<u64, 2>{3, 2});
}

TEST_CASE("A 16-byte store that crosses into a non-present page writes nothing")
{
    SimdMachine m;
    // Replace the 1 GiB identity page by 4 KiB pages with 0x60000 not present.
    constexpr u64 PD = 0x50000, PT = 0x51000;
    m.put64(CpuHarness::PML4 + 0x1000, PD | 7);
    m.put64(PD, PT | 7);
    for (u64 i = 1; i < 512; ++i)
        m.put64(PD + i * 8, (i << 21) | 0x87);
    for (u64 i = 0; i < 512; ++i)
        m.put64(PT + i * 8, i == 0x60 ? 0 : (i << 12) | 7);
    m.cpu.flush_tlb(true);
    m.put64(0x5FFF8, 0xAAAAAAAAAAAAAAAAull);
    m.set_xmm(0, 0x1111111111111111ull, 0x2222222222222222ull);
    m.state.gpr[RBX] = 0x5FFF8;
    CHECK(m.run({0x0F, 0x11, 0x03}) == VEC_PF); // movups [rbx], xmm0
    CHECK(m.state.cr2 == 0x60000);
    CHECK(m.get64(0x5FFF8) == 0xAAAAAAAAAAAAAAAAull);
}

TEST_CASE("SSE instructions run in 32-bit protected mode")
{
    SimdMachine m;
    m.enter_protected32();
    m.state.cr4 |= cr::CR4_OSFXSR;
    m.state.gpr[RBX] = SimdMachine::DATA;
    m.put64(SimdMachine::DATA, 0x0000000200000001ull);
    m.put64(SimdMachine::DATA + 8, 0x0000000400000003ull);
    m.set_xmm(0, 0x0000001000000010ull, 0x0000001000000010ull);
    CHECK(m.run({0x66, 0x0F, 0xFE, 0x03}) == -1); // paddd xmm0, [ebx]
    CHECK(m.state.fpu.xmm[0] == std::array<u64, 2>{0x0000001200000011ull, 0x0000001400000013ull});
}

TEST_CASE("A pending x87 exception raises #MF before an MMX instruction when CR0.NE is set")
{
    SimdMachine m;
    m.state.fpu.fsw = 0x80 | 0x01; // ES with IE
    m.state.cr0 |= cr::CR0_NE;
    CHECK(m.run({0x0F, 0xFC, 0xC1}) == VEC_MF); // paddb mm0, mm1
    CHECK(m.run({0x0F, 0x77}) == VEC_MF);       // emms
    m.state.cr0 &= ~cr::CR0_NE;                 // FERR# reports it instead
    CHECK(m.run({0x0F, 0xFC, 0xC1}) == -1);
}

TEST_CASE("EMMS raises #UD with CR0.EM; LDMXCSR raises #NM with CR0.TS")
{
    SimdMachine m;
    m.state.cr0 |= cr::CR0_EM;
    CHECK(m.run({0x0F, 0x77}) == VEC_UD);
    m.state.cr0 &= ~cr::CR0_EM;
    m.state.cr0 |= cr::CR0_TS;
    m.put64(SimdMachine::DATA, 0x1F80);
    CHECK(m.run({0x0F, 0xAE, 0x13}) == VEC_NM); // ldmxcsr [rbx]
}

TEST_CASE("AES round instructions give the values of Intel's AES-NI white paper")
{
    // Gueron, "Intel Advanced Encryption Standard (AES) New Instructions Set", 5.x examples.
    struct Example {
        u8 opcode;
        u64 hi, lo;
    } const examples[] = {{0xDC, 0xa8311c2f9fdba3c5ull, 0x8b104b58ded7e595ull},  // AESENC
                          {0xDD, 0xc7fb881e938c5964ull, 0x177ec42553fdc611ull},  // AESENCLAST
                          {0xDE, 0x138ac342faea2787ull, 0xb58eb95eb730392aull},  // AESDEC
                          {0xDF, 0xc5a391ef6b317f95ull, 0xd410637b72a593d0ull}}; // AESDECLAST
    SimdMachine m;
    for (const Example& e : examples) {
        m.set_xmm(0, 0x63746f725d53475dull, 0x7b5b546573745665ull);
        m.set_xmm(1, 0x5b477565726f6e5dull, 0x4869285368617929ull);
        CHECK(m.run({0x66, 0x0F, 0x38, e.opcode, 0xC1}) == -1);
        CHECK(m.state.fpu.xmm[0] == std::array<u64, 2>{e.lo, e.hi});
    }
    m.set_xmm(1, 0xa6d2ae2816157e2bull, 0x3c4fcf098815f7abull);
    CHECK(m.run({0x66, 0x0F, 0x3A, 0xDF, 0xC1, 0x01}) == -1); // aeskeygenassist xmm0, xmm1, 1
    CHECK(m.state.fpu.xmm[0] == std::array<u64, 2>{0x3424b5e524b5e434ull, 0x01eb848beb848a01ull});
}

TEST_CASE("PCLMULQDQ multiplies without carries")
{
    SimdMachine m;
    m.set_xmm(0, 0x3, 0x5);                                   // x + 1, x^2 + 1
    m.set_xmm(1, 0x3, 0x7);                                   // x + 1, x^2 + x + 1
    CHECK(m.run({0x66, 0x0F, 0x3A, 0x44, 0xC1, 0x00}) == -1); // low * low
    CHECK(m.state.fpu.xmm[0] == std::array<u64, 2>{0x5, 0});  // (x + 1)^2 = x^2 + 1
    m.set_xmm(0, 0x3, 0x5);
    CHECK(m.run({0x66, 0x0F, 0x3A, 0x44, 0xC1, 0x11}) == -1); // high * high
    CHECK(m.state.fpu.xmm[0] == std::array<u64, 2>{0x1B, 0}); // (x^2+1)(x^2+x+1) = x^4+x^3+x+1
    m.set_xmm(0, 1ull << 63, 0);
    m.set_xmm(1, 1ull << 63, 0);
    CHECK(m.run({0x66, 0x0F, 0x3A, 0x44, 0xC1, 0x00}) == -1);
    CHECK(m.state.fpu.xmm[0] == std::array<u64, 2>{0, 1ull << 62});
}

// Found by cpu-difftest's sse family against the host CPU (AMD EPYC).

TEST_CASE("EMMS empties every tag and sets TOP to 0 (SDM Vol 1 Table 9-2)")
{
    CpuHarness h;
    h.enter_long64();
    h.state.cr4 |= cr::CR4_OSFXSR;
    // fninit ; fld1 (TOP = 7) ; emms
    CHECK(h.run_code({0xDB, 0xE3, 0xD9, 0xE8, 0x0F, 0x77}) == RunExit::Halted);
    CHECK(((h.state.fpu.fsw >> 11) & 7) == 0);
    CHECK(h.state.fpu.ftw == 0xFFFF);
}

TEST_CASE("An MMX instruction that faults on its memory operand leaves TOP and the tags alone")
{
    CpuHarness h;
    h.enter_long64_with_vector_stubs();
    h.state.cr4 |= cr::CR4_OSFXSR;
    h.state.gpr[RCX] = 0x8000000000000000ull; // non-canonical
    // fninit ; fld1 (TOP = 7, R7 valid) ; movq mm0, [rcx] (#GP)
    CHECK(h.run_to_vector({0xDB, 0xE3, 0xD9, 0xE8, 0x0F, 0x6F, 0x01}) == VEC_GP);
    CHECK(((h.state.fpu.fsw >> 11) & 7) == 7);
    CHECK(h.state.fpu.ftw == 0x3FFF);
}

// Found by cpu-difftest's avx family against the host CPU (AMD EPYC): an
// unmasked pre-computation exception (here DE) anywhere in the instruction
// keeps every post-computation flag (here PE) out of MXCSR (SDM Vol 1 11.5.2).
namespace {

struct AvxMachine {
    CpuHarness h;
    explicit AvxMachine(CpuVendor vendor = CpuVendor::Intel) : h(vendor)
    {
        h.enter_long64_with_vector_stubs();
        h.state.cr4 |= cr::CR4_OSFXSR | cr::CR4_OSXMMEXCPT | cr::CR4_OSXSAVE;
        h.state.xcr0 = 7;
        h.state.fpu.mxcsr = 0x1E80; // DM unmasked
    }
};

} // namespace

TEST_CASE("VADDPS ymm: a denormal in the upper half keeps the lower half's PE out of MXCSR")
{
    AvxMachine m;
    FpuState& f = m.h.state.fpu;
    f.xmm[1] = {0x3F800000, 0};      // element 0: 1.0
    f.xmm[2] = {0x30800000, 0};      // element 0: 2^-30 (1 + 2^-30 is inexact)
    f.ymm_high[1] = {0x00000001, 0}; // element 4: a denormal (DE)
    f.ymm_high[2] = {0x3F800000, 0};
    // vaddps ymm0, ymm1, ymm2
    CHECK(m.h.run_to_vector({0xC5, 0xF4, 0x58, 0xC2}) == VEC_XM);
    CHECK(f.mxcsr == 0x1E82);
}

TEST_CASE("VFMADD231PS: a denormal in one element keeps another element's PE out of MXCSR")
{
    AvxMachine m;
    FpuState& f = m.h.state.fpu;
    f.xmm[0] = {0x30800000, 0};                           // element 0 addend: 2^-30
    f.xmm[1] = {0x3F800000 | (u64{0x00000001} << 32), 0}; // element 1: a denormal (DE)
    f.xmm[2] = {0x3F800000 | (u64{0x3F800000} << 32), 0};
    // vfmadd231ps xmm0, xmm1, xmm2: 1.0 * 1.0 + 2^-30 is inexact
    CHECK(m.h.run_to_vector({0xC4, 0xE2, 0x71, 0xB8, 0xC2}) == VEC_XM);
    CHECK(f.mxcsr == 0x1E82);
}

TEST_CASE("A misaligned 16-byte SSE operand raises #GP before a non-canonical stack address's #SS")
{
    CpuHarness h;
    h.enter_long64_with_vector_stubs();
    h.state.cr4 |= cr::CR4_OSFXSR;
    h.state.gpr[RBP] = 0x8000000000000000ull;
    // movaps xmm0, [rbp+1]: misaligned and non-canonical (found by cpu-difftest on the host)
    CHECK(h.run_to_vector({0x0F, 0x28, 0x45, 0x01}) == VEC_GP);
}

TEST_CASE("AMD: MASKMOVDQU checks all 16 bytes at rDI whatever the mask: a wrap past 4 GiB is #GP")
{
    CpuHarness h{CpuVendor::Amd}; // the AMD host; Intel's wrap is no limit fault (vendor_memory_test.cpp)
    h.enter_protected32();
    h.state.cr4 |= cr::CR4_OSFXSR;
    // #GP (vector 13) leads to mov ebx, 13 ; hlt.
    const u32 idt = 0x3000, handler = 0x12000;
    h.put64(idt + 13 * 8, (handler & 0xFFFF) | (u64(0x08) << 16) | (u64(0x8E) << 40) |
                              (u64(handler >> 16) << 48));
    h.state.idtr = {idt, 32 * 8 - 1};
    h.put(handler, {0xBB, 13, 0, 0, 0, 0xF4});
    h.state.gpr[RDI] = 0xFFFFFFFE;
    h.state.fpu.xmm[1] = {0, 0}; // mask: no byte selected
    // maskmovdqu xmm0, xmm1: 16 bytes from 0xFFFFFFFE run past DS's 4 GiB limit
    CHECK(h.run_code({0x66, 0x0F, 0xF7, 0xC1}) == RunExit::Halted);
    CHECK(h.state.gpr[RBX] == 13);
}

TEST_CASE("MASKMOVQ keeps its MMX switch (TOP 0, tags valid) when its store faults")
{
    CpuHarness h;
    h.enter_long64_with_vector_stubs();
    h.state.cr4 |= cr::CR4_OSFXSR;
    h.state.gpr[RDI] = 0x8000000000000000ull; // non-canonical
    // fninit ; fld1 (TOP = 7) ; maskmovq mm0, mm1 (#GP)
    CHECK(h.run_to_vector({0xDB, 0xE3, 0xD9, 0xE8, 0x0F, 0xF7, 0xC1}) == VEC_GP);
    CHECK(((h.state.fpu.fsw >> 11) & 7) == 0);
    CHECK(h.state.fpu.ftw == 0);
}

TEST_CASE("AMD: VCVTPS2PH to memory: a faulting store leaves MXCSR's flags alone")
{
    AvxMachine m{CpuVendor::Amd}; // found on the AMD host (Intel: vendor_memory_test.cpp)
    FpuState& f = m.h.state.fpu;
    f.mxcsr = 0x1F80;
    f.xmm[1] = {0x3F800001, 0};                 // 1 + 2^-23: inexact in binary16 (PE)
    m.h.state.gpr[RCX] = 0x8000000000000000ull; // non-canonical
    // vcvtps2ph qword [rcx], xmm1, 0 (found by cpu-difftest on the host)
    CHECK(m.h.run_to_vector({0xC4, 0xE3, 0x79, 0x1D, 0x09, 0x00}) == VEC_GP);
    CHECK(f.mxcsr == 0x1F80);
}

TEST_CASE("VFMADD231SD: an exact overflow with OE unmasked sets OE without PE")
{
    AvxMachine m;
    FpuState& f = m.h.state.fpu;
    f.mxcsr = 0x1B80;                      // OM unmasked
    f.xmm[0] = {0, 0};                     // addend 0
    f.xmm[1] = {0x7E70000000000000ull, 0}; // 2^1000
    f.xmm[2] = {0x4630000000000000ull, 0}; // 2^100: the product 2^1100 is exact
    // vfmadd231sd xmm0, xmm1, xmm2 (found by cpu-difftest on the host)
    CHECK(m.h.run_to_vector({0xC4, 0xE2, 0xF1, 0xB9, 0xC2}) == VEC_XM);
    CHECK(f.mxcsr == 0x1B88);
}

TEST_CASE("VFMADD231SD: an exact tiny result with UE unmasked sets UE without PE")
{
    AvxMachine m;
    FpuState& f = m.h.state.fpu;
    f.mxcsr = 0x1780; // UM unmasked
    f.xmm[0] = {0, 0};
    f.xmm[1] = {0x0010000000000000ull, 0}; // 2^-1022
    f.xmm[2] = {0x3FE0000000000000ull, 0}; // 0.5: the product 2^-1023 is exact and tiny
    CHECK(m.h.run_to_vector({0xC4, 0xE2, 0xF1, 0xB9, 0xC2}) == VEC_XM);
    CHECK(f.mxcsr == 0x1790);
}

TEST_CASE("VDPPS ymm steps both halves together: an unmasked IE keeps the other half's PE out")
{
    AvxMachine m;
    FpuState& f = m.h.state.fpu;
    f.mxcsr = 0x1F00;           // IM unmasked
    f.xmm[1] = {0x3F800001, 0}; // 1 + 2^-23: its square is inexact (PE)
    f.xmm[2] = {0x3F800001, 0};
    f.ymm_high[1] = {0x7F800001, 0}; // element 4: an SNaN (IE)
    f.ymm_high[2] = {0x3F800000, 0};
    // vdpps ymm0, ymm1, ymm2, 0xF1 (found by cpu-difftest on the host)
    CHECK(m.h.run_to_vector({0xC4, 0xE3, 0x75, 0x40, 0xC2, 0xF1}) == VEC_XM);
    CHECK(f.mxcsr == 0x1F01);
}

TEST_CASE("AMD: a gather clears the mask of an element it skips, before a later element faults")
{
    AvxMachine m{CpuVendor::Amd}; // found on the AMD host (Intel: vendor_memory_test.cpp)
    FpuState& f = m.h.state.fpu;
    m.h.state.gpr[RAX] = 0x8000000000000000ull;                // non-canonical: element 1 faults
    f.xmm[1] = {0, 0};                                         // indices
    f.xmm[2] = {0x4000000000000000ull, 0x8000000000000000ull}; // mask: element 0 off, 1 on
    // vgatherqpd xmm0, [rax + xmm1], xmm2 (found by cpu-difftest on the host)
    CHECK(m.h.run_to_vector({0xC4, 0xE2, 0xE9, 0x93, 0x04, 0x08}) == VEC_GP);
    CHECK(f.xmm[2][0] == 0);
    CHECK(f.xmm[2][1] == 0x8000000000000000ull);
}

TEST_CASE("VFMADD231SS: 0 * 1 + a denormal, exact and tiny, underflows with UE unmasked")
{
    AvxMachine m;
    FpuState& f = m.h.state.fpu;
    f.mxcsr = 0x1780;  // UM unmasked
    f.xmm[0] = {8, 0}; // addend: a denormal
    f.xmm[1] = {0, 0};
    f.xmm[2] = {0x3F800000, 0};
    // vfmadd231ss xmm0, xmm1, xmm2 (found by cpu-difftest; the host gives #XM, DE and UE)
    CHECK(m.h.run_to_vector({0xC4, 0xE2, 0x71, 0xB9, 0xC2}) == VEC_XM);
    CHECK(f.mxcsr == 0x1792);
}

TEST_CASE("MASKMOVQ at CPL 3 raises #AC for a misaligned rDI before the #PF of its page")
{
    CpuHarness h;
    h.enter_user64_with_alignment_checks();
    h.state.cr4 |= cr::CR4_OSFXSR;
    h.state.gpr[RDI] = 0x40000006; // misaligned, above the 1 GiB the harness maps
    // maskmovq mm1, mm4 (found by cpu-difftest on the host)
    CHECK(h.run_to_vector({0x0F, 0xF7, 0xCC}) == VEC_AC);
}

TEST_CASE("AMD: VCVTPS2PH to memory: an unmasked exception comes after the store's #PF")
{
    AvxMachine m{CpuVendor::Amd}; // found on the AMD host (Intel: vendor_memory_test.cpp)
    FpuState& f = m.h.state.fpu;
    f.mxcsr = 0x0F80;                // PM unmasked
    f.xmm[0] = {0x3F800001, 0};      // 1 + 2^-23: inexact in binary16
    m.h.state.gpr[RCX] = 0x40000000; // above the 1 GiB the harness maps
    // vcvtps2ph qword [rcx], xmm0, 0 (found by cpu-difftest on the host)
    CHECK(m.h.run_to_vector({0xC4, 0xE3, 0x79, 0x1D, 0x01, 0x00}) == VEC_PF);
    CHECK(f.mxcsr == 0x0F80);
}

TEST_CASE("A misaligned VMOVDQA operand raises #GP before a non-canonical stack address's #SS")
{
    AvxMachine m;
    m.h.state.gpr[RBP] = 0x8000000000000000ull;
    // vmovdqa ymm0, [rbp+1] (found by cpu-difftest on the host)
    CHECK(m.h.run_to_vector({0xC5, 0xFD, 0x6F, 0x45, 0x01}) == VEC_GP);
}

TEST_CASE("VPCMPESTRI outside 64-bit mode reads EAX and EDX whatever VEX.W says")
{
    CpuHarness h;
    h.enter_protected32();
    h.state.cr4 |= cr::CR4_OSFXSR | cr::CR4_OSXSAVE;
    h.state.xcr0 = 7;
    h.state.fpu.xmm[0] = {0x6262626262616161ull, 0x6262626262626262ull}; // "aaa" then 'b's
    h.state.fpu.xmm[1] = {0x6262626262626262ull, 0x6262626262626262ull}; // all 'b'
    h.state.gpr[RAX] = 0x100000003ull; // EAX = 3: the set is {'a'}
    h.state.gpr[RDX] = 16;
    // vpcmpestri xmm0, xmm1, 0 with VEX.W1 (found by cpu-difftest on the host)
    CHECK(h.run_code({0xC4, 0xE3, 0xF9, 0x61, 0xC1, 0x00}) == RunExit::Halted);
    CHECK((h.state.gpr[RCX] & 0xFFFFFFFF) == 16); // no 'b' among the first three bytes
}

TEST_CASE("VCVTPS2PH: an unmasked DE in one element keeps another element's PE out of MXCSR")
{
    AvxMachine m;
    FpuState& f = m.h.state.fpu;
    f.xmm[0] = {0x3F800001 | (u64{0x00000001} << 32), 0}; // inexact in binary16; a denormal
    // vcvtps2ph xmm1, xmm0, 0 (found by cpu-difftest on the host)
    CHECK(m.h.run_to_vector({0xC4, 0xE3, 0x79, 0x1D, 0xC1, 0x00}) == VEC_XM);
    CHECK(f.mxcsr == 0x1E82);
}

TEST_CASE("VCVTPS2PH: an exact overflow with OE unmasked sets OE without PE")
{
    AvxMachine m;
    FpuState& f = m.h.state.fpu;
    f.mxcsr = 0x1B80;           // OM unmasked
    f.xmm[0] = {0x47800000, 0}; // 65536.0: beyond binary16, exactly 2^16 (found by cpu-difftest)
    // vcvtps2ph xmm1, xmm0, 0
    CHECK(m.h.run_to_vector({0xC4, 0xE3, 0x79, 0x1D, 0xC1, 0x00}) == VEC_XM);
    CHECK(f.mxcsr == 0x1B88);
}
