// Runs one instruction on the host CPU from a given register file, for the
// SSE host-comparison test (tests/cpu/simd_host_test.cpp). Kept apart from
// the cpu/ headers because <ucontext.h> and cpu/decoder/insn.h both name REG_RIP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

// The register file both sides start from and end with.
struct Machine {
    std::uint64_t gpr[16]; // RSP is not loaded: the instruction runs on the test's stack
    std::uint64_t rflags;
    std::uint32_t mxcsr;
    std::uint32_t pad;
    std::uint64_t mm[8];
    std::uint64_t xmm[16][2];
};
static_assert(offsetof(Machine, rflags) == 128 && offsetof(Machine, mxcsr) == 136 &&
              offsetof(Machine, mm) == 144 && offsetof(Machine, xmm) == 208);

// One at a time: it takes over SIGFPE/SIGSEGV/SIGILL/SIGBUS while it lives.
class SimdHostRunner {
public:
    SimdHostRunner();
    ~SimdHostRunner();
    SimdHostRunner(const SimdHostRunner&) = delete;
    SimdHostRunner& operator=(const SimdHostRunner&) = delete;

    // Runs `code` (one instruction) from `m` and leaves the state after it in
    // `m`. Returns the exception vector it raised, or -1. After a fault only
    // MXCSR and the XMM registers are updated (from the signal context).
    int run(const std::vector<std::uint8_t>& code, Machine& m);

private:
    std::uint8_t* m_page = nullptr;
};
